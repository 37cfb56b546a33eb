//! The `remove_header` interceptor: removes headers by name, by list or by regex (Flume's
//! `RemoveHeaderInterceptor`).
//!
//! As in Flume, the three criteria add up: a header goes if it is `withName`, is in
//! `fromList`, or its whole name matches `matching` (Java `Matcher.matches()`, so the regex is
//! anchored at both ends). The list is split once, at build, with Java `String.split`
//! semantics.

use std::collections::HashSet;

use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Interceptor};
use regex::Regex;
use serde::Deserialize;

use super::compile_regex;
use crate::components::{BuildResult, InterceptorDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: InterceptorDescriptor = InterceptorDescriptor {
    name: "remove_header",
    classes: &["org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder"],
    description: "Removes headers by name, by list or by regex",
    build,
};

/// Flume's default `fromListSeparator`: a comma with optional whitespace around it.
pub const DEFAULT_LIST_SEPARATOR: &str = r"\s*,\s*";

/// Configuration of the `remove_header` interceptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RemoveHeaderInterceptorConfig {
    /// One header to remove. Flume key: `withName`. Default: none.
    #[serde(rename = "withName")]
    pub with_name: Option<String>,
    /// Headers to remove, separated by `fromListSeparator`. Flume key: `fromList`. Default: none.
    #[serde(rename = "fromList")]
    pub from_list: Option<String>,
    /// Regex separating `fromList`. Flume key: `fromListSeparator`. Default: `\s*,\s*`.
    #[serde(rename = "fromListSeparator")]
    pub from_list_separator: String,
    /// Remove every header whose whole name matches this regex. Flume key: `matching`.
    /// Default: none.
    pub matching: Option<String>,
}

impl Default for RemoveHeaderInterceptorConfig {
    fn default() -> Self {
        Self {
            with_name: None,
            from_list: None,
            from_list_separator: DEFAULT_LIST_SEPARATOR.to_string(),
            matching: None,
        }
    }
}

/// Removes the configured headers.
#[derive(Debug)]
pub struct RemoveHeaderInterceptor {
    with_name: Option<String>,
    from_list: Option<HashSet<String>>,
    /// `matching`, wrapped in `\A(?:…)\z` so that a match covers the whole name.
    matching: Option<Regex>,
}

impl Interceptor for RemoveHeaderInterceptor {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        if let Some(name) = &self.with_name {
            event.headers.remove(name);
        }
        if self.from_list.is_some() || self.matching.is_some() {
            event.headers.retain(|k, _| {
                let listed = self.from_list.as_ref().is_some_and(|l| l.contains(k));
                let matched = self.matching.as_ref().is_some_and(|r| r.is_match(k));
                !(listed || matched)
            });
        }
        Some(event)
    }
}

/// Java's `String.split(regex)`: a positive-width match at the start gives a leading empty
/// string, a zero-width one does not; trailing empty strings are dropped; no match at all gives
/// the input itself.
pub fn java_split<'a>(separator: &Regex, s: &'a str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut last = 0;
    let mut matched = false;
    for m in separator.find_iter(s) {
        matched = true;
        if m.start() == 0 && m.end() == 0 {
            continue;
        }
        parts.push(&s[last..m.start()]);
        last = m.end();
    }
    if !matched {
        return vec![s];
    }
    parts.push(&s[last..]);
    while parts.last() == Some(&"") {
        parts.pop();
    }
    parts
}

fn validate(config: &RemoveHeaderInterceptorConfig, props: &Props) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    if let Err(e) = compile_regex(props, "fromListSeparator", &config.from_list_separator) {
        errors.extend(e);
    }
    if let Some(Err(e)) = config
        .matching
        .as_deref()
        .map(|m| compile_regex(props, "matching", m))
    {
        errors.extend(e);
    }
    errors
}

fn make(
    config: RemoveHeaderInterceptorConfig,
    props: &Props,
) -> Result<RemoveHeaderInterceptor, Vec<Diagnostic>> {
    let separator = compile_regex(props, "fromListSeparator", &config.from_list_separator)?;
    let from_list = config.from_list.as_deref().map(|l| {
        java_split(&separator, l)
            .into_iter()
            .map(str::to_string)
            .collect()
    });
    let matching = match &config.matching {
        Some(m) => Some(compile_regex(props, "matching", &format!(r"\A(?:{m})\z"))?),
        None => None,
    };
    Ok(RemoveHeaderInterceptor {
        with_name: config.with_name,
        from_list,
        matching,
    })
}

/// Builds the interceptor from its properties.
///
/// # Errors
/// An invalid `fromListSeparator` or `matching` regex.
pub fn build(props: &Props) -> BuildResult<Box<dyn Interceptor>> {
    let (interceptor, mut warnings) = build_with(props, validate, |c| make(c, props))?;
    if interceptor.with_name.is_none()
        && interceptor.from_list.is_none()
        && interceptor.matching.is_none()
    {
        warnings.push(props.warning(
            "withName",
            "none of `withName`, `fromList` or `matching` is set: this interceptor removes nothing",
        ));
    }
    Ok((Box::new(interceptor), warnings))
}

#[cfg(test)]
mod tests {
    use flumen_core::Headers;

    use super::*;
    use crate::components::interceptors::{error_messages, test_props};

    fn event() -> Event {
        let headers =
            Headers::from_iter([("a", "1"), ("b", "2"), ("c", "3"), ("dd", "4"), ("xd", "5")]);
        Event::with_headers(headers, "body")
    }

    fn keys(pairs: &[(&str, &str)]) -> Vec<String> {
        let (i, warnings) = build(&test_props(pairs)).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let e = i.intercept(event()).unwrap();
        assert_eq!(e.body, "body");
        e.headers.iter().map(|(k, _)| k.to_string()).collect()
    }

    #[test]
    fn defaults_remove_nothing_and_warn() {
        assert_eq!(
            RemoveHeaderInterceptorConfig::default().from_list_separator,
            r"\s*,\s*"
        );
        let (i, warnings) = build(&test_props(&[])).unwrap();
        assert!(
            warnings[0].message.contains("removes nothing"),
            "{warnings:?}"
        );
        assert_eq!(i.intercept(event()).unwrap(), event());
    }

    #[test]
    fn with_name_removes_one_header() {
        assert_eq!(keys(&[("withName", "b")]), ["a", "c", "dd", "xd"]);
        assert_eq!(keys(&[("withName", "absent")]), ["a", "b", "c", "dd", "xd"]);
    }

    #[test]
    fn from_list_uses_the_default_separator() {
        assert_eq!(keys(&[("fromList", "a , c,dd")]), ["b", "xd"]);
    }

    #[test]
    fn from_list_separator_is_a_regex() {
        assert_eq!(
            keys(&[("fromList", "a|c"), ("fromListSeparator", r"\|")]),
            ["b", "dd", "xd"]
        );
        assert_eq!(
            keys(&[("fromList", "a1b2c"), ("fromListSeparator", "[0-9]")]),
            ["dd", "xd"]
        );
    }

    #[test]
    fn matching_must_match_the_whole_name() {
        // `d` alone matches no name entirely; `.d` matches `dd` and `xd`.
        assert_eq!(keys(&[("matching", "d")]), ["a", "b", "c", "dd", "xd"]);
        assert_eq!(keys(&[("matching", ".d")]), ["a", "b", "c"]);
        assert_eq!(keys(&[("matching", "a|b")]), ["c", "dd", "xd"]);
    }

    #[test]
    fn criteria_add_up() {
        let pairs = [("withName", "a"), ("fromList", "b"), ("matching", "x.")];
        assert_eq!(keys(&pairs), ["c", "dd"]);
    }

    #[test]
    fn java_split_semantics() {
        let comma = Regex::new(DEFAULT_LIST_SEPARATOR).unwrap();
        assert_eq!(java_split(&comma, "a, b ,c"), ["a", "b", "c"]);
        assert_eq!(java_split(&comma, "a,b,,"), ["a", "b"]);
        assert_eq!(java_split(&comma, ",a"), ["", "a"]);
        assert_eq!(java_split(&comma, "a"), ["a"]);
        assert_eq!(java_split(&comma, ""), [""]);
        let empty = Regex::new("").unwrap();
        assert_eq!(java_split(&empty, "ab"), ["a", "b"]);
    }

    #[test]
    fn bad_regexes_are_errors_at_their_keys() {
        let r = build(&test_props(&[("matching", "(unclosed")]));
        let diags = r.err().unwrap();
        assert_eq!(
            diags[0].key.as_deref(),
            Some("a1.sources.r1.interceptors.i1.matching")
        );
        assert!(
            diags[0].message.starts_with("invalid regex `(unclosed`"),
            "{diags:?}"
        );
        let msgs = error_messages(build(&test_props(&[
            ("fromList", "a"),
            ("fromListSeparator", "["),
        ])));
        assert!(msgs[0].starts_with("invalid regex `[`"), "{msgs:?}");
    }
}
