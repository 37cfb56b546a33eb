//! Liveness and readiness.
//!
//! `/health` answers 200 `{"status":"UP"}` whenever the process can answer at all.
//! `/ready` answers 200 `{"status":"READY"}` when the agent has applied its configuration,
//! every registered component is running (started and not stopped), no channel is more than
//! [`FULL_RATIO`] full and no sink has failed continuously for longer than the configured
//! threshold; otherwise 503 `{"status":"NOT_READY","reasons":[...]}` with one object per
//! reason (`component`, `reason`, and the measured value).

use std::fmt::Write as _;
use std::time::Duration;

use flumen_core::metrics::{ComponentMetrics, RegistryEntry, now_ms};

/// Fill ratio above which a channel makes the agent not ready.
pub const FULL_RATIO: f64 = 0.9;

/// Default time a sink may fail continuously before the agent is not ready.
pub const DEFAULT_SINK_FAILURE: Duration = Duration::from_secs(30);

/// The body of `/health`.
pub const HEALTH_BODY: &str = r#"{"status":"UP"}"#;

/// Why the agent is not ready.
#[derive(Debug, Clone, PartialEq)]
pub enum NotReady {
    /// The agent has not applied its first configuration yet.
    AgentStarting,
    /// A component is not running (`StartTime` 0 or `StopTime` set).
    NotStarted {
        /// `SOURCE.r1`...
        component: String,
    },
    /// A channel is over [`FULL_RATIO`].
    ChannelFull {
        /// `CHANNEL.c1`.
        component: String,
        /// Its fill ratio.
        fill_ratio: f64,
    },
    /// A sink has been failing for longer than the threshold.
    SinkFailing {
        /// `SINK.k1`.
        component: String,
        /// For how long.
        failing_for: Duration,
    },
}

impl NotReady {
    fn to_json(&self) -> String {
        match self {
            Self::AgentStarting => {
                r#"{"component":"agent","reason":"configuration not applied yet"}"#.into()
            }
            Self::NotStarted { component } => format!(
                r#"{{"component":{},"reason":"not started"}}"#,
                json_str(component)
            ),
            Self::ChannelFull {
                component,
                fill_ratio,
            } => format!(
                r#"{{"component":{},"reason":"channel over {}% full","fillPercentage":{:.1}}}"#,
                json_str(component),
                FULL_RATIO * 100.0,
                fill_ratio * 100.0
            ),
            Self::SinkFailing {
                component,
                failing_for,
            } => format!(
                r#"{{"component":{},"reason":"sink failing","failingSeconds":{}}}"#,
                json_str(component),
                failing_for.as_secs()
            ),
        }
    }
}

/// A JSON string literal for a component key (names are config keys: no control characters,
/// but quotes and backslashes are escaped anyway).
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Evaluates readiness; an empty result means ready.
pub fn check(
    agent_started: bool,
    entries: &[RegistryEntry],
    sink_failure: Duration,
) -> Vec<NotReady> {
    let mut reasons = Vec::new();
    if !agent_started {
        reasons.push(NotReady::AgentStarting);
    }
    let now = now_ms();
    for e in entries {
        let lc = match &e.group {
            ComponentMetrics::Source(c) => &c.lifecycle,
            ComponentMetrics::Channel(c) => &c.lifecycle,
            ComponentMetrics::Sink(c) => &c.lifecycle,
        };
        if lc.start_time.get() == 0 || lc.stop_time.get() != 0 {
            reasons.push(NotReady::NotStarted {
                component: e.key.clone(),
            });
        }
        match &e.group {
            ComponentMetrics::Channel(c) => {
                let r = c.fill_ratio();
                if r > FULL_RATIO {
                    reasons.push(NotReady::ChannelFull {
                        component: e.key.clone(),
                        fill_ratio: r,
                    });
                }
            }
            ComponentMetrics::Sink(c) => {
                let since = c.failing_since_ms.get();
                let failing_for = Duration::from_millis(now.saturating_sub(since));
                if since != 0 && failing_for > sink_failure {
                    reasons.push(NotReady::SinkFailing {
                        component: e.key.clone(),
                        failing_for,
                    });
                }
            }
            ComponentMetrics::Source(_) => {}
        }
    }
    reasons
}

/// The `/ready` body for `reasons`.
pub fn ready_body(reasons: &[NotReady]) -> String {
    if reasons.is_empty() {
        return r#"{"status":"READY"}"#.into();
    }
    let list: Vec<String> = reasons.iter().map(NotReady::to_json).collect();
    format!(r#"{{"status":"NOT_READY","reasons":[{}]}}"#, list.join(","))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flumen_core::metrics::MetricsRegistry;
    use flumen_core::{ChannelCounters, SinkCounters, SourceCounters};

    use super::*;

    #[test]
    fn readiness_reasons() {
        let r = MetricsRegistry::default();
        let s = Arc::new(SourceCounters::default());
        r.register("r1", ComponentMetrics::Source(s.clone()));
        let c = Arc::new(ChannelCounters::default());
        c.lifecycle.started();
        c.channel_capacity.set(10);
        c.channel_size.set(10);
        r.register("c1", ComponentMetrics::Channel(c.clone()));
        let k = Arc::new(SinkCounters::default());
        k.lifecycle.started();
        k.failing_since_ms.set(now_ms() - 40_000);
        r.register("k1", ComponentMetrics::Sink(k.clone()));

        let reasons = check(false, &r.entries(), DEFAULT_SINK_FAILURE);
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        let body = ready_body(&reasons);
        let v: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
        assert_eq!(v["status"], "NOT_READY");
        assert_eq!(v["reasons"][0]["component"], "agent");
        assert_eq!(v["reasons"][1]["component"], "CHANNEL.c1");
        assert_eq!(v["reasons"][1]["fillPercentage"], 100.0);
        assert_eq!(v["reasons"][2]["component"], "SINK.k1");
        assert!(v["reasons"][2]["failingSeconds"].as_u64() >= Some(39));
        assert_eq!(v["reasons"][3]["component"], "SOURCE.r1");
        assert_eq!(v["reasons"][3]["reason"], "not started");

        // A longer threshold tolerates the sink; a drained channel and a started source clear.
        s.lifecycle.started();
        c.channel_size.set(9);
        assert!(check(true, &r.entries(), Duration::from_secs(60)).is_empty());
        assert_eq!(ready_body(&[]), r#"{"status":"READY"}"#);
        s.lifecycle.stopped();
        assert_eq!(check(true, &r.entries(), Duration::from_secs(60)).len(), 1);
    }
}
