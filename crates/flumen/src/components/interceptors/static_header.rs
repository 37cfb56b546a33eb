//! The `static` interceptor: adds one fixed header to every event (Flume's
//! `StaticInterceptor`). The module is `static_header` because `static` is a Rust keyword.
//!
//! One interceptor sets one header; Flume users chain several for several headers.

use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Interceptor};
use serde::Deserialize;

use crate::components::{BuildResult, InterceptorDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: InterceptorDescriptor = InterceptorDescriptor {
    name: "static",
    classes: &["org.apache.flume.interceptor.StaticInterceptor$Builder"],
    description: "Sets one header to a fixed value",
    build,
};

/// Configuration of the `static` interceptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct StaticInterceptorConfig {
    /// Leave an existing header alone. Flume key: `preserveExisting`. Default: true.
    #[serde(rename = "preserveExisting")]
    pub preserve_existing: bool,
    /// Header name. Flume key: `key`. Default: `key`.
    pub key: String,
    /// Header value. Flume key: `value`. Default: `value`.
    pub value: String,
}

impl Default for StaticInterceptorConfig {
    fn default() -> Self {
        Self {
            preserve_existing: true,
            key: "key".to_string(),
            value: "value".to_string(),
        }
    }
}

/// Sets `key` to `value`.
#[derive(Debug)]
pub struct StaticInterceptor {
    config: StaticInterceptorConfig,
}

impl StaticInterceptor {
    /// An interceptor with `config`.
    pub fn new(config: StaticInterceptorConfig) -> Self {
        Self { config }
    }
}

impl Interceptor for StaticInterceptor {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        let c = &self.config;
        if !(c.preserve_existing && event.headers.contains_key(&c.key)) {
            event.headers.insert(c.key.as_str(), c.value.as_str());
        }
        Some(event)
    }
}

fn validate(_config: &StaticInterceptorConfig, _props: &Props) -> Vec<Diagnostic> {
    Vec::new()
}

/// Builds the interceptor from its properties.
///
/// # Errors
/// Invalid `preserveExisting`.
pub fn build(props: &Props) -> BuildResult<Box<dyn Interceptor>> {
    build_with(props, validate, |c| {
        Ok(Box::new(StaticInterceptor::new(c)) as Box<dyn Interceptor>)
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

    #[test]
    fn defaults_set_key_to_value() {
        let e = run(&[], Event::new("x"));
        assert_eq!(e.headers, Headers::from_iter([("key", "value")]));
    }

    #[test]
    fn key_and_value_are_configurable() {
        let e = run(
            &[("key", "datacenter"), ("value", "NYC_01")],
            Event::new("x"),
        );
        assert_eq!(e.headers, Headers::from_iter([("datacenter", "NYC_01")]));
    }

    #[test]
    fn existing_header_is_preserved_by_default_and_overwritten_when_asked() {
        let ev = || Event::with_headers(Headers::from_iter([("key", "old")]), "x");
        assert_eq!(run(&[], ev()).headers.get("key"), Some("old"));
        let e = run(&[("preserveExisting", "false")], ev());
        assert_eq!(e.headers.get("key"), Some("value"));
    }

    #[test]
    fn empty_value_is_allowed() {
        let e = run(&[("value", "")], Event::new("x"));
        assert_eq!(e.headers.get("key"), Some(""));
    }

    #[test]
    fn bad_boolean_is_an_error() {
        let msgs = error_messages(build(&test_props(&[("preserveExisting", "1")])));
        assert!(msgs[0].contains("invalid boolean `1`"), "{msgs:?}");
    }
}
