//! Flume's component counters, kept in process.
//!
//! Each component owns an `Arc` of its counter group and adds to it once per batch (never per
//! event in a hot loop). The attribute names are Flume's JMX attribute names, verbatim, so that the
//! `/metrics` JSON served by the HTTP layer is a drop-in replacement for Flume's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// One monotonically increasing counter or gauge.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    /// Subtracts `n`, saturating at zero (gauges only).
    #[inline]
    pub fn sub(&self, n: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
    }
    /// Sets the value (gauges only).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `StartTime` and `StopTime`, common to every counter group.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// Epoch ms of the last start.
    pub start_time: Counter,
    /// Epoch ms of the last stop; 0 while running.
    pub stop_time: Counter,
}

impl Lifecycle {
    /// Records a start now. Counters are not reset: flumen keeps them across reloads of
    /// unchanged components (a documented difference from Flume).
    pub fn started(&self) {
        self.start_time.set(now_ms());
        self.stop_time.set(0);
    }
    /// Records a stop now.
    pub fn stopped(&self) {
        self.stop_time.set(now_ms());
    }
}

/// Flume attribute names, one place, verbatim.
pub mod names {
    #![allow(missing_docs)]
    pub const TYPE: &str = "Type";
    pub const START_TIME: &str = "StartTime";
    pub const STOP_TIME: &str = "StopTime";
    pub const EVENT_RECEIVED_COUNT: &str = "EventReceivedCount";
    pub const EVENT_ACCEPTED_COUNT: &str = "EventAcceptedCount";
    pub const APPEND_RECEIVED_COUNT: &str = "AppendReceivedCount";
    pub const APPEND_ACCEPTED_COUNT: &str = "AppendAcceptedCount";
    pub const APPEND_BATCH_RECEIVED_COUNT: &str = "AppendBatchReceivedCount";
    pub const APPEND_BATCH_ACCEPTED_COUNT: &str = "AppendBatchAcceptedCount";
    pub const OPEN_CONNECTION_COUNT: &str = "OpenConnectionCount";
    pub const EVENT_READ_FAIL: &str = "EventReadFail";
    pub const CHANNEL_WRITE_FAIL: &str = "ChannelWriteFail";
    pub const GENERIC_PROCESSING_FAIL: &str = "GenericProcessingFail";
    pub const CHANNEL_SIZE: &str = "ChannelSize";
    pub const CHANNEL_CAPACITY: &str = "ChannelCapacity";
    pub const CHANNEL_FILL_PERCENTAGE: &str = "ChannelFillPercentage";
    pub const EVENT_PUT_ATTEMPT_COUNT: &str = "EventPutAttemptCount";
    pub const EVENT_PUT_SUCCESS_COUNT: &str = "EventPutSuccessCount";
    pub const EVENT_TAKE_ATTEMPT_COUNT: &str = "EventTakeAttemptCount";
    pub const EVENT_TAKE_SUCCESS_COUNT: &str = "EventTakeSuccessCount";
    pub const CONNECTION_CREATED_COUNT: &str = "ConnectionCreatedCount";
    pub const CONNECTION_CLOSED_COUNT: &str = "ConnectionClosedCount";
    pub const CONNECTION_FAILED_COUNT: &str = "ConnectionFailedCount";
    pub const BATCH_EMPTY_COUNT: &str = "BatchEmptyCount";
    pub const BATCH_UNDERFLOW_COUNT: &str = "BatchUnderflowCount";
    pub const BATCH_COMPLETE_COUNT: &str = "BatchCompleteCount";
    pub const EVENT_DRAIN_ATTEMPT_COUNT: &str = "EventDrainAttemptCount";
    pub const EVENT_DRAIN_SUCCESS_COUNT: &str = "EventDrainSuccessCount";
    pub const EVENT_WRITE_FAIL: &str = "EventWriteFail";
    pub const CHANNEL_READ_FAIL: &str = "ChannelReadFail";
}

/// One attribute as Flume's JSON shows it: every value is a string.
pub type Attribute = (&'static str, String);

/// Counters of a source (Flume's `SourceCounter`).
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct SourceCounters {
    pub lifecycle: Lifecycle,
    pub event_received: Counter,
    pub event_accepted: Counter,
    pub append_received: Counter,
    pub append_accepted: Counter,
    pub append_batch_received: Counter,
    pub append_batch_accepted: Counter,
    pub open_connection: Counter,
    pub event_read_fail: Counter,
    pub channel_write_fail: Counter,
    pub generic_processing_fail: Counter,
}

impl SourceCounters {
    /// Attributes in Flume's order, `Type` first.
    pub fn attributes(&self) -> Vec<Attribute> {
        use names::*;
        vec![
            (TYPE, "SOURCE".into()),
            (START_TIME, self.lifecycle.start_time.get().to_string()),
            (STOP_TIME, self.lifecycle.stop_time.get().to_string()),
            (EVENT_RECEIVED_COUNT, self.event_received.get().to_string()),
            (EVENT_ACCEPTED_COUNT, self.event_accepted.get().to_string()),
            (
                APPEND_RECEIVED_COUNT,
                self.append_received.get().to_string(),
            ),
            (
                APPEND_ACCEPTED_COUNT,
                self.append_accepted.get().to_string(),
            ),
            (
                APPEND_BATCH_RECEIVED_COUNT,
                self.append_batch_received.get().to_string(),
            ),
            (
                APPEND_BATCH_ACCEPTED_COUNT,
                self.append_batch_accepted.get().to_string(),
            ),
            (
                OPEN_CONNECTION_COUNT,
                self.open_connection.get().to_string(),
            ),
            (EVENT_READ_FAIL, self.event_read_fail.get().to_string()),
            (
                CHANNEL_WRITE_FAIL,
                self.channel_write_fail.get().to_string(),
            ),
            (
                GENERIC_PROCESSING_FAIL,
                self.generic_processing_fail.get().to_string(),
            ),
        ]
    }
}

/// Counters of a channel (Flume's `ChannelCounter`).
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct ChannelCounters {
    pub lifecycle: Lifecycle,
    /// Gauge: committed events queued.
    pub channel_size: Counter,
    /// Gauge: configured capacity.
    pub channel_capacity: Counter,
    pub event_put_attempt: Counter,
    pub event_put_success: Counter,
    pub event_take_attempt: Counter,
    pub event_take_success: Counter,
}

impl ChannelCounters {
    /// `ChannelSize / ChannelCapacity × 100`; `f64::MAX` for a capacity of 0, as Flume reports.
    pub fn fill_percentage(&self) -> f64 {
        let cap = self.channel_capacity.get();
        if cap == 0 {
            f64::MAX
        } else {
            self.channel_size.get() as f64 * 100.0 / cap as f64
        }
    }

    /// Attributes in Flume's order, `Type` first.
    pub fn attributes(&self) -> Vec<Attribute> {
        use names::*;
        vec![
            (TYPE, "CHANNEL".into()),
            (START_TIME, self.lifecycle.start_time.get().to_string()),
            (STOP_TIME, self.lifecycle.stop_time.get().to_string()),
            (CHANNEL_SIZE, self.channel_size.get().to_string()),
            (CHANNEL_CAPACITY, self.channel_capacity.get().to_string()),
            (CHANNEL_FILL_PERCENTAGE, java_double(self.fill_percentage())),
            (
                EVENT_PUT_ATTEMPT_COUNT,
                self.event_put_attempt.get().to_string(),
            ),
            (
                EVENT_PUT_SUCCESS_COUNT,
                self.event_put_success.get().to_string(),
            ),
            (
                EVENT_TAKE_ATTEMPT_COUNT,
                self.event_take_attempt.get().to_string(),
            ),
            (
                EVENT_TAKE_SUCCESS_COUNT,
                self.event_take_success.get().to_string(),
            ),
        ]
    }
}

/// Counters of a sink (Flume's `SinkCounter`).
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct SinkCounters {
    pub lifecycle: Lifecycle,
    pub connection_created: Counter,
    pub connection_closed: Counter,
    pub connection_failed: Counter,
    pub batch_empty: Counter,
    pub batch_underflow: Counter,
    pub batch_complete: Counter,
    pub event_drain_attempt: Counter,
    pub event_drain_success: Counter,
    pub event_write_fail: Counter,
    pub channel_read_fail: Counter,
}

impl SinkCounters {
    /// Attributes in Flume's order, `Type` first.
    pub fn attributes(&self) -> Vec<Attribute> {
        use names::*;
        vec![
            (TYPE, "SINK".into()),
            (START_TIME, self.lifecycle.start_time.get().to_string()),
            (STOP_TIME, self.lifecycle.stop_time.get().to_string()),
            (
                CONNECTION_CREATED_COUNT,
                self.connection_created.get().to_string(),
            ),
            (
                CONNECTION_CLOSED_COUNT,
                self.connection_closed.get().to_string(),
            ),
            (
                CONNECTION_FAILED_COUNT,
                self.connection_failed.get().to_string(),
            ),
            (BATCH_EMPTY_COUNT, self.batch_empty.get().to_string()),
            (
                BATCH_UNDERFLOW_COUNT,
                self.batch_underflow.get().to_string(),
            ),
            (BATCH_COMPLETE_COUNT, self.batch_complete.get().to_string()),
            (
                EVENT_DRAIN_ATTEMPT_COUNT,
                self.event_drain_attempt.get().to_string(),
            ),
            (
                EVENT_DRAIN_SUCCESS_COUNT,
                self.event_drain_success.get().to_string(),
            ),
            (EVENT_WRITE_FAIL, self.event_write_fail.get().to_string()),
            (CHANNEL_READ_FAIL, self.channel_read_fail.get().to_string()),
        ]
    }
}

/// Formats a double the way Java's `Double.toString` does for the values counters produce
/// (`0.0`, `12.5`, `1.7976931348623157E308`).
pub fn java_double(v: f64) -> String {
    if v == f64::MAX {
        return "1.7976931348623157E308".into();
    }
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e7 {
        return format!("{v:.1}");
    }
    format!("{v}")
}

/// The counter group of one component, as registered for the metrics endpoint.
#[derive(Debug, Clone)]
pub enum ComponentMetrics {
    /// A source's counters.
    Source(Arc<SourceCounters>),
    /// A channel's counters.
    Channel(Arc<ChannelCounters>),
    /// A sink's counters.
    Sink(Arc<SinkCounters>),
}

impl ComponentMetrics {
    /// Flume's group type: `SOURCE`, `CHANNEL` or `SINK`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Source(_) => "SOURCE",
            Self::Channel(_) => "CHANNEL",
            Self::Sink(_) => "SINK",
        }
    }
    /// The attributes of this group.
    pub fn attributes(&self) -> Vec<Attribute> {
        match self {
            Self::Source(c) => c.attributes(),
            Self::Channel(c) => c.attributes(),
            Self::Sink(c) => c.attributes(),
        }
    }
}

/// Every component's counters, keyed as Flume's JSON keys them (`SOURCE.r1`).
///
/// The lock is only taken to register, unregister or read a snapshot, never on the data path.
#[derive(Debug, Default)]
pub struct MetricsRegistry {
    groups: Mutex<BTreeMap<String, ComponentMetrics>>,
}

impl MetricsRegistry {
    /// Registers (or replaces) the group of component `name`.
    pub fn register(&self, name: &str, group: ComponentMetrics) {
        let key = format!("{}.{name}", group.kind());
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, group);
    }
    /// A snapshot of every registered group, in key order.
    pub fn snapshot(&self) -> Vec<(String, ComponentMetrics)> {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_percentage_and_java_formatting() {
        let c = ChannelCounters::default();
        assert_eq!(java_double(c.fill_percentage()), "1.7976931348623157E308");
        c.channel_capacity.set(200_000);
        c.channel_size.set(1250);
        assert_eq!(java_double(c.fill_percentage()), "0.625");
        c.channel_size.set(0);
        assert_eq!(java_double(c.fill_percentage()), "0.0");
        c.channel_size.set(25_000);
        assert_eq!(java_double(c.fill_percentage()), "12.5");
    }

    #[test]
    fn registry_keys_as_flume() {
        let r = MetricsRegistry::default();
        r.register("c1", ComponentMetrics::Channel(Arc::default()));
        r.register("k1", ComponentMetrics::Sink(Arc::default()));
        let keys: Vec<_> = r.snapshot().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["CHANNEL.c1", "SINK.k1"]);
    }
}
