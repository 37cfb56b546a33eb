//! The `null` sink: takes events and discards them (Flume's `NullSink`).
//!
//! It is the benchmark sink, so `deliver` does no work per event: it adds the batch length to
//! a plain counter and logs a DEBUG progress line each time that counter crosses a multiple of
//! `logEveryNEvents` (Flume logs at INFO; a benchmark does not want that noise by default).

use async_trait::async_trait;
use flumen_config::{Diagnostic, Props};
use flumen_core::{DeliveryError, Event, Sink};
use serde::Deserialize;

use crate::components::{BuildResult, SinkBuildContext, SinkDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: SinkDescriptor = SinkDescriptor {
    name: "null",
    classes: &["org.apache.flume.sink.NullSink"],
    description: "Discards every event (benchmarks, tests)",
    batch_size_key: Some("batchSize"),
    build,
};

/// Configuration of the `null` sink.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct NullSinkConfig {
    /// Events per transaction. Flume key: `batchSize`. Default: 100.
    #[serde(rename = "batchSize")]
    pub batch_size: usize,
    /// Log a progress line every this many events. Flume key: `logEveryNEvents`.
    /// Default: 10000.
    #[serde(rename = "logEveryNEvents")]
    pub log_every_n_events: u64,
}

impl Default for NullSinkConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            log_every_n_events: 10_000,
        }
    }
}

impl NullSinkConfig {
    fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        // Flume: `Preconditions.checkArgument(... > 0)` for both.
        let mut errors = Vec::new();
        if self.batch_size == 0 {
            errors.push(props.error("batchSize", "batchSize must be at least 1"));
        }
        if self.log_every_n_events == 0 {
            errors.push(props.error("logEveryNEvents", "logEveryNEvents must be at least 1"));
        }
        errors
    }
}

fn build(props: &Props, cx: &SinkBuildContext) -> BuildResult<Box<dyn Sink>> {
    build_with(props, NullSinkConfig::validate, |config: NullSinkConfig| {
        let sink: Box<dyn Sink> = Box::new(NullSink::new(&cx.name, config));
        Ok(sink)
    })
}

/// The `null` sink. Called by a single task (its driver).
#[derive(Debug)]
pub struct NullSink {
    name: String,
    config: NullSinkConfig,
    /// Events discarded since start; only for the progress line (the driver counts drains).
    discarded: u64,
}

impl NullSink {
    /// A null sink named `name`.
    pub fn new(name: &str, config: NullSinkConfig) -> Self {
        Self {
            name: name.to_owned(),
            config,
            discarded: 0,
        }
    }
}

#[async_trait]
impl Sink for NullSink {
    fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    async fn deliver(&mut self, batch: &[Event]) -> Result<(), DeliveryError> {
        let before = self.discarded;
        self.discarded += batch.len() as u64;
        let every = self.config.log_every_n_events;
        if before / every != self.discarded / every {
            tracing::debug!(sink = %self.name, events = self.discarded, "Null sink discarded events.");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flumen_core::SinkCounters;

    use super::*;

    fn build_sink(
        keys: &[(&str, &str)],
        counters: &Arc<SinkCounters>,
    ) -> BuildResult<Box<dyn Sink>> {
        let mut props = Props::new("a1.sinks.k1.", "sink k1");
        for (i, (k, v)) in keys.iter().enumerate() {
            props.insert(*k, *v, i as u32 + 1);
        }
        let cx = SinkBuildContext {
            name: "k1".into(),
            counters: counters.clone(),
        };
        (DESCRIPTOR.build)(&props, &cx)
    }

    #[tokio::test]
    async fn accepts_everything_and_counts_nothing() {
        let counters = Arc::new(SinkCounters::default());
        let (mut sink, warnings) = build_sink(&[], &counters).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(sink.batch_size(), 100);
        sink.start().await.unwrap();
        let batch = vec![Event::new(&b"x"[..]); 250];
        for _ in 0..100 {
            sink.deliver(&batch).await.unwrap();
        }
        sink.deliver(&[]).await.unwrap();
        sink.idle().await.unwrap();
        sink.stop().await;
        assert!(counters.attributes().iter().skip(3).all(|(_, v)| v == "0"));
    }

    #[test]
    fn config() {
        let counters = Arc::new(SinkCounters::default());
        let (sink, _) = build_sink(
            &[("batchSize", "1000"), ("logEveryNEvents", "5")],
            &counters,
        )
        .unwrap();
        assert_eq!(sink.batch_size(), 1000);
        assert!(build_sink(&[("batchSize", "0")], &counters).is_err());
        assert!(build_sink(&[("logEveryNEvents", "0")], &counters).is_err());
        let (_, warnings) = build_sink(&[("batchsize", "10")], &counters).unwrap();
        assert_eq!(warnings.len(), 1);
    }
}
