//! The Prometheus text exposition format (version 0.0.4) of the same counters as `/metrics`,
//! plus what Flume does not have: channel fill ratio, age of the oldest queued event, sink
//! batch-latency histograms, and process metrics.
//!
//! Names: `flumen_<snake_case Flume attribute>`; counters end in `_total`, gauges do not.
//! Labels: `agent`, `component`, `type` (`source`/`channel`/`sink`) and `component_type`
//! (`netcat`, `memory`...) when known. Every family has its `# HELP` and `# TYPE` lines and
//! its samples together, as the format requires.

use std::collections::HashMap;
use std::fmt::Write as _;

use flumen_core::metrics::{ComponentMetrics, LATENCY_BUCKETS, RegistryEntry, names};

use super::process::ProcessStats;

/// The content type of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Flume attributes that are gauges; every other numeric attribute is a counter.
const GAUGES: [&str; 3] = [
    names::CHANNEL_SIZE,
    names::CHANNEL_CAPACITY,
    names::OPEN_CONNECTION_COUNT,
];

/// Attributes not exported as their own family (`Type` is a label; times are exported once as
/// `flumen_component_start_time_seconds`; the percentage becomes `flumen_channel_fill_ratio`).
const SKIPPED: [&str; 4] = [
    names::TYPE,
    names::START_TIME,
    names::STOP_TIME,
    names::CHANNEL_FILL_PERCENTAGE,
];

/// Families in first-seen order, each with its samples.
#[derive(Default)]
struct Families {
    order: Vec<Family>,
    index: HashMap<String, usize>,
}

struct Family {
    name: String,
    help: String,
    kind: &'static str,
    samples: String,
}

impl Families {
    fn family(&mut self, name: &str, kind: &'static str, help: &str) -> &mut String {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.order.push(Family {
                    name: name.to_owned(),
                    help: help.to_owned(),
                    kind,
                    samples: String::new(),
                });
                self.index.insert(name.to_owned(), self.order.len() - 1);
                self.order.len() - 1
            }
        };
        &mut self.order[i].samples
    }

    /// Adds one sample `name{labels} value` to family `family`.
    fn sample(
        &mut self,
        family: &str,
        kind: &'static str,
        help: &str,
        name: &str,
        labels: &str,
        value: f64,
    ) {
        let s = self.family(family, kind, help);
        let _ = writeln!(s, "{name}{{{labels}}} {}", number(value));
    }

    fn render(self) -> String {
        let mut out = String::new();
        for f in self.order {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            out.push_str(&f.samples);
        }
        out
    }
}

/// A sample value: integers without a fraction, others as Rust prints them.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Escapes a label value (`\`, `"` and newlines).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// `FooBarCount` → `foo_bar_count`.
pub fn snake_case(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
        } else {
            s.push(c);
        }
    }
    s
}

/// Renders every component of `entries` for agent `agent`, plus `process` when available.
pub fn render(agent: &str, entries: &[RegistryEntry], process: Option<&ProcessStats>) -> String {
    let mut f = Families::default();
    for e in entries {
        let kind = e.group.kind().to_ascii_lowercase();
        let mut labels = format!(
            "agent=\"{}\",component=\"{}\",type=\"{kind}\"",
            escape(agent),
            escape(&e.name)
        );
        if let Some(t) = &e.component_type {
            let _ = write!(labels, ",component_type=\"{}\"", escape(t));
        }
        for (attr, value) in e.group.attributes() {
            if SKIPPED.contains(&attr) {
                continue;
            }
            let Ok(v) = value.parse::<f64>() else {
                continue;
            };
            let base = format!("flumen_{}", snake_case(attr));
            if GAUGES.contains(&attr) {
                f.sample(&base, "gauge", &help_of(attr), &base, &labels, v);
            } else {
                let total = format!("{base}_total");
                f.sample(&total, "counter", &help_of(attr), &total, &labels, v);
            }
        }
        let lc = match &e.group {
            ComponentMetrics::Source(c) => &c.lifecycle,
            ComponentMetrics::Channel(c) => &c.lifecycle,
            ComponentMetrics::Sink(c) => &c.lifecycle,
        };
        let n = "flumen_component_start_time_seconds";
        f.sample(
            n,
            "gauge",
            "Unix time the component last started (Flume's StartTime).",
            n,
            &labels,
            lc.start_time.get() as f64 / 1000.0,
        );
        let n = "flumen_component_running";
        f.sample(
            n,
            "gauge",
            "1 while the component runs, 0 once stopped.",
            n,
            &labels,
            f64::from(u8::from(
                lc.start_time.get() != 0 && lc.stop_time.get() == 0,
            )),
        );
        match &e.group {
            ComponentMetrics::Channel(c) => {
                let n = "flumen_channel_fill_ratio";
                f.sample(
                    n,
                    "gauge",
                    "Queued events over capacity (0 to 1; 0 when the capacity is 0).",
                    n,
                    &labels,
                    c.fill_ratio(),
                );
                let n = "flumen_channel_oldest_event_age_seconds";
                f.sample(
                    n,
                    "gauge",
                    "Age of the oldest event queued in the channel (0 when empty).",
                    n,
                    &labels,
                    c.oldest_event_age().as_secs_f64(),
                );
            }
            ComponentMetrics::Sink(c) => {
                let n = "flumen_sink_batch_delivery_seconds";
                let help = "Time to deliver and commit one non-empty batch.";
                let cum = c.batch_latency.cumulative();
                for (i, count) in cum.iter().enumerate() {
                    let le = LATENCY_BUCKETS
                        .get(i)
                        .map_or_else(|| "+Inf".to_owned(), |b| format!("{b}"));
                    f.sample(
                        n,
                        "histogram",
                        help,
                        &format!("{n}_bucket"),
                        &format!("{labels},le=\"{le}\""),
                        *count as f64,
                    );
                }
                f.sample(
                    n,
                    "histogram",
                    help,
                    &format!("{n}_sum"),
                    &labels,
                    c.batch_latency.sum_secs(),
                );
                f.sample(
                    n,
                    "histogram",
                    help,
                    &format!("{n}_count"),
                    &labels,
                    c.batch_latency.count() as f64,
                );
                let n = "flumen_sink_failing_seconds";
                let since = c.failing_since_ms.get();
                let secs = if since == 0 {
                    0.0
                } else {
                    flumen_core::metrics::now_ms().saturating_sub(since) as f64 / 1000.0
                };
                f.sample(
                    n,
                    "gauge",
                    "How long the sink has failed without a success in between (0 when healthy).",
                    n,
                    &labels,
                    secs,
                );
            }
            ComponentMetrics::Source(_) => {}
        }
    }
    if let Some(p) = process {
        let mut one = |name: &str, kind: &'static str, help: &str, v: f64| {
            f.sample(
                name,
                kind,
                help,
                name,
                &format!("agent=\"{}\"", escape(agent)),
                v,
            );
        };
        one(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            p.resident_bytes as f64,
        );
        one(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            p.virtual_bytes as f64,
        );
        one(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            p.cpu_seconds,
        );
        one(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            p.open_fds as f64,
        );
        if let Some(max) = p.max_fds {
            one(
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                max as f64,
            );
        }
        one(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            p.start_time_seconds,
        );
    }
    f.render()
}

fn help_of(attr: &str) -> String {
    format!("Flume's {attr} attribute.")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use flumen_core::metrics::MetricsRegistry;
    use flumen_core::{ChannelCounters, SinkCounters, SourceCounters};

    use super::*;

    fn sample_registry() -> MetricsRegistry {
        let r = MetricsRegistry::default();
        let s = Arc::new(SourceCounters::default());
        s.event_received.set(7);
        s.open_connection.set(2);
        s.lifecycle.started();
        r.register_typed("r1", ComponentMetrics::Source(s), Some("netcat".into()));
        let c = Arc::new(ChannelCounters::default());
        c.channel_capacity.set(100);
        c.channel_size.set(25);
        c.put_committed(25);
        r.register_typed("c1", ComponentMetrics::Channel(c), Some("memory".into()));
        let k = Arc::new(SinkCounters::default());
        k.delivered(Duration::from_millis(3));
        k.delivered(Duration::from_millis(700));
        r.register("k1", ComponentMetrics::Sink(k));
        r
    }

    fn value(m: &prometheus_parse::Value) -> f64 {
        match m {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            _ => f64::NAN,
        }
    }

    #[test]
    fn parses_back_with_prometheus_parse() {
        let r = sample_registry();
        let p = ProcessStats {
            resident_bytes: 1 << 20,
            virtual_bytes: 1 << 24,
            cpu_seconds: 1.5,
            open_fds: 9,
            max_fds: Some(1024),
            start_time_seconds: 1_700_000_000.25,
        };
        let text = render("a1", &r.entries(), Some(&p));
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("parses");
        let find = |name: &str, component: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && s.labels.get("component") == Some(component))
                .unwrap_or_else(|| panic!("{name} {component} missing in\n{text}"))
        };
        let s = find("flumen_event_received_count_total", "r1");
        assert_eq!(value(&s.value), 7.0);
        assert_eq!(s.labels.get("agent"), Some("a1"));
        assert_eq!(s.labels.get("type"), Some("source"));
        assert_eq!(s.labels.get("component_type"), Some("netcat"));
        assert_eq!(
            value(&find("flumen_open_connection_count", "r1").value),
            2.0
        );
        assert_eq!(value(&find("flumen_channel_size", "c1").value), 25.0);
        assert_eq!(value(&find("flumen_channel_fill_ratio", "c1").value), 0.25);
        assert_eq!(
            value(&find("flumen_event_put_success_count_total", "c1").value),
            25.0
        );
        let h = find("flumen_sink_batch_delivery_seconds", "k1");
        let prometheus_parse::Value::Histogram(buckets) = &h.value else {
            panic!("not a histogram: {:?}", h.value);
        };
        let le = |b: f64| {
            buckets
                .iter()
                .find(|x| x.less_than == b || (x.less_than - b).abs() < 1e-12)
                .map(|x| x.count)
        };
        assert_eq!(le(0.0025), Some(0.0));
        assert_eq!(le(0.005), Some(1.0));
        assert_eq!(le(1.0), Some(2.0));
        assert_eq!(le(f64::INFINITY), Some(2.0));
        let docs = &scrape.docs;
        assert!(docs.contains_key("flumen_event_received_count_total"));
        let rss = scrape
            .samples
            .iter()
            .find(|s| s.metric == "process_resident_memory_bytes")
            .expect("rss");
        assert_eq!(value(&rss.value), 1_048_576.0);
        // Each family's TYPE appears exactly once, before its samples.
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let mut dedup = types.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(types.len(), dedup.len());
        assert!(text.contains("# TYPE flumen_event_received_count_total counter\n"));
        assert!(text.contains("# TYPE flumen_channel_size gauge\n"));
        assert!(text.contains("# TYPE flumen_sink_batch_delivery_seconds histogram\n"));
    }

    #[test]
    fn snake_case_and_numbers() {
        assert_eq!(
            snake_case("EventDrainSuccessCount"),
            "event_drain_success_count"
        );
        assert_eq!(snake_case("EventReadFail"), "event_read_fail");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
