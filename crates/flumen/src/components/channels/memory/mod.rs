//! The `memory` channel: an in-process bounded queue with Flume's transaction semantics.
//!
//! Invariants (all under one mutex, never held across an `.await`):
//! - `queue.len() + in_flight <= capacity`, where `in_flight` counts events taken by open
//!   transactions. Taken events keep their slot until the take commits, so a rollback can
//!   always put them back at the head without waiting.
//! - The same holds for the byte budget, counted as Flume does: bodies only, in 100-byte slots.
//! - A put becomes visible at commit, all at once; if the room is not there within
//!   `keep-alive` seconds, the commit fails with `Full` and nothing of it is queued.
//!
//! Contents are lost when the process dies; use the `file` channel for durability.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use flumen_config::{Diagnostic, Props};
use flumen_core::channel::attempt_until;
use flumen_core::{Channel, ChannelCounters, ChannelError, Event, Transaction};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::components::{BuildResult, ChannelBuildContext, ChannelDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: ChannelDescriptor = ChannelDescriptor {
    name: "memory",
    classes: &["org.apache.flume.channel.MemoryChannel"],
    description: "In-memory bounded queue; fast, lost on crash",
    build,
};

/// Flume accounts body bytes in slots of this size (`byteCapacitySlotSize`).
const BYTE_SLOT: u64 = 100;

/// Configuration of the `memory` channel.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct MemoryChannelConfig {
    /// Most events held. Flume key: `capacity`. Default: 100.
    pub capacity: usize,
    /// Most events per put or take transaction. Flume key: `transactionCapacity`. Default: 100.
    #[serde(rename = "transactionCapacity")]
    pub transaction_capacity: usize,
    /// Seconds a commit waits for room. Flume key: `keep-alive`. Default: 3.
    #[serde(rename = "keep-alive")]
    pub keep_alive: u64,
    /// Byte budget for event bodies. Flume key: `byteCapacity`. Default: unlimited (Flume: 80%
    /// of the JVM heap, which has no equivalent here).
    #[serde(rename = "byteCapacity")]
    pub byte_capacity: Option<u64>,
    /// Share of `byteCapacity` kept for headers. Flume key: `byteCapacityBufferPercentage`.
    /// Default: 20.
    #[serde(rename = "byteCapacityBufferPercentage")]
    pub byte_capacity_buffer_percentage: u64,
}

impl Default for MemoryChannelConfig {
    fn default() -> Self {
        Self {
            capacity: 100,
            transaction_capacity: 100,
            keep_alive: 3,
            byte_capacity: None,
            byte_capacity_buffer_percentage: 20,
        }
    }
}

impl MemoryChannelConfig {
    fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.capacity == 0 {
            errors.push(props.error("capacity", "capacity must be at least 1"));
        }
        if self.transaction_capacity == 0 {
            errors.push(props.error(
                "transactionCapacity",
                "transactionCapacity must be at least 1",
            ));
        }
        if self.transaction_capacity > self.capacity {
            errors.push(
                props
                    .error(
                        "transactionCapacity",
                        format!(
                            "transactionCapacity ({}) must not exceed capacity ({})",
                            self.transaction_capacity, self.capacity
                        ),
                    )
                    .with_hint("raise `capacity` or lower `transactionCapacity`"),
            );
        }
        if self.byte_capacity_buffer_percentage > 100 {
            errors.push(props.error(
                "byteCapacityBufferPercentage",
                "byteCapacityBufferPercentage must be between 0 and 100",
            ));
        }
        errors
    }

    /// The byte budget in slots, as Flume computes it; a budget under one slot is unlimited.
    fn byte_slots(&self) -> u64 {
        match self.byte_capacity {
            None => u64::MAX,
            Some(b) => {
                let usable = b as f64 * (1.0 - self.byte_capacity_buffer_percentage as f64 / 100.0);
                let slots = (usable / BYTE_SLOT as f64) as u64;
                if slots < 1 { u64::MAX } else { slots }
            }
        }
    }
}

fn build(props: &Props, cx: &ChannelBuildContext) -> BuildResult<Arc<dyn Channel>> {
    build_with(
        props,
        MemoryChannelConfig::validate,
        |config: MemoryChannelConfig| {
            let ch: Arc<dyn Channel> =
                Arc::new(MemoryChannel::new(&cx.name, config, cx.counters.clone()));
            Ok(ch)
        },
    )
}

fn slots_of(events: &[Event]) -> u64 {
    events
        .iter()
        .map(|e| (e.body.len() as u64).div_ceil(BYTE_SLOT))
        .sum()
}

/// The `memory` channel. Cheap to share: transactions hold an `Arc` of its state.
pub struct MemoryChannel {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    config: MemoryChannelConfig,
    byte_slots: u64,
    state: Mutex<State>,
    /// Wakes sink runners waiting in `readable()` when a put commits or a take rolls back.
    readable: Notify,
    /// Wakes commits waiting for room when a take commits.
    space: Notify,
    closed: AtomicBool,
    counters: Arc<ChannelCounters>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Event>,
    /// Events taken by open transactions; they keep their slots until committed.
    in_flight: usize,
    /// Byte slots used by queued and in-flight events.
    used_slots: u64,
}

impl MemoryChannel {
    /// A channel named `name`.
    pub fn new(name: &str, config: MemoryChannelConfig, counters: Arc<ChannelCounters>) -> Self {
        counters.channel_capacity.set(config.capacity as u64);
        counters.lifecycle.started();
        let byte_slots = config.byte_slots();
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                byte_slots,
                state: Mutex::new(State {
                    queue: VecDeque::with_capacity(config.capacity.min(1 << 16)),
                    ..State::default()
                }),
                config,
                readable: Notify::new(),
                space: Notify::new(),
                closed: AtomicBool::new(false),
                counters,
            }),
        }
    }

    /// The configuration the channel runs with.
    pub fn config(&self) -> &MemoryChannelConfig {
        &self.inner.config
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` inconsistent in a way that
        // matters more than stopping the agent would, so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn full(&self) -> ChannelError {
        ChannelError::Full {
            channel: self.name.clone(),
            capacity: self.config.capacity,
        }
    }

    fn closed_error(&self) -> ChannelError {
        ChannelError::Closed {
            channel: self.name.clone(),
        }
    }
}

#[async_trait]
impl Channel for MemoryChannel {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn begin(&self) -> Box<dyn Transaction> {
        Box::new(MemoryTransaction {
            ch: self.inner.clone(),
            puts: Vec::new(),
            put_slots: 0,
            takes: Vec::new(),
            take_slots: 0,
        })
    }

    async fn put_batch(&self, events: Vec<Event>) -> Result<(), (ChannelError, Vec<Event>)> {
        let mut tx = MemoryTransaction {
            ch: self.inner.clone(),
            puts: Vec::new(),
            put_slots: 0,
            takes: Vec::new(),
            take_slots: 0,
        };
        let n = events.len();
        if n > self.inner.config.transaction_capacity {
            self.inner.counters.event_put_attempt.add(n as u64);
            let e = ChannelError::TransactionCapacity {
                channel: self.inner.name.clone(),
                capacity: self.inner.config.transaction_capacity,
            };
            return Err((e, events));
        }
        // Staging cannot fail below transactionCapacity; it moves the vector, no copy.
        let _staged = tx.put(events).await;
        match tx.commit_inner().await {
            Ok(()) => Ok(()),
            Err(e) => Err((e, std::mem::take(&mut tx.puts))),
        }
    }

    async fn readable(&self) {
        let inner = &self.inner;
        attempt_until(&inner.readable, None, || {
            let ready = !inner.lock().queue.is_empty() || inner.closed.load(Ordering::Acquire);
            ready.then_some(())
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
        self.inner.lock().queue.len()
    }

    async fn close(&self) -> Result<(), ChannelError> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.readable.notify_waiters();
        self.inner.space.notify_waiters();
        self.inner.counters.lifecycle.stopped();
        Ok(())
    }
}

struct MemoryTransaction {
    ch: Arc<Inner>,
    puts: Vec<Event>,
    put_slots: u64,
    takes: Vec<Event>,
    take_slots: u64,
}

impl MemoryTransaction {
    /// Commits; on failure the staged puts stay in `self.puts` (and are dropped with the
    /// transaction, or handed back by `put_batch`).
    async fn commit_inner(&mut self) -> Result<(), ChannelError> {
        let ch = self.ch.clone();
        let n_take = self.takes.len();
        let n_put = self.puts.len();
        if n_put == 0 {
            if n_take > 0 {
                {
                    let mut st = ch.lock();
                    st.in_flight -= n_take;
                    st.used_slots -= self.take_slots;
                }
                self.takes.clear();
                self.take_slots = 0;
                ch.counters.event_take_success.add(n_take as u64);
                ch.space.notify_waiters();
            }
            return Ok(());
        }
        if ch.closed.load(Ordering::Acquire) {
            return Err(ch.closed_error());
        }
        let deadline = Instant::now() + Duration::from_secs(ch.config.keep_alive);
        let done = attempt_until(&ch.space, Some(deadline), || {
            if ch.closed.load(Ordering::Acquire) {
                return Some(Err(ch.closed_error()));
            }
            let mut st = ch.lock();
            let used = st.queue.len() + st.in_flight - n_take;
            let fits_events = used + n_put <= ch.config.capacity;
            let used_slots = st.used_slots - self.take_slots;
            let fits_bytes =
                ch.byte_slots == u64::MAX || used_slots + self.put_slots <= ch.byte_slots;
            if fits_events && fits_bytes {
                st.in_flight -= n_take;
                st.used_slots = used_slots + self.put_slots;
                st.queue.extend(self.puts.drain(..));
                ch.counters.channel_size.set(st.queue.len() as u64);
                return Some(Ok(()));
            }
            // A batch larger than the channel can never fit, however long we wait.
            (!fits_events && n_put > ch.config.capacity).then(|| Err(ch.full()))
        })
        .await;
        match done {
            Some(Ok(())) => {
                self.takes.clear();
                self.take_slots = 0;
                self.put_slots = 0;
                ch.counters.put_committed(n_put as u64);
                ch.counters.event_take_success.add(n_take as u64);
                ch.readable.notify_waiters();
                if n_take > n_put {
                    ch.space.notify_waiters();
                }
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => {
                let st = ch.lock();
                let used = st.queue.len() + st.in_flight - n_take;
                drop(st);
                Err(if used + n_put > ch.config.capacity {
                    ch.full()
                } else {
                    ChannelError::ByteCapacity {
                        channel: ch.name.clone(),
                        byte_capacity: ch.config.byte_capacity.unwrap_or(0),
                    }
                })
            }
        }
    }

    /// Returns taken events to the head of the queue, in order, and releases nothing: their
    /// slots were never given up.
    fn undo_takes(&mut self) {
        if self.takes.is_empty() {
            return;
        }
        let ch = &self.ch;
        {
            let mut st = ch.lock();
            st.in_flight -= self.takes.len();
            for e in self.takes.drain(..).rev() {
                st.queue.push_front(e);
            }
            ch.counters.channel_size.set(st.queue.len() as u64);
        }
        self.take_slots = 0;
        ch.readable.notify_waiters();
    }
}

#[async_trait]
impl Transaction for MemoryTransaction {
    async fn put(&mut self, events: Vec<Event>) -> Result<(), ChannelError> {
        let ch = &self.ch;
        ch.counters.event_put_attempt.add(events.len() as u64);
        if self.puts.len() + events.len() > ch.config.transaction_capacity {
            return Err(ChannelError::TransactionCapacity {
                channel: ch.name.clone(),
                capacity: ch.config.transaction_capacity,
            });
        }
        if ch.byte_slots != u64::MAX {
            self.put_slots += slots_of(&events);
        }
        if self.puts.is_empty() {
            self.puts = events;
        } else {
            self.puts.extend(events);
        }
        Ok(())
    }

    async fn take(&mut self, max: usize) -> Result<usize, ChannelError> {
        let ch = &self.ch;
        let room = ch.config.transaction_capacity - self.takes.len();
        if room == 0 && max > 0 {
            return Err(ChannelError::TransactionCapacity {
                channel: ch.name.clone(),
                capacity: ch.config.transaction_capacity,
            });
        }
        let want = max.min(room);
        let n = {
            let mut st = ch.lock();
            let n = want.min(st.queue.len());
            st.in_flight += n;
            self.takes.extend(st.queue.drain(..n));
            ch.counters.channel_size.set(st.queue.len() as u64);
            n
        };
        if ch.byte_slots != u64::MAX {
            self.take_slots += slots_of(&self.takes[self.takes.len() - n..]);
        }
        // Flume counts one attempt per take() call, including the one that found nothing.
        ch.counters
            .event_take_attempt
            .add((n + usize::from(n < want)) as u64);
        Ok(n)
    }

    fn taken(&self) -> &[Event] {
        &self.takes
    }

    async fn commit(mut self: Box<Self>) -> Result<(), ChannelError> {
        self.commit_inner().await
    }

    fn rollback(self: Box<Self>) {
        // Drop does the work.
    }
}

impl Drop for MemoryTransaction {
    fn drop(&mut self) {
        self.undo_takes();
    }
}

#[cfg(test)]
mod tests;
