//! The UUID interceptor: gives each event a random (version 4) UUID header (Flume's
//! `org.apache.flume.sink.solr.morphline.UUIDInterceptor`).
//!
//! Flume has no alias for it, only the class name; flumen also accepts `uuid` for brevity. The
//! UUID is Java's `UUID.toString()` form: lower-case hex in 8-4-4-4-12 groups.

use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Interceptor};
use serde::Deserialize;

use crate::components::{BuildResult, InterceptorDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: InterceptorDescriptor = InterceptorDescriptor {
    name: "uuid",
    classes: &["org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder"],
    description: "Sets a header to a random UUID, with an optional prefix",
    build,
};

/// Configuration of the UUID interceptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct UuidInterceptorConfig {
    /// Header receiving the UUID. Flume key: `headerName`. Default: `id`.
    #[serde(rename = "headerName")]
    pub header_name: String,
    /// Leave an existing header alone. Flume key: `preserveExisting`. Default: true.
    #[serde(rename = "preserveExisting")]
    pub preserve_existing: bool,
    /// String prepended to each UUID. Flume key: `prefix`. Default: empty.
    pub prefix: String,
}

impl Default for UuidInterceptorConfig {
    fn default() -> Self {
        Self {
            header_name: "id".to_string(),
            preserve_existing: true,
            prefix: String::new(),
        }
    }
}

/// Sets `header_name` to `prefix` + a new UUID.
#[derive(Debug)]
pub struct UuidInterceptor {
    config: UuidInterceptorConfig,
}

impl UuidInterceptor {
    /// An interceptor with `config`.
    pub fn new(config: UuidInterceptorConfig) -> Self {
        Self { config }
    }
}

impl Interceptor for UuidInterceptor {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        let c = &self.config;
        if !(c.preserve_existing && event.headers.contains_key(&c.header_name)) {
            let id = format!("{}{}", c.prefix, ::uuid::Uuid::new_v4().hyphenated());
            event.headers.insert(c.header_name.as_str(), id);
        }
        Some(event)
    }
}

fn validate(_config: &UuidInterceptorConfig, _props: &Props) -> Vec<Diagnostic> {
    Vec::new()
}

/// Builds the interceptor from its properties.
///
/// # Errors
/// Invalid `preserveExisting`.
pub fn build(props: &Props) -> BuildResult<Box<dyn Interceptor>> {
    build_with(props, validate, |c| {
        Ok(Box::new(UuidInterceptor::new(c)) as Box<dyn Interceptor>)
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

    fn is_uuid(s: &str) -> bool {
        ::uuid::Uuid::parse_str(s).is_ok() && s.len() == 36 && s == s.to_ascii_lowercase()
    }

    #[test]
    fn defaults_set_id_to_a_fresh_lower_case_uuid() {
        let a = run(&[], Event::new("x"));
        let b = run(&[], Event::new("x"));
        let (ida, idb) = (a.headers.get("id").unwrap(), b.headers.get("id").unwrap());
        assert!(is_uuid(ida), "{ida}");
        assert_ne!(ida, idb);
    }

    #[test]
    fn header_name_and_prefix_are_configurable() {
        let e = run(
            &[("headerName", "eventId"), ("prefix", "agent1-")],
            Event::new("x"),
        );
        let id = e.headers.get("eventId").unwrap();
        assert!(
            id.starts_with("agent1-") && is_uuid(&id["agent1-".len()..]),
            "{id}"
        );
        assert!(e.headers.get("id").is_none());
    }

    #[test]
    fn existing_id_is_preserved_by_default_and_replaced_when_asked() {
        let ev = || Event::with_headers(Headers::from_iter([("id", "mine")]), "x");
        assert_eq!(run(&[], ev()).headers.get("id"), Some("mine"));
        let e = run(&[("preserveExisting", "false")], ev());
        assert!(is_uuid(e.headers.get("id").unwrap()));
    }

    #[test]
    fn bad_boolean_is_an_error() {
        let msgs = error_messages(build(&test_props(&[("preserveExisting", "no")])));
        assert!(msgs[0].contains("invalid boolean `no`"), "{msgs:?}");
    }
}
