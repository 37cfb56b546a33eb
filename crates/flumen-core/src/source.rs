//! Sources: tasks that take events in and hand them to their [`ChannelProcessor`].
//!
//! A running source is one future that returns when its shutdown token fires. Flume's
//! event-driven and pollable sources collapse into this one trait; pollable ones drive their
//! work with [`SourceContext::poll_loop`], which reproduces Flume's back-off.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::BoxError;
use crate::channel::ChannelError;
use crate::event::Event;
use crate::metrics::SourceCounters;
use crate::processor::ChannelProcessor;
use crate::sink::Status;

/// Why a source stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address as configured.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An I/O failure the source cannot recover from by itself.
    #[error("{context}: {source}")]
    Io {
        /// What the source was doing.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A channel failure the source does not handle.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// Anything else.
    #[error(transparent)]
    Other(BoxError),
}

/// What a running source gets from the runtime.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The source's configured name, for logs.
    pub name: Arc<str>,
    /// Where the source's events go.
    pub processor: ChannelProcessor,
    /// Fires when the source must stop: stop accepting, finish the batch in hand, return.
    pub shutdown: CancellationToken,
    /// The source's Flume counters.
    pub counters: Arc<SourceCounters>,
}

/// Flume's `PollableSourceRunner` back-off: after `n` consecutive `Backoff` results the loop
/// sleeps `min(n × increment, max)`; after an error it sleeps `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollBackoff {
    /// `backoffSleepIncrement` (Flume default 1000 ms).
    pub increment: Duration,
    /// `maxBackoffSleep` (Flume default 5000 ms).
    pub max: Duration,
}

impl Default for PollBackoff {
    fn default() -> Self {
        Self {
            increment: Duration::from_millis(1000),
            max: Duration::from_millis(5000),
        }
    }
}

/// Returned by the retrying delivery when shutdown came first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("source is shutting down")]
pub struct Cancelled;

impl SourceContext {
    /// Hands one batch to the processor and keeps Flume's source counters:
    /// `EventReceivedCount`, `AppendBatchReceivedCount`, and on success
    /// `EventAcceptedCount`, `AppendBatchAcceptedCount`; on failure `ChannelWriteFail`.
    ///
    /// # Errors
    /// The channel failure; nothing of the batch may be assumed accepted.
    pub async fn deliver(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        let n = self.received(events.len());
        let events = self.processor.intercept(events);
        match self.processor.put_intercepted(events).await {
            Ok(()) => {
                self.accepted(n);
                Ok(())
            }
            Err((e, _)) => {
                self.counters.channel_write_fail.inc();
                Err(e)
            }
        }
    }

    /// Hands one event from a single-event RPC call (`append`) to the processor. Flume counts
    /// these in `AppendReceivedCount`/`AppendAcceptedCount` (plus the event counters), not in
    /// the `AppendBatch*` counters that [`SourceContext::deliver`] keeps.
    ///
    /// # Errors
    /// The channel failure; the event was not accepted.
    pub async fn deliver_append(&self, event: Event) -> Result<(), ChannelError> {
        let c = &self.counters;
        c.event_received.inc();
        c.append_received.inc();
        let events = self.processor.intercept(vec![event]);
        match self.processor.put_intercepted(events).await {
            Ok(()) => {
                c.event_accepted.inc();
                c.append_accepted.inc();
                Ok(())
            }
            Err((e, _)) => {
                c.channel_write_fail.inc();
                Err(e)
            }
        }
    }

    /// Delivers a batch, retrying with back-off (100 ms doubling to 5 s) while the channels
    /// refuse it, so that a source that cannot tell its producer to resend never drops
    /// anything. Interceptors run once; a refused batch comes back from the channel and is
    /// retried as is, without copies. The failure is logged once per outage, not per attempt.
    ///
    /// # Errors
    /// [`Cancelled`] when shutdown fires before the batch is accepted.
    pub async fn deliver_retrying(&self, events: Vec<Event>) -> Result<(), Cancelled> {
        let n = self.received(events.len());
        let mut events = self.processor.intercept(events);
        let mut delay = Duration::from_millis(100);
        let mut warned = false;
        loop {
            match self.processor.put_intercepted(events).await {
                Ok(()) => {
                    self.accepted(n);
                    if warned {
                        tracing::info!(source = %self.name, "Channel accepts events again.");
                    }
                    return Ok(());
                }
                Err((error, back)) => {
                    events = back;
                    self.counters.channel_write_fail.inc();
                    if !warned {
                        tracing::warn!(source = %self.name, %error, "Channel refused a batch; retrying until it is accepted.");
                        warned = true;
                    }
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return Err(Cancelled),
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    fn received(&self, n: usize) -> u64 {
        let n = n as u64;
        self.counters.event_received.add(n);
        self.counters.append_batch_received.inc();
        n
    }

    fn accepted(&self, n: u64) {
        self.counters.event_accepted.add(n);
        self.counters.append_batch_accepted.inc();
    }

    /// Runs `step` until shutdown, backing off as Flume's pollable runner does when it returns
    /// [`Status::Backoff`] or an error. Errors are logged here, once each.
    pub async fn poll_loop<F, Fut>(&self, backoff: PollBackoff, mut step: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Status, SourceError>>,
    {
        let mut consecutive: u32 = 0;
        while !self.shutdown.is_cancelled() {
            let sleep = match step().await {
                Ok(Status::Ready) => {
                    consecutive = 0;
                    continue;
                }
                Ok(Status::Backoff) => {
                    consecutive = consecutive.saturating_add(1);
                    (backoff.increment * consecutive).min(backoff.max)
                }
                Err(error) => {
                    tracing::error!(source = %self.name, %error, "Source failed; backing off.");
                    backoff.max
                }
            };
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }
}

/// A source of events. The set of sources is open, so a trait; each is built complete from its
/// typed config and then run once.
#[async_trait]
pub trait Source: Send + 'static {
    /// The batch size the source uses, checked against its channels' `transactionCapacity`
    /// when the agent is built; `None` when the source adapts to the channel.
    fn batch_size(&self) -> Option<usize> {
        None
    }
    /// Runs until `cx.shutdown` fires (or, for finite sources such as `seq`, until done).
    ///
    /// # Errors
    /// A failure the source cannot recover from; the supervisor restarts it with back-off.
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError>;
}
