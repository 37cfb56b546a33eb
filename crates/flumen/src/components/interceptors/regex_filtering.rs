//! The `regex_filter` interceptor: keeps or drops events by testing their body against a regex
//! (Flume's `RegexFilteringInterceptor`).
//!
//! The test is Java's `Matcher.find()`: an unanchored search anywhere in the body, decoded as
//! UTF-8 with invalid bytes replaced (what `new String(body)` does on a UTF-8 JVM). With
//! `excludeEvents = false` only matching events pass; with `true` matching events are dropped.

use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Interceptor};
use regex::Regex;
use serde::Deserialize;

use super::{body_text, compile_regex};
use crate::components::{BuildResult, InterceptorDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: InterceptorDescriptor = InterceptorDescriptor {
    name: "regex_filter",
    classes: &["org.apache.flume.interceptor.RegexFilteringInterceptor$Builder"],
    description: "Keeps (or drops) events whose body matches a regex",
    build,
};

/// Configuration of the `regex_filter` interceptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RegexFilteringInterceptorConfig {
    /// Regex searched for in the body. Flume key: `regex`. Default: `.*` (the user guide
    /// prints it with quotes, `".*"`; the quotes are not part of the value).
    pub regex: String,
    /// Drop matching events (true) or keep only them (false). Flume key: `excludeEvents`.
    /// Default: false.
    #[serde(rename = "excludeEvents")]
    pub exclude_events: bool,
}

impl Default for RegexFilteringInterceptorConfig {
    fn default() -> Self {
        Self {
            regex: ".*".to_string(),
            exclude_events: false,
        }
    }
}

/// Keeps or drops events by a regex search of their body.
#[derive(Debug)]
pub struct RegexFilteringInterceptor {
    regex: Regex,
    exclude_events: bool,
}

impl Interceptor for RegexFilteringInterceptor {
    fn intercept(&self, event: Event) -> Option<Event> {
        let found = self.regex.is_match(&body_text(&event.body));
        (found != self.exclude_events).then_some(event)
    }
}

fn validate(config: &RegexFilteringInterceptorConfig, props: &Props) -> Vec<Diagnostic> {
    compile_regex(props, "regex", &config.regex)
        .err()
        .unwrap_or_default()
}

/// Builds the interceptor from its properties.
///
/// # Errors
/// An invalid `regex` or `excludeEvents`.
pub fn build(props: &Props) -> BuildResult<Box<dyn Interceptor>> {
    build_with(props, validate, |c| {
        let regex = compile_regex(props, "regex", &c.regex)?;
        let i = RegexFilteringInterceptor {
            regex,
            exclude_events: c.exclude_events,
        };
        Ok(Box::new(i) as Box<dyn Interceptor>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::interceptors::{error_messages, test_props};

    fn passes(pairs: &[(&str, &str)], body: &[u8]) -> bool {
        let (i, warnings) = build(&test_props(pairs)).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let out = i.intercept(Event::new(body.to_vec()));
        if let Some(e) = &out {
            assert_eq!(&e.body[..], body, "the body is never changed");
        }
        out.is_some()
    }

    #[test]
    fn defaults_keep_everything() {
        assert_eq!(RegexFilteringInterceptorConfig::default().regex, ".*");
        assert!(passes(&[], b"anything"));
        assert!(passes(&[], b""));
        assert!(passes(&[], b"\xff\xfe not utf-8"));
    }

    #[test]
    fn include_mode_keeps_only_matches_found_anywhere() {
        let p = [("regex", "ERROR")];
        assert!(passes(&p, b"2024 ERROR disk full"));
        assert!(!passes(&p, b"2024 INFO ok"));
        // find(), not matches(): anchors only when the regex says so.
        assert!(!passes(&[("regex", "^ERROR")], b"2024 ERROR"));
    }

    #[test]
    fn exclude_events_drops_matches() {
        let p = [("regex", "DEBUG"), ("excludeEvents", "true")];
        assert!(!passes(&p, b"x DEBUG y"));
        assert!(passes(&p, b"x INFO y"));
        // `.*` matches everything, so excluding it drops everything.
        assert!(!passes(&[("excludeEvents", "true")], b"x"));
    }

    #[test]
    fn invalid_utf8_is_matched_as_replacement_characters() {
        assert!(passes(&[("regex", "\u{FFFD}")], b"a\xffb"));
        assert!(passes(&[("regex", "^a.b$")], b"a\xffb"));
    }

    #[test]
    fn bad_config_errors() {
        let msgs = error_messages(build(&test_props(&[("regex", "a(?=b)")])));
        assert!(msgs[0].starts_with("invalid regex `a(?=b)`"), "{msgs:?}");
        assert!(msgs[0].contains("look-around"), "{msgs:?}");
        let msgs = error_messages(build(&test_props(&[("excludeEvents", "perhaps")])));
        assert!(msgs[0].contains("invalid boolean `perhaps`"), "{msgs:?}");
    }
}
