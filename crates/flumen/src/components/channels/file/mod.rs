//! The `file` channel: Flume's durable channel, on flumen's write-ahead log (`flumen-wal`).
//!
//! The WAL owns durability, group commit, checkpoints and recovery; this adapter adds what a
//! channel needs on top: event encoding ([`codec`]), `capacity` with the `keep-alive` wait for
//! room, `transactionCapacity`, Flume's counters and async waiting.
//!
//! Invariants:
//! - a put commit returns `Ok` only after the WAL has synced the batch (group commit: one fsync
//!   serves every transaction waiting at that moment);
//! - takes are recorded only at commit, so an uncommitted take leaves nothing on disk and comes
//!   back after a crash, in order;
//! - room is counted as `queued + in flight + reserved by commits in progress ≤ capacity`,
//!   from the WAL's own counts, so it stays right when a reload builds a second channel value on
//!   the same storage.
//!
//! One storage directory is opened once per process: a reload that changes only channel-level
//! settings (`capacity`, `transactionCapacity`, `keep-alive`) shares the open WAL; changing the
//! storage settings of a running file channel is refused (restart the agent for that).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use flumen_config::Props;
use flumen_core::channel::attempt_until;
use flumen_core::{Channel, ChannelCounters, ChannelError, Event, Transaction};
use flumen_wal::{Seq, Wal, WalError};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::components::{BuildResult, ChannelBuildContext, ChannelDescriptor, build_with};

pub mod codec;
pub mod config;

pub use config::FileChannelConfig;

/// Registry entry.
pub const DESCRIPTOR: ChannelDescriptor = ChannelDescriptor {
    name: "file",
    classes: &["org.apache.flume.channel.file.FileChannel"],
    description: "Durable write-ahead log; survives kill -9 and power loss",
    build,
};

/// WALs open in this process, by checkpoint directory, with the settings they were opened with.
static OPEN: Mutex<Vec<(PathBuf, String, Weak<Wal>)>> = Mutex::new(Vec::new());

fn open_shared(config: &FileChannelConfig, name: &str) -> Result<Arc<Wal>, String> {
    let wal_config = config.wal_config().ok_or("checkpointDir is not set")?;
    let key = wal_config.checkpoint_dir.clone();
    let settings = format!("{wal_config:?}");
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    open.retain(|(_, _, w)| w.strong_count() > 0);
    if let Some((_, s, w)) = open.iter().find(|(k, _, _)| *k == key)
        && let Some(wal) = w.upgrade()
    {
        if *s == settings {
            return Ok(wal);
        }
        return Err(format!(
            "the storage settings of file channel `{name}` (directories, maxFileSize, checkpoints, fsync) cannot change while it runs; restart the agent to apply them"
        ));
    }
    let (wal, report) = Wal::open(wal_config).map_err(|e| match e {
        WalError::Locked { path } => format!(
            "{} is locked by another process: two agents (or two channels) cannot share a file channel's directories",
            path.display()
        ),
        other => other.to_string(),
    })?;
    for p in &report.problems {
        tracing::error!(channel = name, file = %p.file.display(), offset = p.offset, reason = %p.reason, skipped_bytes = p.skipped_bytes, "File channel found damaged data while recovering.");
    }
    tracing::info!(channel = name, checkpoint = ?report.checkpoint, events = report.recovered_entries, records = report.replayed_records, elapsed = ?report.elapsed, "File channel recovered.");
    open.push((key, settings, Arc::downgrade(&wal)));
    Ok(wal)
}

fn build(props: &Props, cx: &ChannelBuildContext) -> BuildResult<Arc<dyn Channel>> {
    let warnings = props
        .deserialize::<FileChannelConfig>()
        .map(|(c, _)| c.ignored_warnings(props))
        .unwrap_or_default();
    let (channel, mut w) = build_with(
        props,
        FileChannelConfig::validate,
        |config: FileChannelConfig| {
            let wal = open_shared(&config, &cx.name)
                .map_err(|msg| vec![props.error("checkpointDir", msg)])?;
            let ch: Arc<dyn Channel> =
                Arc::new(FileChannel::new(&cx.name, config, wal, cx.counters.clone()));
            Ok(ch)
        },
    )?;
    w.extend(warnings);
    Ok((channel, w))
}

/// The `file` channel.
pub struct FileChannel {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    config: FileChannelConfig,
    wal: Arc<Wal>,
    /// Events of put commits in progress, counted against `capacity` before they reach the WAL.
    reserved: Mutex<usize>,
    /// Wakes sink runners waiting in `readable()` after a put commits.
    readable: Notify,
    /// Wakes commits waiting for room after a take commits.
    space: Notify,
    counters: Arc<ChannelCounters>,
}

impl FileChannel {
    /// A channel on an open WAL.
    pub fn new(
        name: &str,
        config: FileChannelConfig,
        wal: Arc<Wal>,
        counters: Arc<ChannelCounters>,
    ) -> Self {
        counters.channel_capacity.set(config.capacity as u64);
        counters.channel_size.set(wal.len() as u64);
        counters.recovered(wal.len() as u64);
        counters.lifecycle.started();
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                config,
                wal,
                reserved: Mutex::new(0),
                readable: Notify::new(),
                space: Notify::new(),
                counters,
            }),
        }
    }
}

impl Inner {
    fn storage_error(&self, e: WalError) -> ChannelError {
        ChannelError::Storage {
            channel: self.name.clone(),
            source: Box::new(e),
        }
    }

    fn full(&self) -> ChannelError {
        ChannelError::Full {
            channel: self.name.clone(),
            capacity: self.config.capacity,
        }
    }

    /// Waits up to `keep-alive` until `n` more events fit, then reserves them.
    async fn reserve(&self, n: usize) -> Result<(), ChannelError> {
        if n > self.config.capacity {
            return Err(self.full());
        }
        let deadline = Instant::now() + Duration::from_secs(self.config.keep_alive);
        let reserved = attempt_until(&self.space, Some(deadline), || {
            let mut reserved = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
            let fits =
                self.wal.len() + self.wal.in_flight() + *reserved + n <= self.config.capacity;
            fits.then(|| *reserved += n)
        })
        .await;
        reserved.ok_or_else(|| self.full())
    }

    fn unreserve(&self, n: usize) {
        let mut reserved = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        *reserved = reserved.saturating_sub(n);
    }

    async fn commit(&self, puts: Vec<Vec<u8>>, takes: Vec<Seq>) -> Result<(), WalError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.wal.commit(
            puts,
            takes,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.await.unwrap_or(Err(WalError::Closed))
    }
}

#[async_trait]
impl Channel for FileChannel {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn begin(&self) -> Box<dyn Transaction> {
        Box::new(FileTransaction {
            ch: self.inner.clone(),
            puts: Vec::new(),
            taken: Vec::new(),
            seqs: Vec::new(),
        })
    }

    async fn put_batch(&self, events: Vec<Event>) -> Result<(), (ChannelError, Vec<Event>)> {
        let ch = &self.inner;
        ch.counters.event_put_attempt.add(events.len() as u64);
        if events.len() > ch.config.transaction_capacity {
            let e = ChannelError::TransactionCapacity {
                channel: ch.name.clone(),
                capacity: ch.config.transaction_capacity,
            };
            return Err((e, events));
        }
        let n = events.len();
        if let Err(e) = ch.reserve(n).await {
            return Err((e, events));
        }
        // Encoding copies the events into payloads, so the originals can be handed back.
        let puts: Vec<Vec<u8>> = events.iter().map(codec::encode).collect();
        let result = ch.commit(puts, Vec::new()).await;
        ch.unreserve(n);
        match result {
            Ok(()) => {
                ch.counters.put_committed(n as u64);
                ch.counters.channel_size.set(ch.wal.len() as u64);
                ch.readable.notify_waiters();
                Ok(())
            }
            Err(e) => Err((ch.storage_error(e), events)),
        }
    }

    async fn readable(&self) {
        attempt_until(&self.inner.readable, None, || {
            (!self.inner.wal.is_empty()).then_some(())
        })
        .await;
    }

    fn counters(&self) -> &Arc<ChannelCounters> {
        &self.inner.counters
    }

    fn transaction_capacity(&self) -> usize {
        self.inner.config.transaction_capacity
    }

    fn len(&self) -> usize {
        self.inner.wal.len()
    }

    fn storage_key(&self) -> Option<String> {
        self.inner
            .config
            .checkpoint_dir()
            .map(|p| p.display().to_string())
    }

    async fn close(&self) -> Result<(), ChannelError> {
        self.inner.counters.lifecycle.stopped();
        // Another channel value (a reload's replacement) may still use this storage.
        if Arc::strong_count(&self.inner.wal) > 1 {
            return Ok(());
        }
        // A closed WAL must never be handed to a channel built later.
        OPEN.lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, _, w)| !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&self.inner.wal)));
        let wal = self.inner.wal.clone();
        let res = tokio::task::spawn_blocking(move || wal.close()).await;
        match res {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.inner.storage_error(e)),
            Err(e) => Err(ChannelError::Storage {
                channel: self.inner.name.clone(),
                source: Box::new(e),
            }),
        }
    }
}

struct FileTransaction {
    ch: Arc<Inner>,
    puts: Vec<Vec<u8>>,
    taken: Vec<Event>,
    seqs: Vec<Seq>,
}

#[async_trait]
impl Transaction for FileTransaction {
    async fn put(&mut self, events: Vec<Event>) -> Result<(), ChannelError> {
        let ch = &self.ch;
        ch.counters.event_put_attempt.add(events.len() as u64);
        if self.puts.len() + events.len() > ch.config.transaction_capacity {
            return Err(ChannelError::TransactionCapacity {
                channel: ch.name.clone(),
                capacity: ch.config.transaction_capacity,
            });
        }
        self.puts.extend(events.iter().map(codec::encode));
        Ok(())
    }

    async fn take(&mut self, max: usize) -> Result<usize, ChannelError> {
        let ch = self.ch.clone();
        let room = ch.config.transaction_capacity - self.seqs.len();
        if room == 0 && max > 0 {
            return Err(ChannelError::TransactionCapacity {
                channel: ch.name.clone(),
                capacity: ch.config.transaction_capacity,
            });
        }
        let want = max.min(room);
        if want == 0 || ch.wal.is_empty() {
            ch.counters.event_take_attempt.add(u64::from(want > 0));
            return Ok(0);
        }
        let wal = ch.wal.clone();
        // Payloads are read from the log files: keep that off the async workers.
        let taken = tokio::task::spawn_blocking(move || wal.take(want))
            .await
            .map_err(|e| ChannelError::Storage {
                channel: ch.name.clone(),
                source: Box::new(e),
            })?
            .map_err(|e| ch.storage_error(e))?;
        let n = taken.len();
        let mut seqs = Vec::with_capacity(n);
        let mut events = Vec::with_capacity(n);
        let mut bad = None;
        for t in taken {
            seqs.push(t.seq);
            match codec::decode(t.payload) {
                Ok(e) => events.push(e),
                Err(e) => bad = Some(e),
            }
        }
        if let Some(e) = bad {
            ch.wal.rollback(&seqs);
            return Err(ChannelError::Storage {
                channel: ch.name.clone(),
                source: Box::new(e),
            });
        }
        self.seqs.extend(seqs);
        self.taken.extend(events);
        ch.counters
            .event_take_attempt
            .add((n + usize::from(n < want)) as u64);
        ch.counters.channel_size.set(ch.wal.len() as u64);
        Ok(n)
    }

    fn taken(&self) -> &[Event] {
        &self.taken
    }

    async fn commit(mut self: Box<Self>) -> Result<(), ChannelError> {
        let ch = self.ch.clone();
        let puts = std::mem::take(&mut self.puts);
        let n_put = puts.len();
        let n_take = self.seqs.len();
        if n_put == 0 && n_take == 0 {
            return Ok(());
        }
        if n_put > 0 {
            ch.reserve(n_put).await?;
        }
        let takes = self.seqs.clone();
        let result = ch.commit(puts, takes).await;
        if n_put > 0 {
            ch.unreserve(n_put);
        }
        match result {
            Ok(()) => {
                self.seqs.clear();
                self.taken.clear();
                ch.counters.put_committed(n_put as u64);
                ch.counters.event_take_success.add(n_take as u64);
                ch.counters.channel_size.set(ch.wal.len() as u64);
                if n_put > 0 {
                    ch.readable.notify_waiters();
                }
                if n_take > 0 {
                    ch.space.notify_waiters();
                }
                Ok(())
            }
            // Drop returns the takes to the head of the queue.
            Err(e) => Err(ch.storage_error(e)),
        }
    }

    fn rollback(self: Box<Self>) {}
}

impl Drop for FileTransaction {
    fn drop(&mut self) {
        if !self.seqs.is_empty() {
            self.ch.wal.rollback(&self.seqs);
            self.ch.counters.channel_size.set(self.ch.wal.len() as u64);
            self.ch.readable.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests;
