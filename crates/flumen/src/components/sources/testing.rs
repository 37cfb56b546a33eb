//! Test kit for the source tests: a tiny in-memory channel that can be told to refuse puts, and
//! a [`SourceContext`] builder around it.
//!
//! The channel is deliberately simpler than the memory channel: no keep-alive, no byte budget.
//! A commit either fits under `capacity` and is published at once, or fails with
//! [`ChannelError::Full`]; `set_refusing(true)` makes every commit fail, which is how the tests
//! drive the sources' failure paths (`FAILED:` replies, retries, drop counters).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use flumen_core::{
    Channel, ChannelCounters, ChannelError, ChannelProcessor, ChannelSelector, Event,
    InterceptorChain, SourceContext, SourceCounters, Transaction,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A bounded in-memory channel for tests. Cheap handle: transactions share its state.
pub(crate) struct TestChannel {
    shared: Arc<Shared>,
    counters: Arc<ChannelCounters>,
}

struct Shared {
    capacity: usize,
    transaction_capacity: usize,
    /// When set, every commit fails with `Full`.
    refusing: AtomicBool,
    queue: Mutex<VecDeque<Event>>,
    /// Signalled after every successful commit; the waiting helpers use it.
    committed: Notify,
}

impl TestChannel {
    /// A channel holding up to `capacity` events, `transaction_capacity` per transaction.
    pub(crate) fn new(capacity: usize, transaction_capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            shared: Arc::new(Shared {
                capacity,
                transaction_capacity,
                refusing: AtomicBool::new(false),
                queue: Mutex::new(VecDeque::new()),
                committed: Notify::new(),
            }),
            counters: Arc::default(),
        })
    }

    /// Makes every later commit fail (`true`) or behave normally (`false`).
    pub(crate) fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Removes and returns every queued event.
    pub(crate) fn drain(&self) -> Vec<Event> {
        self.shared.queue.lock().unwrap().drain(..).collect()
    }

    /// Drains events until at least `n` were collected; panics after 10 s.
    pub(crate) async fn take_at_least(&self, n: usize) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        loop {
            let notified = self.shared.committed.notified();
            out.extend(self.drain());
            if out.len() >= n {
                return out;
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(deadline) => {
                    panic!("timed out: {} events of {n} arrived", out.len())
                }
            }
        }
    }
}

/// Bodies as strings, for assertions.
pub(crate) fn bodies(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect()
}

/// A context for source `r1` writing to `channel` alone, with a fresh shutdown token.
pub(crate) fn context(channel: Arc<dyn Channel>) -> SourceContext {
    let channels: Vec<Arc<dyn Channel>> = vec![channel];
    SourceContext {
        name: Arc::from("r1"),
        processor: ChannelProcessor::new(
            channels,
            ChannelSelector::replicating_all(1),
            InterceptorChain::default(),
        ),
        shutdown: CancellationToken::new(),
        counters: Arc::new(SourceCounters::default()),
    }
}

/// Polls `cond` until it holds; panics after 10 s. For conditions nothing signals.
pub(crate) async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[async_trait]
impl Channel for TestChannel {
    fn name(&self) -> &str {
        "c1"
    }
    fn begin(&self) -> Box<dyn Transaction> {
        Box::new(TestTransaction {
            staged: Vec::new(),
            shared: Arc::clone(&self.shared),
        })
    }
    async fn readable(&self) {
        self.shared.committed.notified().await;
    }
    fn counters(&self) -> &Arc<ChannelCounters> {
        &self.counters
    }
    fn transaction_capacity(&self) -> usize {
        self.shared.transaction_capacity
    }
    fn len(&self) -> usize {
        self.shared.queue.lock().unwrap().len()
    }
}

struct TestTransaction {
    staged: Vec<Event>,
    shared: Arc<Shared>,
}

#[async_trait]
impl Transaction for TestTransaction {
    async fn put(&mut self, events: Vec<Event>) -> Result<(), ChannelError> {
        if self.staged.len() + events.len() > self.shared.transaction_capacity {
            return Err(ChannelError::TransactionCapacity {
                channel: "c1".into(),
                capacity: self.shared.transaction_capacity,
            });
        }
        self.staged.extend(events);
        Ok(())
    }
    async fn take(&mut self, _max: usize) -> Result<usize, ChannelError> {
        Ok(0)
    }
    fn taken(&self) -> &[Event] {
        &[]
    }
    async fn commit(self: Box<Self>) -> Result<(), ChannelError> {
        let full = || ChannelError::Full {
            channel: "c1".into(),
            capacity: self.shared.capacity,
        };
        if self.shared.refusing.load(Ordering::SeqCst) {
            return Err(full());
        }
        {
            let mut q = self.shared.queue.lock().unwrap();
            if q.len() + self.staged.len() > self.shared.capacity {
                return Err(full());
            }
            q.extend(self.staged.iter().cloned());
        }
        self.shared.committed.notify_one();
        Ok(())
    }
    fn rollback(self: Box<Self>) {}
}
