//! The `timestamp` interceptor: stamps each event with the time it passed through, in epoch
//! milliseconds (Flume's `TimestampInterceptor`).
//!
//! The value is the wall clock at interception, a decimal `i64` as Java's `Long.toString`
//! writes it; sinks such as HDFS use it for path escapes.

use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Interceptor};
use serde::Deserialize;

use crate::components::{BuildResult, InterceptorDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: InterceptorDescriptor = InterceptorDescriptor {
    name: "timestamp",
    classes: &["org.apache.flume.interceptor.TimestampInterceptor$Builder"],
    description: "Sets a header to the current time in epoch milliseconds",
    build,
};

/// Configuration of the `timestamp` interceptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TimestampInterceptorConfig {
    /// Header receiving the time. Flume key: `headerName`. Default: `timestamp`.
    #[serde(rename = "headerName")]
    pub header_name: String,
    /// Leave an existing header alone. Flume key: `preserveExisting`. Default: false.
    #[serde(rename = "preserveExisting")]
    pub preserve_existing: bool,
}

impl Default for TimestampInterceptorConfig {
    fn default() -> Self {
        Self {
            header_name: "timestamp".to_string(),
            preserve_existing: false,
        }
    }
}

/// Sets `header_name` to the current epoch milliseconds.
#[derive(Debug)]
pub struct TimestampInterceptor {
    config: TimestampInterceptorConfig,
}

impl TimestampInterceptor {
    /// An interceptor with `config`.
    pub fn new(config: TimestampInterceptorConfig) -> Self {
        Self { config }
    }
}

impl Interceptor for TimestampInterceptor {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        let name = &self.config.header_name;
        if !(self.config.preserve_existing && event.headers.contains_key(name)) {
            let now = chrono::Utc::now().timestamp_millis();
            event.headers.insert(name.as_str(), now.to_string());
        }
        Some(event)
    }
}

fn validate(_config: &TimestampInterceptorConfig, _props: &Props) -> Vec<Diagnostic> {
    Vec::new()
}

/// Builds the interceptor from its properties.
///
/// # Errors
/// Invalid `preserveExisting`.
pub fn build(props: &Props) -> BuildResult<Box<dyn Interceptor>> {
    build_with(props, validate, |c| {
        Ok(Box::new(TimestampInterceptor::new(c)) as Box<dyn Interceptor>)
    })
}

#[cfg(test)]
mod tests {
    use flumen_core::Headers;

    use super::*;
    use crate::components::interceptors::{error_messages, test_props};

    fn run(pairs: &[(&str, &str)], event: Event) -> Event {
        let (i, warnings) = build(&test_props(pairs)).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        i.intercept(event).unwrap()
    }

    fn now_ms() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    #[test]
    fn defaults_set_timestamp_header_to_now_in_ms() {
        assert_eq!(
            TimestampInterceptorConfig::default(),
            TimestampInterceptorConfig {
                header_name: "timestamp".into(),
                preserve_existing: false
            }
        );
        let before = now_ms();
        let e = run(&[], Event::new("x"));
        let after = now_ms();
        let ts: i64 = e.headers.get("timestamp").unwrap().parse().unwrap();
        assert!(before <= ts && ts <= after, "{before} <= {ts} <= {after}");
        assert_eq!(e.body, "x");
    }

    #[test]
    fn existing_header_is_overwritten_by_default() {
        let ev = Event::with_headers(Headers::from_iter([("timestamp", "1")]), "x");
        let e = run(&[], ev);
        assert_ne!(e.headers.get("timestamp"), Some("1"));
    }

    #[test]
    fn preserve_existing_keeps_the_header_and_still_stamps_events_without_it() {
        let pairs = [("preserveExisting", "true")];
        let ev = Event::with_headers(Headers::from_iter([("timestamp", "1")]), "x");
        assert_eq!(run(&pairs, ev).headers.get("timestamp"), Some("1"));
        assert!(
            run(&pairs, Event::new("x"))
                .headers
                .get("timestamp")
                .is_some()
        );
    }

    #[test]
    fn header_name_is_configurable() {
        let e = run(&[("headerName", "ts")], Event::new("x"));
        assert!(e.headers.get("ts").is_some());
        assert!(e.headers.get("timestamp").is_none());
    }

    #[test]
    fn bad_boolean_is_an_error_and_unknown_key_a_warning() {
        let msgs = error_messages(build(&test_props(&[("preserveExisting", "yes")])));
        assert!(msgs[0].contains("invalid boolean `yes`"), "{msgs:?}");
        let (_, warnings) = build(&test_props(&[("headername", "ts")])).unwrap();
        assert!(
            warnings[0]
                .message
                .contains("unknown property `headername`"),
            "{warnings:?}"
        );
    }
}
