//! The stress source (Flume's `org.apache.flume.source.StressSource`): a load generator that
//! puts the same `size`-byte body over and over.
//!
//! Like Flume's, it counts *attempted* events toward `maxTotalEvents` and *accepted* ones
//! toward `maxSuccessfulEvents`; a batch the channel refuses is counted as attempted and is not
//! retried (the source then backs off as Flume's pollable runner does). When a limit is reached
//! the source returns `Ok` (Flume's keeps polling and backing off forever).
//!
//! Every event shares one body buffer (`Bytes` clone = reference count), so generating costs no
//! copy. Flume fills the body with random bytes; here it is pseudo-random bytes chosen once.

use std::time::Duration;

use bytes::Bytes;
use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, PollBackoff, Source, SourceContext, SourceError};
use serde::Deserialize;
use tokio::time::Instant;

use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

/// Registry entry of the stress source. Flume has no alias for it; `stress` is flumen's.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "stress",
    classes: &["org.apache.flume.source.StressSource"],
    description: "Load generator: puts fixed-size events as fast as allowed (testing)",
    batch_size_key: Some("batchSize"),
    build,
};

/// How many events are generated between two voluntary yields to the runtime.
const YIELD_EVERY: u64 = 1024;

/// Configuration of the stress source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct StressSourceConfig {
    /// Body size in bytes. Flume key: `size`. Default: 500.
    pub size: usize,
    /// Stop after this many attempted events; -1 = never. Flume key: `maxTotalEvents`.
    /// Default: -1.
    #[serde(rename = "maxTotalEvents")]
    pub max_total_events: i64,
    /// Stop after this many accepted events; -1 = never. Flume key: `maxSuccessfulEvents`.
    /// Default: -1.
    #[serde(rename = "maxSuccessfulEvents")]
    pub max_successful_events: i64,
    /// Events per channel transaction. Flume key: `batchSize`. Default: 1.
    #[serde(rename = "batchSize")]
    pub batch_size: usize,
    /// Rate limit in events per second; 0 = unlimited. Flume key: `maxEventsPerSecond`.
    /// Default: 0.
    #[serde(rename = "maxEventsPerSecond")]
    pub max_events_per_second: u64,
}

impl Default for StressSourceConfig {
    fn default() -> Self {
        Self {
            size: 500,
            max_total_events: -1,
            max_successful_events: -1,
            batch_size: 1,
            max_events_per_second: 0,
        }
    }
}

impl StressSourceConfig {
    /// Range checks; every problem found, located at its key.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.batch_size == 0 {
            errors.push(props.error("batchSize", "`batchSize` must be at least 1"));
        }
        errors
    }
}

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    build_with(props, StressSourceConfig::validate, |config| {
        Ok(Box::new(StressSource::new(config)) as Box<dyn Source>)
    })
}

/// The load generator. Finite when either limit is set.
#[derive(Debug)]
pub struct StressSource {
    config: StressSourceConfig,
    /// The one body every event shares.
    body: Bytes,
    /// Back-off after a refused batch: Flume's `PollableSourceRunner` defaults.
    backoff: PollBackoff,
}

impl StressSource {
    /// A generator with `config` (assumed validated).
    pub fn new(config: StressSourceConfig) -> Self {
        let body = pseudo_random_bytes(config.size);
        Self {
            config,
            body,
            backoff: PollBackoff::default(),
        }
    }
}

/// `n` bytes from a xorshift generator: random-looking (so compressing sinks are not flattered)
/// without a dependency.
fn pseudo_random_bytes(n: usize) -> Bytes {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// A limit from the config: negative means none.
fn limit(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

#[async_trait::async_trait]
impl Source for StressSource {
    fn batch_size(&self) -> Option<usize> {
        Some(self.config.batch_size)
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let max_total = limit(self.config.max_total_events);
        let max_successful = limit(self.config.max_successful_events);
        let batch = self.config.batch_size.clamp(1, cx.processor.max_batch()) as u64;
        let rate = self.config.max_events_per_second;
        let mut attempted: u64 = 0;
        let mut successful: u64 = 0;
        let mut consecutive_failures: u32 = 0;
        let mut since_yield: u64 = 0;
        // Earliest time the next batch may go (rate limit); a burst of one batch is allowed,
        // then the time it "cost" is paid before the next one, like Guava's RateLimiter.
        let mut next_allowed = Instant::now();

        loop {
            if max_total.is_some_and(|m| attempted >= m)
                || max_successful.is_some_and(|m| successful >= m)
            {
                tracing::info!(source = %cx.name, attempted, successful, "Stress source reached its limit.");
                return Ok(());
            }
            // Flume trims only the last batch to `maxTotalEvents`, not to `maxSuccessfulEvents`.
            let n = max_total.map_or(batch, |m| batch.min(m - attempted));
            if rate > 0 {
                let now = Instant::now();
                if next_allowed > now {
                    tokio::select! {
                        () = cx.shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep_until(next_allowed) => {}
                    }
                }
                let cost = Duration::from_secs_f64(n as f64 / rate as f64);
                next_allowed = next_allowed.max(now) + cost;
            }
            if cx.shutdown.is_cancelled() {
                return Ok(());
            }

            let events: Vec<Event> = (0..n).map(|_| Event::new(self.body.clone())).collect();
            attempted += n;
            match cx.deliver(events).await {
                Ok(()) => {
                    if consecutive_failures > 0 {
                        tracing::info!(source = %cx.name, "Channel accepts events again.");
                    }
                    consecutive_failures = 0;
                    successful += n;
                }
                Err(error) => {
                    if consecutive_failures == 0 {
                        tracing::warn!(source = %cx.name, %error, "Channel refused a batch; counted as failed, backing off.");
                    }
                    consecutive_failures = consecutive_failures.saturating_add(1);
                    let sleep =
                        (self.backoff.increment * consecutive_failures).min(self.backoff.max);
                    tokio::select! {
                        () = cx.shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(sleep) => {}
                    }
                }
            }
            since_yield += n;
            if since_yield >= YIELD_EVERY {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, context, wait_until};

    fn source(config: StressSourceConfig) -> Box<StressSource> {
        let mut s = StressSource::new(config);
        s.backoff = PollBackoff {
            increment: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        Box::new(s)
    }

    #[test]
    fn config_defaults_and_lookup() {
        let p = Props::new("a1.sources.r1.", "source r1");
        let (c, _) = p.deserialize::<StressSourceConfig>().unwrap();
        assert_eq!(c, StressSourceConfig::default());
        let table = crate::components::sources::SOURCES;
        let by_class = crate::components::lookup(table, "org.apache.flume.source.StressSource");
        assert_eq!(by_class.map(|d| d.name).ok(), Some("stress"));
    }

    #[tokio::test]
    async fn max_total_events_trims_the_last_batch() {
        let ch = TestChannel::new(10_000, 100);
        let cx = context(ch.clone());
        let config = StressSourceConfig {
            size: 10,
            max_total_events: 25,
            batch_size: 10,
            ..Default::default()
        };
        source(config).run(cx.clone()).await.unwrap();
        let events = ch.drain();
        assert_eq!(events.len(), 25);
        assert!(
            events
                .iter()
                .all(|e| e.body.len() == 10 && e.body == events[0].body)
        );
        assert_eq!(cx.counters.append_batch_accepted.get(), 3);
    }

    #[tokio::test]
    async fn failures_count_toward_total_not_successful() {
        let ch = TestChannel::new(10_000, 100);
        ch.set_refusing(true);
        let cx = context(ch.clone());
        let config = StressSourceConfig {
            max_total_events: 5,
            ..Default::default()
        };
        source(config).run(cx.clone()).await.unwrap();
        assert!(ch.drain().is_empty());
        assert_eq!(cx.counters.event_received.get(), 5);
        assert_eq!(cx.counters.event_accepted.get(), 0);
        assert_eq!(cx.counters.channel_write_fail.get(), 5);
    }

    #[tokio::test]
    async fn max_successful_events_waits_out_failures() {
        let ch = TestChannel::new(10_000, 100);
        ch.set_refusing(true);
        let cx = context(ch.clone());
        let config = StressSourceConfig {
            max_successful_events: 3,
            ..Default::default()
        };
        let task = tokio::spawn(source(config).run(cx.clone()));
        let counters = cx.counters.clone();
        wait_until("two refused batches", || {
            counters.channel_write_fail.get() >= 2
        })
        .await;
        ch.set_refusing(false);
        task.await.unwrap().unwrap();
        assert_eq!(ch.drain().len(), 3);
        assert_eq!(cx.counters.event_accepted.get(), 3);
        assert!(cx.counters.event_received.get() >= 5);
    }

    #[tokio::test]
    async fn rate_limit_spaces_batches() {
        let ch = TestChannel::new(10_000, 100);
        let cx = context(ch.clone());
        let config = StressSourceConfig {
            max_total_events: 30,
            batch_size: 10,
            max_events_per_second: 200,
            ..Default::default()
        };
        let start = std::time::Instant::now();
        source(config).run(cx.clone()).await.unwrap();
        // First batch free, then two batches of 10 at 200/s: at least 100 ms.
        assert!(
            start.elapsed() >= Duration::from_millis(95),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(ch.drain().len(), 30);
    }

    #[tokio::test]
    async fn unlimited_source_stops_on_shutdown() {
        let ch = TestChannel::new(usize::MAX, 100);
        let cx = context(ch.clone());
        let task = tokio::spawn(source(StressSourceConfig::default()).run(cx.clone()));
        ch.take_at_least(100).await;
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
