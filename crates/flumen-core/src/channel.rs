//! The channel contract: a bounded buffer between sources and sinks, used only through
//! transactions.
//!
//! Invariants every implementation keeps (checked by the conformance tests of each channel):
//! - a put batch becomes visible to takers all at once, at commit, or not at all;
//! - events taken in a transaction that is rolled back (explicitly or by drop) return to the
//!   head of the channel in their original order, before anything put later;
//! - a committed take is never delivered again.

use std::sync::Arc;

use async_trait::async_trait;

use crate::BoxError;
use crate::event::Event;
use crate::metrics::ChannelCounters;

/// What can go wrong in a channel transaction.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// No room for the put within `keep-alive`: the source must retry or refuse its client.
    #[error(
        "channel `{channel}` is full ({capacity} events): space for commit couldn't be acquired; \
         sinks are likely not keeping up"
    )]
    Full {
        /// The channel's name.
        channel: String,
        /// Its configured capacity in events.
        capacity: usize,
    },
    /// The byte budget (`byteCapacity`) has no room for the put within `keep-alive`.
    #[error("channel `{channel}` is full: byteCapacity of {byte_capacity} bytes reached")]
    ByteCapacity {
        /// The channel's name.
        channel: String,
        /// The configured byte capacity.
        byte_capacity: u64,
    },
    /// A single transaction tried to put or take more than `transactionCapacity` events.
    #[error(
        "transaction on channel `{channel}` exceeds transactionCapacity ({capacity} events); \
         lower the batch size or raise transactionCapacity"
    )]
    TransactionCapacity {
        /// The channel's name.
        channel: String,
        /// The configured transaction capacity.
        capacity: usize,
    },
    /// The channel was closed (agent shutting down or channel removed by a reload).
    #[error("channel `{channel}` is closed")]
    Closed {
        /// The channel's name.
        channel: String,
    },
    /// The channel's storage failed (disk full, I/O error...).
    #[error("channel `{channel}` storage failed: {source}")]
    Storage {
        /// The channel's name.
        channel: String,
        /// The underlying failure.
        #[source]
        source: BoxError,
    },
}

/// A bounded, transactional buffer between sources and sinks.
///
/// Implementations must be safe to use from many tasks at once: several sources may put and
/// several sinks may take concurrently, each in its own transaction.
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// The channel's configured name.
    fn name(&self) -> &str;
    /// Begins a transaction. Dropping it without [`Transaction::commit`] rolls it back.
    fn begin(&self) -> Box<dyn Transaction>;
    /// Resolves when committed events may be available to take. Lets sink runners wait instead
    /// of polling; a spurious wake-up is allowed, a missed one is not.
    async fn readable(&self);
    /// The channel's Flume counters (shared with the metrics registry).
    fn counters(&self) -> &Arc<ChannelCounters>;
    /// Largest number of events one transaction may put or take (`transactionCapacity`).
    fn transaction_capacity(&self) -> usize;
    /// Number of committed events currently queued.
    fn len(&self) -> usize;
    /// Whether no committed event is queued.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Puts and commits `events` in one transaction. When the channel refuses them, they are
    /// handed back unchanged, so a source can retry without having copied them beforehand.
    /// Channels override this to avoid the copy the default makes.
    ///
    /// # Errors
    /// As [`Transaction::put`] and [`Transaction::commit`], with the events.
    async fn put_batch(&self, events: Vec<Event>) -> Result<(), (ChannelError, Vec<Event>)> {
        let mut tx = self.begin();
        if let Err(e) = tx.put(events.clone()).await {
            return Err((e, events));
        }
        tx.commit().await.map_err(|e| (e, events))
    }
    /// Identity of storage that outlives this channel value (a durable channel's directory).
    /// Two channels with the same key hold the same events, so a reload must not move events
    /// from one to the other.
    fn storage_key(&self) -> Option<String> {
        None
    }
    /// Flushes and releases resources; called once when the channel is retired.
    ///
    /// # Errors
    /// A storage failure while flushing.
    async fn close(&self) -> Result<(), ChannelError> {
        Ok(())
    }
}

/// One transaction on a channel. A transaction that exists has begun; `commit` and `rollback`
/// consume it, and `Drop` rolls back, so every error path undoes its work.
#[async_trait]
pub trait Transaction: Send {
    /// Stages `events` to be published at commit.
    ///
    /// # Errors
    /// [`ChannelError::TransactionCapacity`] past `transactionCapacity`.
    async fn put(&mut self, events: Vec<Event>) -> Result<(), ChannelError>;
    /// Takes up to `max` committed events into this transaction and returns how many were
    /// taken; they are then visible through [`Transaction::taken`]. May return 0.
    ///
    /// # Errors
    /// [`ChannelError::TransactionCapacity`] past `transactionCapacity`, or a storage failure.
    async fn take(&mut self, max: usize) -> Result<usize, ChannelError>;
    /// Every event taken so far in this transaction, in channel order.
    fn taken(&self) -> &[Event];
    /// Publishes the puts and makes the takes permanent. Durable channels return only once the
    /// outcome is on stable storage.
    ///
    /// # Errors
    /// [`ChannelError::Full`] or [`ChannelError::ByteCapacity`] when the puts do not fit within
    /// `keep-alive`; the transaction is then rolled back.
    async fn commit(self: Box<Self>) -> Result<(), ChannelError>;
    /// Undoes the transaction: puts are discarded, takes return to the head of the channel.
    fn rollback(self: Box<Self>);
}

/// Calls `attempt` until it returns `Some`, sleeping on `notify` between calls, and gives up
/// with `None` when `deadline` passes. It registers for the wake-up before each attempt, so a
/// notification sent between an attempt and the wait is never missed (the lost-wake-up race
/// every hand-written `Notify` loop has to get right). Channels use it for "wait for room" and
/// "wait for data".
pub async fn attempt_until<R>(
    notify: &tokio::sync::Notify,
    deadline: Option<tokio::time::Instant>,
    mut attempt: impl FnMut() -> Option<R>,
) -> Option<R> {
    loop {
        let mut notified = std::pin::pin!(notify.notified());
        notified.as_mut().enable();
        if let Some(r) = attempt() {
            return Some(r);
        }
        match deadline {
            None => notified.await,
            Some(d) => {
                if tokio::time::timeout_at(d, notified).await.is_err() {
                    return None;
                }
            }
        }
    }
}
