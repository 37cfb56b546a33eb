//! Interceptors: one module per Flume interceptor type.
//!
//! Each module holds its typed `<Name>InterceptorConfig` (Flume's keys and defaults), the
//! interceptor, and a `DESCRIPTOR` listed once in [`INTERCEPTORS`]. Interceptors are pure,
//! synchronous per-event functions: everything that can fail (regex compilation, date patterns,
//! host name resolution) happens once, at build, so `intercept` never fails and never blocks.
//!
//! Regular expressions are Rust `regex` syntax, which is a subset of `java.util.regex`: no
//! look-around, back-references, possessive quantifiers or atomic groups. A pattern using them is
//! a configuration error at its key, never a runtime surprise.

use flumen_config::{Diagnostic, Props};
use regex::Regex;

use super::InterceptorDescriptor;

pub mod host;
pub mod regex_extractor;
pub mod regex_filtering;
pub mod remove_header;
pub mod search_replace;
pub mod static_header;
pub mod timestamp;
pub mod uuid;

/// Every interceptor type flumen knows, one line each.
pub static INTERCEPTORS: &[InterceptorDescriptor] = &[
    timestamp::DESCRIPTOR,
    host::DESCRIPTOR,
    static_header::DESCRIPTOR,
    remove_header::DESCRIPTOR,
    uuid::DESCRIPTOR,
    regex_filtering::DESCRIPTOR,
    regex_extractor::DESCRIPTOR,
    search_replace::DESCRIPTOR,
];

/// Compiles `pattern`, the value of `key`; a bad pattern is an error located at that key.
///
/// # Errors
/// One diagnostic with the regex crate's message, which names the unsupported Java feature
/// when there is one. (A `Vec`, the shape build functions return, keeps the `Err` small.)
pub(crate) fn compile_regex(
    props: &Props,
    key: &str,
    pattern: &str,
) -> Result<Regex, Vec<Diagnostic>> {
    Regex::new(pattern)
        .map_err(|e| vec![props.error(key, format!("invalid regex `{pattern}`: {e}"))])
}

/// The event body as text, for regex matching: invalid UTF-8 becomes U+FFFD, as Java's
/// `new String(body, UTF_8)` does. Borrows when the body is valid UTF-8 (the common case).
pub(crate) fn body_text(body: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(body)
}

/// Test helper: interceptor properties from `(key, value)` pairs, one line each from line 1,
/// under the prefix `a1.sources.r1.interceptors.i1.` as the topology would cut them.
#[cfg(test)]
pub(crate) fn test_props(pairs: &[(&str, &str)]) -> Props {
    let mut p = Props::new(
        "a1.sources.r1.interceptors.i1.",
        "interceptor i1 of source r1",
    );
    for (line, (k, v)) in (1u32..).zip(pairs) {
        p.insert(*k, *v, line);
    }
    p
}

/// Test helper: the messages of a failed build, for asserting on their text.
#[cfg(test)]
pub(crate) fn error_messages<T>(result: super::BuildResult<T>) -> Vec<String> {
    match result {
        Ok(_) => panic!("expected the build to fail"),
        Err(diags) => diags
            .into_iter()
            .filter(|d| d.is_error())
            .map(|d| d.message)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interceptor_is_registered_once_under_flume_names() {
        let names: Vec<&str> = INTERCEPTORS.iter().map(|d| d.name).collect();
        assert_eq!(
            names,
            [
                "timestamp",
                "host",
                "static",
                "remove_header",
                "uuid",
                "regex_filter",
                "regex_extractor",
                "search_replace"
            ]
        );
        for d in INTERCEPTORS {
            assert!(!d.classes.is_empty(), "{} has no class", d.name);
            for c in d.classes {
                assert!(
                    c.starts_with("org.apache.flume.") && c.ends_with("$Builder"),
                    "{c}"
                );
            }
        }
        let uuid = crate::components::lookup(
            INTERCEPTORS,
            "org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder",
        );
        assert_eq!(uuid.map(|d| d.name).ok(), Some("uuid"));
    }

    #[test]
    fn bad_regex_is_located_at_its_key() {
        let mut p = Props::new("a1.sources.r1.interceptors.i1.", "interceptor i1");
        p.insert("regex", "(a", 4);
        let e = &compile_regex(&p, "regex", "(a").unwrap_err()[0];
        assert_eq!(
            e.key.as_deref(),
            Some("a1.sources.r1.interceptors.i1.regex")
        );
        assert_eq!(e.line, Some(4));
        assert!(e.message.starts_with("invalid regex `(a`"), "{}", e.message);
    }
}
