//! [`Wal`]: the public handle. It owns the writer thread and the background checkpoint/fsync
//! thread, reads payloads for takes, writes checkpoints and deletes segments.
//!
//! Lock order: `checkpoint_lock` → `state` ; `state` and `readers` are never held together.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::checkpoint;
use crate::error::WalError;
use crate::fs::{Clock, Filesystem, StdFilesystem, SystemClock, WalFile};
use crate::queue::{Entry, Queue};
use crate::record::{self, PAYLOAD_HEADER_LEN};
use crate::replay::{self, SegmentInfo};
use crate::segment::{self, SEGMENT_HEADER_LEN};
use crate::writer::{CommitRequest, Request, Writer};
use crate::{Completion, MIN_REQUIRED_SPACE_FLOOR, RecoveryReport, Seq, Taken, WalConfig};

/// Name of the lock file in the checkpoint directory.
const LOCK_FILE: &str = "in_use.lock";
/// Entries copied per state-lock acquisition while checkpointing.
const CHECKPOINT_SLICE: usize = 16 * 1024;
/// Reads of neighbouring payloads are merged when the gap between them is at most this...
const READ_MAX_GAP: u64 = 4096;
/// ...and the merged read at most this long.
const READ_MAX_SPAN: u64 = 4 << 20;

/// Locks a mutex, ignoring poisoning: every critical section leaves the data consistent before
/// anything that could panic, so a panicked holder does not invalidate it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An open segment for reads, with its path for error messages.
type ReadHandle = (Arc<dyn WalFile>, PathBuf);

/// The mutable state shared by callers, the writer and the checkpointer.
#[derive(Debug)]
pub(crate) struct State {
    /// Queue and in-flight entries.
    pub(crate) queue: Queue,
    /// The next seq the writer will assign, as of the last applied group.
    pub(crate) next_seq: u64,
    /// (segment, offset) just past the last applied group: memory reflects exactly the log
    /// before it.
    pub(crate) applied: (u64, u64),
    /// Every segment file, by id (for reads, deletion and disk usage).
    pub(crate) segments: BTreeMap<u64, SegmentInfo>,
}

/// What the `Wal` handle, the writer thread and the background thread share.
pub(crate) struct Shared {
    /// The normalized configuration.
    pub(crate) config: WalConfig,
    pub(crate) fs: Arc<dyn Filesystem>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The index and the applied position; held briefly (never across I/O).
    pub(crate) state: Mutex<State>,
    /// Read handles per segment, opened lazily, dropped when the segment is deleted. Its own
    /// mutex so reads never wait for the writer's state updates longer than a map lookup.
    readers: Mutex<HashMap<u64, ReadHandle>>,
    /// One checkpoint at a time (background thread, `checkpoint()`, close).
    checkpoint_lock: Mutex<()>,
    /// Set by close; public calls then fail with `Closed`.
    closed: AtomicBool,
    /// Entries whose payload failed its checksum in `take` and were removed for good.
    corrupt: AtomicU64,
}

/// One payload read back by `take`: its bytes, or where and why it is damaged.
type PayloadRead = Result<Vec<u8>, (PathBuf, u64, String)>;

/// Why a checkpoint attempt failed.
enum CheckpointFailure {
    /// Before anything was written (syncing the log): nothing to clean up.
    Before(WalError),
    /// Writing or copying the checkpoint file (its `.tmp` was removed).
    Write(WalError),
}

/// A durable FIFO queue of payloads with transactional takes. See the crate docs for the design.
///
/// `Wal` is `Send + Sync` and meant to be shared as `Arc<Wal>`: every method may be called from
/// any thread concurrently. Dropping the last handle closes it (with a checkpoint when
/// `checkpoint_on_close`).
pub struct Wal {
    shared: Arc<Shared>,
    /// Requests to the writer thread. Taken (dropped) by close: once the background thread's
    /// clone is gone too, the writer sees the channel disconnect, drains and exits.
    tx: Mutex<Option<Sender<Request>>>,
    /// The writer thread, joined by close.
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The checkpoint/fsync-interval thread, joined by close.
    background: Mutex<Option<JoinHandle<()>>>,
    /// Stop flag + condvar of the background thread, so close wakes it at once.
    stop: Arc<(Mutex<bool>, Condvar)>,
    /// The exclusive directory lock, held until close.
    dir_lock: Mutex<Option<Arc<dyn WalFile>>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Checks and normalizes a configuration (floors and clamps).
fn normalize(mut config: WalConfig) -> Result<WalConfig, WalError> {
    if config.data_dirs.is_empty() {
        return Err(WalError::InvalidConfig(
            "at least one data directory is required".into(),
        ));
    }
    if config.backup_checkpoint_dir.as_ref() == Some(&config.checkpoint_dir) {
        return Err(WalError::InvalidConfig(
            "the backup checkpoint directory must differ from the checkpoint directory".into(),
        ));
    }
    config.minimum_required_space = config.minimum_required_space.max(MIN_REQUIRED_SPACE_FLOOR);
    config.max_file_size = config
        .max_file_size
        .clamp(SEGMENT_HEADER_LEN + 1, u64::from(u32::MAX));
    Ok(config)
}

impl Wal {
    /// Opens (or creates) the WAL on the real filesystem and recovers its state.
    ///
    /// # Errors
    /// [`WalError::Locked`] when another agent uses the checkpoint directory,
    /// [`WalError::InvalidConfig`], [`WalError::UnsupportedVersion`] for files of another format
    /// version, [`WalError::Io`] when a directory or segment cannot be read or the first segment
    /// cannot be created. Corruption is never an error: it is repaired and reported in the
    /// [`RecoveryReport`].
    pub fn open(config: WalConfig) -> Result<(Arc<Wal>, RecoveryReport), WalError> {
        Self::open_with(config, Arc::new(StdFilesystem), Arc::new(SystemClock))
    }

    /// [`Wal::open`] with an injected filesystem and clock (fault and crash tests).
    ///
    /// # Errors
    /// As [`Wal::open`].
    pub fn open_with(
        config: WalConfig,
        fs: Arc<dyn Filesystem>,
        clock: Arc<dyn Clock>,
    ) -> Result<(Arc<Wal>, RecoveryReport), WalError> {
        let config = normalize(config)?;
        let mut dirs: Vec<&Path> = vec![&config.checkpoint_dir];
        dirs.extend(config.backup_checkpoint_dir.as_deref());
        dirs.extend(config.data_dirs.iter().map(PathBuf::as_path));
        for dir in dirs {
            fs.create_dir_all(dir)
                .map_err(|e| WalError::io(dir, "create directory", e))?;
        }
        let lock_path = config.checkpoint_dir.join(LOCK_FILE);
        let dir_lock = fs
            .try_lock(&lock_path)
            .map_err(|e| WalError::io(&lock_path, "lock", e))?
            .ok_or_else(|| WalError::Locked {
                path: lock_path.clone(),
            })?;

        // A crash (or an old version) may have left a half-written checkpoint behind.
        checkpoint::remove_tmp(&*fs, &config.checkpoint_dir);
        if let Some(backup) = &config.backup_checkpoint_dir {
            checkpoint::remove_tmp(&*fs, backup);
        }
        let recovered = replay::recover(&*fs, &config, &*clock)?;
        let state = State {
            queue: Queue::from_sorted(recovered.entries),
            next_seq: recovered.next_seq,
            applied: (recovered.next_segment, SEGMENT_HEADER_LEN),
            segments: recovered.segments,
        };
        let shared = Arc::new(Shared {
            config,
            fs,
            clock,
            state: Mutex::new(state),
            readers: Mutex::new(HashMap::new()),
            checkpoint_lock: Mutex::new(()),
            closed: AtomicBool::new(false),
            corrupt: AtomicU64::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let mut writer = Writer::new(
            Arc::clone(&shared),
            rx,
            recovered.next_segment,
            recovered.next_seq,
        );
        writer.roll()?;
        let spawn_err = |e| WalError::io(&shared.config.checkpoint_dir, "spawn thread", e);
        let writer = std::thread::Builder::new()
            .name("flumen-wal-writer".into())
            .spawn(move || writer.run())
            .map_err(spawn_err)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let background = {
            let (shared, tx, stop) = (Arc::clone(&shared), tx.clone(), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("flumen-wal-checkpoint".into())
                .spawn(move || background(&shared, &tx, &stop))
                .map_err(spawn_err)?
        };
        let wal = Wal {
            shared,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            background: Mutex::new(Some(background)),
            stop,
            dir_lock: Mutex::new(Some(dir_lock)),
        };
        Ok((Arc::new(wal), recovered.report))
    }

    /// Durably appends the puts and the takes of one transaction as one member of a group.
    ///
    /// `done` runs on the writer thread after the group's sync (Ok: the puts are queued, the
    /// takes are gone for good) or its failure (Err: nothing applied; `Full` when free space is
    /// short and there are puts, `TooLarge`, `Io`, `Closed`). Either list may be empty; both
    /// empty completes Ok at once. The puts and the takes are separate records: a crash between
    /// them can keep the puts without the takes (still at-least-once).
    pub fn commit(&self, puts: Vec<Vec<u8>>, takes: Vec<Seq>, done: Completion) {
        if puts.is_empty() && takes.is_empty() {
            done(Ok(()));
            return;
        }
        let takes = takes.into_iter().map(|s| s.0).collect();
        let request = Request::Commit(CommitRequest { puts, takes, done });
        let guard = lock(&self.tx);
        let unsent = match guard.as_ref() {
            Some(tx) => tx.send(request).err().map(|e| e.0),
            None => Some(request),
        };
        drop(guard);
        if let Some(Request::Commit(c)) = unsent {
            (c.done)(Err(WalError::Closed));
        }
    }

    /// Blocking convenience over [`Wal::commit`] (tests, tools).
    ///
    /// # Errors
    /// As reported to the completion of [`Wal::commit`].
    pub fn commit_blocking(&self, puts: Vec<Vec<u8>>, takes: Vec<Seq>) -> Result<(), WalError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.commit(
            puts,
            takes,
            Box::new(move |r| {
                // The receiver is gone only if this caller's thread died; nobody to tell then.
                let _ignored = tx.send(r);
            }),
        );
        rx.recv().unwrap_or(Err(WalError::Closed))
    }

    /// Moves up to `max` entries from the head of the queue into flight and reads their payloads
    /// (on the calling thread, with positional reads).
    ///
    /// Every payload is checked against the crc stored beside it. A damaged one is never
    /// returned: it is logged at ERROR (file, offset, seq), counted in
    /// [`Wal::corrupt_entries`] and removed for good (a TAKE is committed for it before this
    /// returns); the other entries are returned normally, so the result can be shorter than what
    /// was queued. (Do not call `take` from a [`Completion`]: dropping a damaged entry waits for
    /// the writer.)
    ///
    /// # Errors
    /// `Closed`, or `Io` naming the segment when a read fails: the entries then go back to the
    /// head of the queue.
    pub fn take(&self, max: usize) -> Result<Vec<Taken>, WalError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(WalError::Closed);
        }
        let entries = lock(&self.shared.state).queue.take(max);
        match self.shared.read_payloads(&entries) {
            Ok(reads) => {
                let mut taken = Vec::with_capacity(entries.len());
                let mut damaged = Vec::new();
                for (e, read) in entries.iter().zip(reads) {
                    match read {
                        Ok(payload) => taken.push(Taken {
                            seq: Seq(e.seq),
                            payload,
                        }),
                        Err((file, offset, reason)) => {
                            tracing::error!(
                                file = %file.display(), offset, seq = e.seq, reason = %reason,
                                "Corrupt WAL entry: its payload fails its checksum; dropped, not delivered."
                            );
                            damaged.push(Seq(e.seq));
                        }
                    }
                }
                if !damaged.is_empty() {
                    self.drop_damaged(damaged);
                }
                Ok(taken)
            }
            Err(e) => {
                let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
                lock(&self.shared.state).queue.rollback(&seqs);
                Err(e)
            }
        }
    }

    /// Removes damaged in-flight entries for good with a TAKE record, counting them once it is
    /// durable. Waits for the writer, except on the writer thread itself (a completion calling
    /// `take`), where waiting would deadlock. If the TAKE fails the entries go back to the queue
    /// and the next take finds them again.
    fn drop_damaged(&self, seqs: Vec<Seq>) {
        let n = seqs.len() as u64;
        let shared = Arc::clone(&self.shared);
        let back: Vec<u64> = seqs.iter().map(|s| s.0).collect();
        let (tx, rx) = mpsc::sync_channel(1);
        self.commit(
            Vec::new(),
            seqs,
            Box::new(move |r| {
                match r {
                    Ok(()) => {
                        shared.corrupt.fetch_add(n, Ordering::AcqRel);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, entries = n, "Could not drop corrupt WAL entries; they will be found again.");
                        lock(&shared.state).queue.rollback(&back);
                    }
                }
                // Nobody waits when `take` ran on the writer thread.
                let _ignored = tx.send(());
            }),
        );
        if std::thread::current().name() != Some("flumen-wal-writer") {
            let _done = rx.recv();
        }
    }

    /// Entries found corrupt by [`Wal::take`] (payload checksum mismatch) and dropped since open.
    pub fn corrupt_entries(&self) -> u64 {
        self.shared.corrupt.load(Ordering::Acquire)
    }

    /// Returns in-flight entries to the queue, in seq order, ahead of everything never taken.
    /// Seqs not in flight are ignored.
    pub fn rollback(&self, seqs: &[Seq]) {
        let seqs: Vec<u64> = seqs.iter().map(|s| s.0).collect();
        lock(&self.shared.state).queue.rollback(&seqs);
    }

    /// Entries queued (not in flight).
    pub fn len(&self) -> usize {
        lock(&self.shared.state).queue.len()
    }

    /// True when nothing is queued (entries may still be in flight).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries taken and not yet committed or rolled back.
    pub fn in_flight(&self) -> usize {
        lock(&self.shared.state).queue.in_flight_len()
    }

    /// Writes a checkpoint now, then deletes the segments it made unnecessary.
    ///
    /// # Errors
    /// `Closed`, or `Io` naming the file when writing the checkpoint (or its backup) failed; the
    /// previous checkpoint then stays in place and nothing is deleted.
    pub fn checkpoint(&self) -> Result<(), WalError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(WalError::Closed);
        }
        self.shared.checkpoint()
    }

    /// Stops the background thread and the writer (which finishes the requests already sent),
    /// writes a final checkpoint when `checkpoint_on_close`, and releases the directory lock.
    /// Calling it again does nothing.
    ///
    /// # Errors
    /// The final checkpoint's error; the WAL is closed and unlocked anyway.
    pub fn close(&self) -> Result<(), WalError> {
        self.shutdown(self.shared.config.checkpoint_on_close)
    }

    /// Bytes used by the segments on disk.
    pub fn disk_usage(&self) -> u64 {
        lock(&self.shared.state)
            .segments
            .values()
            .map(|s| s.size)
            .sum()
    }

    /// Close, with or without the final checkpoint (without: the state a crash would leave,
    /// minus the torn writes).
    pub(crate) fn shutdown(&self, with_checkpoint: bool) -> Result<(), WalError> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        {
            let (flag, cv) = &*self.stop;
            *lock(flag) = true;
            cv.notify_all();
        }
        if let Some(handle) = lock(&self.background).take()
            && handle.join().is_err()
        {
            tracing::error!("The WAL checkpoint thread panicked.");
        }
        // With the background thread's sender gone, dropping ours disconnects the channel: the
        // writer finishes what was sent, syncs and exits.
        drop(lock(&self.tx).take());
        if let Some(handle) = lock(&self.writer).take() {
            // Closing from a completion (the last `Arc<Wal>` dropped on the writer thread) must
            // not join itself: the writer exits on its own once this call returns.
            if handle.thread().id() != std::thread::current().id() && handle.join().is_err() {
                tracing::error!("The WAL writer thread panicked.");
            }
        }
        let result = if with_checkpoint {
            self.shared.checkpoint()
        } else {
            Ok(())
        };
        lock(&self.shared.readers).clear();
        drop(lock(&self.dir_lock).take());
        result
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "Closing the WAL failed.");
        }
    }
}

/// The background thread: checkpoints every `checkpoint_interval` and, with `fsync = false`, asks
/// the writer to sync every `fsync_interval`. Waits on a condvar so close wakes it at once.
fn background(shared: &Shared, tx: &Sender<Request>, stop: &(Mutex<bool>, Condvar)) {
    let every_checkpoint = shared.config.checkpoint_interval;
    let every_sync = if shared.config.fsync {
        Duration::ZERO
    } else {
        shared.config.fsync_interval
    };
    let start = shared.clock.now();
    let (mut next_checkpoint, mut next_sync) = (start + every_checkpoint, start + every_sync);
    loop {
        let now = shared.clock.now();
        let mut wait = Duration::from_secs(3600);
        if !every_checkpoint.is_zero() {
            wait = wait.min(next_checkpoint.saturating_duration_since(now));
        }
        if !every_sync.is_zero() {
            wait = wait.min(next_sync.saturating_duration_since(now));
        }
        {
            let (flag, cv) = stop;
            let mut stopped = lock(flag);
            if !*stopped && !wait.is_zero() {
                stopped = cv
                    .wait_timeout(stopped, wait)
                    .map_or_else(|e| e.into_inner().0, |r| r.0);
            }
            if *stopped {
                return;
            }
        }
        let now = shared.clock.now();
        if !every_sync.is_zero() && now >= next_sync {
            if tx.send(Request::Sync).is_err() {
                return;
            }
            next_sync = now + every_sync;
        }
        if !every_checkpoint.is_zero() && now >= next_checkpoint {
            if let Err(e) = shared.checkpoint() {
                tracing::error!(error = %e, "WAL checkpoint failed.");
            }
            next_checkpoint = now + every_checkpoint;
        }
    }
}

impl Shared {
    /// The read handle and path of a segment, opened on first use.
    fn reader(&self, segment: u64) -> Result<ReadHandle, WalError> {
        if let Some((f, p)) = lock(&self.readers).get(&segment) {
            return Ok((Arc::clone(f), p.clone()));
        }
        let path = lock(&self.state)
            .segments
            .get(&segment)
            .map(|s| s.path.clone())
            .unwrap_or_else(|| segment::path_for(&self.config.data_dirs, segment));
        let file = self
            .fs
            .open(&path, false)
            .map_err(|e| WalError::io(&path, "open", e))?;
        lock(&self.readers).insert(segment, (Arc::clone(&file), path.clone()));
        Ok((file, path))
    }

    /// Reads the payloads of `entries`, each with the `payload_len | payload_crc` before it,
    /// merging reads of neighbouring payloads, and checks each one.
    ///
    /// # Errors
    /// `Io` when a segment cannot be opened or read; a damaged payload is an `Err` item instead.
    fn read_payloads(&self, entries: &[Entry]) -> Result<Vec<PayloadRead>, WalError> {
        const FRAME: u64 = PAYLOAD_HEADER_LEN as u64;
        let mut out = Vec::with_capacity(entries.len());
        let mut buf = Vec::new();
        let mut rest = entries;
        while let Some(first) = rest.first() {
            let start = u64::from(first.offset).saturating_sub(FRAME);
            let mut end = u64::from(first.offset) + u64::from(first.len);
            let mut n = 1;
            for e in rest.iter().skip(1) {
                let off = u64::from(e.offset).saturating_sub(FRAME);
                let e_end = u64::from(e.offset) + u64::from(e.len);
                if e.segment != first.segment
                    || off < end
                    || off - end > READ_MAX_GAP
                    || e_end - start > READ_MAX_SPAN
                {
                    break;
                }
                end = e_end;
                n += 1;
            }
            let (file, path) = self.reader(first.segment)?;
            buf.resize((end - start) as usize, 0);
            file.read_exact_at(&mut buf, start)
                .map_err(|e| WalError::io(&path, "read", e))?;
            let (run, tail) = rest.split_at(n.min(rest.len()));
            for e in run {
                let framed = u64::from(e.offset).saturating_sub(FRAME);
                let from = (framed - start) as usize;
                let bytes = buf.get(from..).unwrap_or_default();
                let read = if u64::from(e.offset) < FRAME {
                    Err("payload offset inside the segment header".to_string())
                } else {
                    record::check_payload(bytes, e.len)
                        .map(<[u8]>::to_vec)
                        .map_err(|d| d.to_string())
                };
                out.push(read.map_err(|reason| (path.clone(), framed, reason)));
            }
            rest = tail;
        }
        Ok(out)
    }

    /// Writes a checkpoint and deletes the segments it made unnecessary (see the crate docs).
    ///
    /// When the checkpoint cannot be written (a full disk), consumed prefix segments are freed
    /// without it and the write is tried once more: see "Checkpoint and segment deletion" in the
    /// crate docs for why that keeps recovery exact.
    pub(crate) fn checkpoint(&self) -> Result<(), WalError> {
        let _one_at_a_time = lock(&self.checkpoint_lock);
        let error = match self.try_checkpoint() {
            Ok(()) => return Ok(()),
            Err(CheckpointFailure::Before(e)) => return Err(e),
            Err(CheckpointFailure::Write(e)) => e,
        };
        let freed = match self.free_consumed_prefix() {
            Ok(0) => return Err(error),
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "Could not remove the checkpoint to free consumed WAL segments.");
                return Err(error);
            }
        };
        tracing::warn!(
            error = %error, segments = freed,
            "WAL checkpoint failed; removed the checkpoint and the consumed segments to free space (a restart now replays the whole log) and trying again."
        );
        self.try_checkpoint().map_err(|f| match f {
            CheckpointFailure::Before(e) | CheckpointFailure::Write(e) => e,
        })
    }

    /// One checkpoint attempt: snapshot, (sync,) write, copy to the backup, delete segments.
    fn try_checkpoint(&self) -> Result<(), CheckpointFailure> {
        let (next_seq, applied) = {
            let st = lock(&self.state);
            (st.next_seq, st.applied)
        };
        if !self.config.fsync {
            // The checkpoint must not point past durable data.
            let (file, path) = self.reader(applied.0).map_err(CheckpointFailure::Before)?;
            file.sync_data()
                .map_err(|e| CheckpointFailure::Before(WalError::io(&path, "fdatasync", e)))?;
        }
        let written = checkpoint::write(
            &*self.fs,
            &self.config.checkpoint_dir,
            next_seq,
            applied,
            |from, out| {
                lock(&self.state)
                    .queue
                    .chunk(from, next_seq, CHECKPOINT_SLICE, out)
            },
        )
        .map_err(CheckpointFailure::Write)?;
        if let Some(backup) = &self.config.backup_checkpoint_dir {
            checkpoint::copy(&*self.fs, &self.config.checkpoint_dir, backup)
                .map_err(CheckpointFailure::Write)?;
        }
        tracing::debug!(entries = written.count, "WAL checkpoint written.");
        self.delete_segments(applied.0.min(written.min_segment.unwrap_or(u64::MAX)));
        Ok(())
    }

    /// Without a new checkpoint, frees the consumed prefix: the segments that, with every older
    /// one, hold no live entry (queued or in flight) and lie before the applied position. The
    /// checkpoint (and its backup) are removed durably FIRST: an old checkpoint may name those
    /// segments, while no checkpoint means a full replay, which prefix deletion keeps exact.
    /// Unlinking needs no free space. Returns how many segments were deleted.
    fn free_consumed_prefix(&self) -> Result<usize, WalError> {
        let below = {
            let st = lock(&self.state);
            st.applied.0.min(st.queue.min_segment().unwrap_or(u64::MAX))
        };
        if lock(&self.state).segments.range(..below).next().is_none() {
            return Ok(0);
        }
        checkpoint::remove(&*self.fs, &self.config.checkpoint_dir)?;
        if let Some(backup) = &self.config.backup_checkpoint_dir {
            checkpoint::remove(&*self.fs, backup)?;
        }
        Ok(self.delete_segments(below))
    }

    /// Deletes every segment with an id below `below`, oldest first; returns how many.
    fn delete_segments(&self, below: u64) -> usize {
        let doomed: Vec<(u64, SegmentInfo)> = {
            let mut st = lock(&self.state);
            let ids: Vec<u64> = st.segments.range(..below).map(|(id, _)| *id).collect();
            ids.into_iter()
                .filter_map(|id| st.segments.remove(&id).map(|s| (id, s)))
                .collect()
        };
        if doomed.is_empty() {
            return 0;
        }
        {
            let mut readers = lock(&self.readers);
            for (id, _) in &doomed {
                readers.remove(id);
            }
        }
        let mut dirs = BTreeSet::new();
        for (_, info) in &doomed {
            match self.fs.remove(&info.path) {
                Ok(()) => {
                    dirs.extend(info.path.parent().map(Path::to_path_buf));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %info.path.display(), error = %e, "Could not delete a WAL segment.");
                }
            }
        }
        for dir in dirs {
            if let Err(e) = self.fs.sync_dir(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "Could not sync a WAL directory.");
            }
        }
        tracing::debug!(segments = doomed.len(), "WAL segments deleted.");
        doomed.len()
    }
}
