//! The `seq` source (Flume's `SequenceGeneratorSource`): emits the decimal numbers 0, 1, 2, ...
//! as event bodies, for tests and benchmarks.
//!
//! Invariants: numbers are delivered in order, each exactly once from the source's point of
//! view: a batch the channel refuses is retried with the same numbers (Flume re-sends the same
//! range after a `ChannelException`), so no number is ever skipped. After `totalEvents` numbers
//! the source returns `Ok` (Flume's keeps polling and backing off; a finished flumen source
//! simply ends, which frees its task).

use bytes::Bytes;
use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Source, SourceContext, SourceError};
use serde::Deserialize;

use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

/// Registry entry of the `seq` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "seq",
    classes: &["org.apache.flume.source.SequenceGeneratorSource"],
    description: "Generates the sequence 0, 1, 2, ... as event bodies (testing)",
    batch_size_key: Some("batchSize"),
    build,
};

/// How many events are generated between two voluntary yields to the runtime, so that a
/// channel that never makes the source wait cannot starve other tasks on its worker.
const YIELD_EVERY: u64 = 1024;

/// Configuration of the `seq` source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SeqSourceConfig {
    /// Events per channel transaction. Flume key: `batchSize`. Default: 1.
    #[serde(rename = "batchSize")]
    pub batch_size: usize,
    /// How many numbers to generate in all. Flume key: `totalEvents`. Default: `Long.MAX_VALUE`
    /// (9223372036854775807).
    #[serde(rename = "totalEvents")]
    pub total_events: u64,
}

impl Default for SeqSourceConfig {
    fn default() -> Self {
        Self {
            batch_size: 1,
            total_events: i64::MAX as u64,
        }
    }
}

impl SeqSourceConfig {
    /// Cross-field and range checks; every problem found, located at its key.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.batch_size == 0 {
            errors.push(props.error("batchSize", "`batchSize` must be at least 1"));
        }
        errors
    }
}

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    build_with(props, SeqSourceConfig::validate, |config| {
        Ok(Box::new(SeqSource { config }) as Box<dyn Source>)
    })
}

/// The sequence generator. Finite when `totalEvents` is.
#[derive(Debug)]
pub struct SeqSource {
    config: SeqSourceConfig,
}

impl SeqSource {
    /// A generator with `config` (assumed validated).
    pub fn new(config: SeqSourceConfig) -> Self {
        Self { config }
    }
}

#[async_trait::async_trait]
impl Source for SeqSource {
    fn batch_size(&self) -> Option<usize> {
        Some(self.config.batch_size)
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let total = self.config.total_events;
        // Never exceed what one channel transaction takes, whatever batchSize says.
        let batch = self.config.batch_size.clamp(1, cx.processor.max_batch()) as u64;
        let mut next: u64 = 0;
        let mut since_yield: u64 = 0;
        while next < total && !cx.shutdown.is_cancelled() {
            let n = batch.min(total - next);
            let events: Vec<Event> = (next..next + n)
                .map(|i| Event::new(Bytes::from(i.to_string())))
                .collect();
            if cx.deliver_retrying(events).await.is_err() {
                break; // Shutdown while the channel refused: the numbers were not delivered.
            }
            next += n;
            since_yield += n;
            if since_yield >= YIELD_EVERY {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
        if next >= total {
            tracing::info!(source = %cx.name, events = next, "Sequence generator finished.");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, bodies, context};

    fn props(pairs: &[(&str, &str)]) -> Props {
        let mut p = Props::new("a1.sources.r1.", "source r1");
        for (i, (k, v)) in pairs.iter().enumerate() {
            p.insert(*k, *v, i as u32 + 1);
        }
        p
    }

    fn build_cx() -> SourceBuildContext {
        SourceBuildContext {
            name: "r1".into(),
            counters: Default::default(),
        }
    }

    #[test]
    fn config_defaults_and_keys() {
        let (c, w) = props(&[]).deserialize::<SeqSourceConfig>().unwrap();
        assert_eq!(c, SeqSourceConfig::default());
        assert_eq!(c.total_events, 9_223_372_036_854_775_807);
        assert!(w.is_empty());
        let (src, _) = (DESCRIPTOR.build)(
            &props(&[("batchSize", "7"), ("totalEvents", "3")]),
            &build_cx(),
        )
        .unwrap();
        assert_eq!(src.batch_size(), Some(7));
        let errs = (DESCRIPTOR.build)(&props(&[("batchSize", "0")]), &build_cx())
            .err()
            .unwrap();
        assert!(errs[0].message.contains("batchSize"), "{errs:?}");
    }

    #[tokio::test]
    async fn exact_count_in_order_then_returns() {
        let ch = TestChannel::new(10_000, 100);
        let cx = context(ch.clone());
        let src = SeqSource::new(SeqSourceConfig {
            batch_size: 7,
            total_events: 1000,
        });
        Box::new(src).run(cx.clone()).await.unwrap();
        let got = bodies(&ch.drain());
        let want: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        assert_eq!(got, want);
        assert_eq!(cx.counters.event_accepted.get(), 1000);
        // 142 full batches of 7 and one of 6.
        assert_eq!(cx.counters.append_batch_accepted.get(), 143);
    }

    #[tokio::test]
    async fn batches_are_cut_to_transaction_capacity() {
        let ch = TestChannel::new(10_000, 10);
        let cx = context(ch.clone());
        let src = SeqSource::new(SeqSourceConfig {
            batch_size: 100,
            total_events: 35,
        });
        Box::new(src).run(cx.clone()).await.unwrap();
        assert_eq!(ch.drain().len(), 35);
        assert_eq!(cx.counters.channel_write_fail.get(), 0);
        assert_eq!(cx.counters.append_batch_accepted.get(), 4);
    }

    #[tokio::test]
    async fn refused_batch_is_retried_without_skipping() {
        let ch = TestChannel::new(10_000, 100);
        ch.set_refusing(true);
        let cx = context(ch.clone());
        let src = SeqSource::new(SeqSourceConfig {
            batch_size: 2,
            total_events: 6,
        });
        let task = tokio::spawn(Box::new(src).run(cx.clone()));
        let counters = cx.counters.clone();
        crate::components::sources::testing::wait_until("a refused batch", || {
            counters.channel_write_fail.get() >= 1
        })
        .await;
        ch.set_refusing(false);
        task.await.unwrap().unwrap();
        assert_eq!(bodies(&ch.drain()), ["0", "1", "2", "3", "4", "5"]);
    }

    #[tokio::test]
    async fn shutdown_stops_an_endless_sequence() {
        let ch = TestChannel::new(usize::MAX, 100);
        let cx = context(ch.clone());
        let src = SeqSource::new(SeqSourceConfig::default());
        let task = tokio::spawn(Box::new(src).run(cx.clone()));
        ch.take_at_least(10).await;
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
