//! Sinks and the driver that runs Flume's sink idiom once for all of them:
//! begin, take a batch, deliver it, commit on success, roll back otherwise.

use std::sync::Arc;

use async_trait::async_trait;

use crate::BoxError;
use crate::channel::{Channel, ChannelError};
use crate::event::Event;
use crate::metrics::SinkCounters;

/// What one round of a sink (or sink group) did. Flume's `Sink.Status`, verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Events moved; call again at once.
    Ready,
    /// Nothing to do (empty channel): wait before the next round.
    Backoff,
}

/// Why a delivery failed. The transaction is rolled back either way; the distinction tells
/// operators whether a retry can help.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The destination may accept the batch later (connection lost, disk full, timeout...).
    #[error("{0}")]
    Transient(BoxError),
    /// The batch will not be accepted as it is (rejected by the destination).
    #[error("{0}")]
    Permanent(BoxError),
}

impl DeliveryError {
    /// A transient failure from any error.
    pub fn transient(e: impl Into<BoxError>) -> Self {
        Self::Transient(e.into())
    }
}

/// Why a round of a sink driver failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Taking from or committing to the channel failed.
    #[error("sink `{sink}`: {source}")]
    Channel {
        /// The sink's name.
        sink: Arc<str>,
        /// The channel failure.
        #[source]
        source: ChannelError,
    },
    /// The sink could not deliver the batch; it was rolled back into the channel.
    #[error("sink `{sink}` failed to deliver: {source}")]
    Delivery {
        /// The sink's name.
        sink: Arc<str>,
        /// The delivery failure.
        #[source]
        source: DeliveryError,
    },
    /// Every sink of a group failed.
    #[error("all sinks of the group failed: {0}")]
    AllFailed(String),
}

/// A destination. Implementors only deliver: the driver owns the transaction.
#[async_trait]
pub trait Sink: Send + 'static {
    /// Events per transaction (`batchSize` or the sink's own key).
    fn batch_size(&self) -> usize;
    /// Whether the sink keeps `EventDrainAttemptCount` and `EventDrainSuccessCount` itself.
    /// By default the driver counts taken events as attempts and committed ones as successes;
    /// a sink whose Flume counterpart counts something else (the HTTP sink: requests sent and
    /// responses counted by `incrementMetrics`) returns true and counts as it goes, so the
    /// counters never move backwards.
    fn counts_drain(&self) -> bool {
        false
    }
    /// Opens connections or files. Called before the first delivery and again after a failed
    /// start; an error here is retried with back-off like a failed delivery.
    ///
    /// # Errors
    /// The destination could not be opened.
    async fn start(&mut self) -> Result<(), DeliveryError> {
        Ok(())
    }
    /// Delivers one batch; `Ok` means the destination has it (written, flushed to the OS, or
    /// acknowledged by the next hop), so the driver may commit the take.
    ///
    /// # Errors
    /// The batch was not delivered as a whole; it will be rolled back and offered again.
    async fn deliver(&mut self, batch: &[Event]) -> Result<(), DeliveryError>;
    /// Time-based housekeeping while the channel is empty (rolling files on an interval).
    /// Called at least once a second while the sink is idle.
    ///
    /// # Errors
    /// As `deliver`; logged by the runner.
    async fn idle(&mut self) -> Result<(), DeliveryError> {
        Ok(())
    }
    /// Flushes and closes; called once when the sink is retired. Must leave no half-written
    /// output behind.
    async fn stop(&mut self) {}
}

/// One sink bound to its channel: the only place that opens take transactions.
pub struct SinkDriver {
    name: Arc<str>,
    sink: Box<dyn Sink>,
    channel: Arc<dyn Channel>,
    counters: Arc<SinkCounters>,
    batch_size: usize,
    started: bool,
}

impl SinkDriver {
    /// Binds `sink` to `channel`. `counters` is the same group the sink itself updates for its
    /// connection counters.
    pub fn new(
        name: impl Into<Arc<str>>,
        sink: Box<dyn Sink>,
        channel: Arc<dyn Channel>,
        counters: Arc<SinkCounters>,
    ) -> Self {
        let batch_size = sink.batch_size().max(1);
        Self {
            name: name.into(),
            sink,
            channel,
            counters,
            batch_size,
            started: false,
        }
    }

    /// The sink's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The channel this sink drains.
    pub fn channel(&self) -> &Arc<dyn Channel> {
        &self.channel
    }

    /// The sink's counters.
    pub fn counters(&self) -> &Arc<SinkCounters> {
        &self.counters
    }

    /// One round: take up to a batch, deliver, commit. Returns `Backoff` when the channel was
    /// empty.
    ///
    /// # Errors
    /// A channel or delivery failure; the take has been rolled back.
    pub async fn process(&mut self) -> Result<Status, SinkError> {
        if !self.started {
            self.sink.start().await.map_err(|source| {
                self.counters.connection_failed.inc();
                self.counters.failed();
                SinkError::Delivery {
                    sink: self.name.clone(),
                    source,
                }
            })?;
            self.started = true;
        }
        let c = &self.counters;
        let mut tx = self.channel.begin();
        let n = match tx.take(self.batch_size).await {
            Ok(n) => n,
            Err(source) => {
                c.channel_read_fail.inc();
                c.failed();
                return Err(SinkError::Channel {
                    sink: self.name.clone(),
                    source,
                });
            }
        };
        if n == 0 {
            c.batch_empty.inc();
            c.not_failing();
            tx.rollback();
            return Ok(Status::Backoff);
        }
        if n < self.batch_size {
            c.batch_underflow.inc();
        } else {
            c.batch_complete.inc();
        }
        let driver_counts = !self.sink.counts_drain();
        if driver_counts {
            c.event_drain_attempt.add(n as u64);
        }
        // Delivery plus commit: what the batch-latency histogram measures.
        let began = std::time::Instant::now();
        if let Err(source) = self.sink.deliver(tx.taken()).await {
            c.event_write_fail.inc();
            c.failed();
            tx.rollback();
            return Err(SinkError::Delivery {
                sink: self.name.clone(),
                source,
            });
        }
        tx.commit().await.map_err(|source| {
            c.channel_read_fail.inc();
            c.failed();
            SinkError::Channel {
                sink: self.name.clone(),
                source,
            }
        })?;
        if driver_counts {
            c.event_drain_success.add(n as u64);
        }
        c.delivered(began.elapsed());
        Ok(Status::Ready)
    }

    /// Idle housekeeping of the sink (see [`Sink::idle`]).
    ///
    /// # Errors
    /// The sink's failure.
    pub async fn idle(&mut self) -> Result<(), SinkError> {
        if !self.started {
            return Ok(());
        }
        self.sink
            .idle()
            .await
            .map_err(|source| SinkError::Delivery {
                sink: self.name.clone(),
                source,
            })
    }

    /// Stops the sink (flush and close).
    pub async fn stop(&mut self) {
        self.sink.stop().await;
        self.started = false;
        self.counters.lifecycle.stopped();
    }
}

impl std::fmt::Debug for SinkDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkDriver")
            .field("name", &self.name)
            .field("channel", &self.channel.name())
            .field("batch_size", &self.batch_size)
            .finish()
    }
}
