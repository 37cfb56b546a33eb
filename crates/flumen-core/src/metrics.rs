//! Flume's component counters, kept in process.
//!
//! Each component owns an `Arc` of its counter group and adds to it once per batch (never per
//! event in a hot loop). The attribute names are Flume's JMX attribute names, verbatim, so that the
//! `/metrics` JSON served by the HTTP layer is a drop-in replacement for Flume's.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
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

/// Counters of a channel (Flume's `ChannelCounter`), plus the arrival times that give the age
/// of the oldest queued event.
#[derive(Debug, Default)]
#[allow(missing_docs)]
pub struct ChannelCounters {
    /// Arrival times of the queued put batches (not a Flume attribute).
    pub ages: EventAges,
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
    /// Records a committed put of `n` events: adds to `EventPutSuccessCount` and remembers
    /// when the batch arrived. Channels call this once per put commit, never per event.
    pub fn put_committed(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.event_put_success.add(n);
        self.ages
            .record(n, self.event_take_success.get(), Instant::now());
    }

    /// Records `n` events found in the channel's storage when it opened (a durable channel's
    /// replay): their age counts from now, since their original arrival time is not kept.
    pub fn recovered(&self, n: u64) {
        if n > 0 {
            self.ages
                .record(n, self.event_take_success.get(), Instant::now());
        }
    }

    /// Age of the oldest queued (committed, not yet taken for good) event; zero when empty.
    pub fn oldest_event_age(&self) -> Duration {
        self.ages
            .oldest(self.event_take_success.get(), Instant::now())
    }

    /// `ChannelSize / ChannelCapacity` as a ratio in 0..=1 (0 for a capacity of 0), for
    /// Prometheus and readiness, where Flume's `Double.MAX_VALUE` would be useless.
    pub fn fill_ratio(&self) -> f64 {
        let cap = self.channel_capacity.get();
        if cap == 0 {
            0.0
        } else {
            self.channel_size.get() as f64 / cap as f64
        }
    }

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

/// Most put batches remembered per channel. Past it, new batches are merged into the newest
/// remembered one (keeping its older time), so the reported age can only err on the old side.
pub const AGE_SLOTS: usize = 512;

/// When each queued put batch arrived, as `(cumulative events put after the batch, time)`.
///
/// Events are numbered in commit order; the oldest queued event is number `takes + 1`, where
/// `takes` is the channel's committed take count, and its batch is the first entry whose
/// cumulative count exceeds `takes`. One short lock per put commit and per read; the queue is
/// preallocated, so recording does not allocate.
#[derive(Debug)]
pub struct EventAges {
    inner: Mutex<AgesInner>,
}

#[derive(Debug)]
struct AgesInner {
    /// Events recorded so far (puts committed plus events recovered at start).
    recorded: u64,
    batches: VecDeque<(u64, Instant)>,
}

impl Default for EventAges {
    fn default() -> Self {
        Self {
            inner: Mutex::new(AgesInner {
                recorded: 0,
                batches: VecDeque::with_capacity(AGE_SLOTS),
            }),
        }
    }
}

impl AgesInner {
    /// Forgets the batches whose every event has been taken.
    fn prune(&mut self, taken: u64) {
        while self.batches.front().is_some_and(|&(end, _)| end <= taken) {
            self.batches.pop_front();
        }
    }
}

impl EventAges {
    /// Records a batch of `n` events committed at `now`; `taken` is the committed take count.
    pub fn record(&self, n: u64, taken: u64, now: Instant) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.recorded += n;
        let end = g.recorded;
        g.prune(taken);
        if g.batches.len() >= AGE_SLOTS {
            if let Some(last) = g.batches.back_mut() {
                last.0 = end;
            }
        } else {
            g.batches.push_back((end, now));
        }
        // A taker may have committed these very events before this record was made.
        g.prune(taken);
    }

    /// Age at `now` of the oldest event not yet taken, given the committed take count.
    pub fn oldest(&self, taken: u64, now: Instant) -> Duration {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.prune(taken);
        g.batches
            .front()
            .map_or(Duration::ZERO, |&(_, t)| now.saturating_duration_since(t))
    }
}

/// Upper bounds (seconds) of the sink batch-delivery latency histogram buckets; `+Inf` is
/// implied.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A fixed-bucket histogram of batch delivery times, lock-free (one atomic add per bucket hit).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Non-cumulative counts per bucket of [`LATENCY_BUCKETS`]; the last one is `+Inf`.
    buckets: [Counter; LATENCY_BUCKETS.len() + 1],
    sum_micros: Counter,
    count: Counter,
}

impl LatencyHistogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].inc();
        self.sum_micros
            .add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.count.inc();
    }

    /// Cumulative counts per bucket, `+Inf` last, as Prometheus wants them.
    pub fn cumulative(&self) -> [u64; LATENCY_BUCKETS.len() + 1] {
        let mut out = [0; LATENCY_BUCKETS.len() + 1];
        let mut acc = 0;
        for (o, b) in out.iter_mut().zip(&self.buckets) {
            acc += b.get();
            *o = acc;
        }
        out
    }

    /// Sum of all observations, in seconds.
    pub fn sum_secs(&self) -> f64 {
        self.sum_micros.get() as f64 / 1e6
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.get()
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
    /// Time to deliver and commit each non-empty batch (not a Flume attribute).
    pub batch_latency: LatencyHistogram,
    /// Epoch ms of the first failure of the current run of failures; 0 while delivering.
    pub failing_since_ms: Counter,
    /// Epoch ms of the last successful delivery; 0 before the first.
    pub last_success_ms: Counter,
}

impl SinkCounters {
    /// Records a failed round (start, take, delivery or commit).
    pub fn failed(&self) {
        if self.failing_since_ms.get() == 0 {
            self.failing_since_ms.set(now_ms().max(1));
        }
    }

    /// Records a round that did not fail (delivered, or found nothing to deliver).
    pub fn not_failing(&self) {
        if self.failing_since_ms.get() != 0 {
            self.failing_since_ms.set(0);
        }
    }

    /// Records a delivered batch and how long delivery plus commit took.
    pub fn delivered(&self, elapsed: Duration) {
        self.batch_latency.observe(elapsed);
        self.last_success_ms.set(now_ms());
        self.not_failing();
    }

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

/// One registered component.
#[derive(Debug, Clone)]
pub struct RegistryEntry {
    /// Flume's JSON key, `SOURCE.r1`.
    pub key: String,
    /// The component's configured name.
    pub name: String,
    /// Its `type` as an alias (`netcat`, `memory`), when known.
    pub component_type: Option<Arc<str>>,
    /// Its counters.
    pub group: ComponentMetrics,
}

/// Every component's counters, keyed as Flume's JSON keys them (`SOURCE.r1`).
///
/// The lock is only taken to register, unregister or read a snapshot, never on the data path.
#[derive(Debug, Default)]
pub struct MetricsRegistry {
    groups: Mutex<BTreeMap<String, RegistryEntry>>,
}

impl MetricsRegistry {
    /// Registers (or replaces) the group of component `name`.
    pub fn register(&self, name: &str, group: ComponentMetrics) {
        self.register_typed(name, group, None);
    }

    /// Registers (or replaces) the group of component `name`, of type `component_type`.
    pub fn register_typed(
        &self,
        name: &str,
        group: ComponentMetrics,
        component_type: Option<Arc<str>>,
    ) {
        let key = format!("{}.{name}", group.kind());
        let entry = RegistryEntry {
            key: key.clone(),
            name: name.to_owned(),
            component_type,
            group,
        };
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, entry);
    }

    /// Removes the group keyed `key` (`SOURCE.r1`): the component left the configuration.
    pub fn unregister(&self, key: &str) {
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// A snapshot of every registered group, in key order.
    pub fn snapshot(&self) -> Vec<(String, ComponentMetrics)> {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups
            .iter()
            .map(|(k, v)| (k.clone(), v.group.clone()))
            .collect()
    }

    /// Every registered component with its name and type, in key order.
    pub fn entries(&self) -> Vec<RegistryEntry> {
        let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        groups.values().cloned().collect()
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
    #[test]
    fn oldest_age_follows_takes() {
        let a = EventAges::default();
        let t0 = Instant::now();
        a.record(10, 0, t0);
        a.record(5, 0, t0 + Duration::from_secs(3));
        let now = t0 + Duration::from_secs(10);
        assert_eq!(a.oldest(0, now), Duration::from_secs(10));
        // Event #10 is still from the first batch.
        assert_eq!(a.oldest(9, now), Duration::from_secs(10));
        // Event #11 is the first of the second batch.
        assert_eq!(a.oldest(10, now), Duration::from_secs(7));
        assert_eq!(a.oldest(14, now), Duration::from_secs(7));
        assert_eq!(a.oldest(15, now), Duration::ZERO);
        // A record whose events were already taken leaves nothing behind.
        a.record(2, 17, now);
        assert_eq!(a.oldest(17, now), Duration::ZERO);
        a.record(1, 17, now);
        assert_eq!(
            a.oldest(17, now + Duration::from_millis(1500)),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn oldest_age_merges_past_the_slot_limit() {
        let a = EventAges::default();
        let t0 = Instant::now();
        for i in 0..(AGE_SLOTS as u64 + 10) {
            a.record(1, 0, t0 + Duration::from_secs(i));
        }
        let now = t0 + Duration::from_secs(10_000);
        assert_eq!(a.oldest(0, now), Duration::from_secs(10_000));
        // The newest events merged into the last slot report its (older) time.
        let last_slot = AGE_SLOTS as u64 - 1;
        assert_eq!(
            a.oldest(AGE_SLOTS as u64 + 5, now),
            Duration::from_secs(10_000 - last_slot)
        );
    }

    #[test]
    fn channel_counters_age_with_recovered_events() {
        let c = ChannelCounters::default();
        c.recovered(3);
        c.put_committed(2);
        assert_eq!(c.event_put_success.get(), 2);
        c.event_take_success.add(5);
        assert_eq!(c.oldest_event_age(), Duration::ZERO);
        c.channel_capacity.set(10);
        c.channel_size.set(9);
        assert!((c.fill_ratio() - 0.9).abs() < 1e-12);
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(400));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(60));
        let c = h.cumulative();
        assert_eq!(c[0], 1); // <= 0.5 ms
        assert_eq!(c[1], 2); // <= 1 ms (inclusive bound)
        assert_eq!(c[5], 2); // <= 25 ms
        assert_eq!(c[6], 3); // <= 50 ms
        assert_eq!(c[LATENCY_BUCKETS.len() - 1], 3);
        assert_eq!(c[LATENCY_BUCKETS.len()], 4);
        assert_eq!(h.count(), 4);
        assert!((h.sum_secs() - 60.0314).abs() < 1e-9);
    }

    #[test]
    fn sink_failure_tracking() {
        let s = SinkCounters::default();
        s.failed();
        let since = s.failing_since_ms.get();
        assert!(since > 0);
        s.failed();
        assert_eq!(s.failing_since_ms.get(), since);
        s.delivered(Duration::from_millis(2));
        assert_eq!(s.failing_since_ms.get(), 0);
        assert!(s.last_success_ms.get() > 0);
        assert_eq!(s.batch_latency.count(), 1);
    }

    #[test]
    fn registry_unregisters_and_keeps_types() {
        let r = MetricsRegistry::default();
        r.register_typed(
            "r1",
            ComponentMetrics::Source(Arc::default()),
            Some("netcat".into()),
        );
        r.register("c1", ComponentMetrics::Channel(Arc::default()));
        let e = r.entries();
        assert_eq!(e[1].key, "SOURCE.r1");
        assert_eq!(e[1].component_type.as_deref(), Some("netcat"));
        r.unregister("SOURCE.r1");
        assert_eq!(r.entries().len(), 1);
    }
}
