//! The `search_replace` interceptor: replaces every match of a regex in the body (Flume's
//! `SearchAndReplaceInterceptor`, i.e. Java `Matcher.replaceAll`).
//!
//! The body is decoded as UTF-8 (invalid bytes become U+FFFD, as in Java) and the result is
//! written back as UTF-8. An event without a match keeps its body bytes untouched.
//!
//! `replaceString` uses Java's replacement syntax, translated once at build to the `regex`
//! crate's: `$n` (the longest group number that exists, as Java reads it), `${name}`, and `\x`
//! for a literal `x` (so `\$` is a literal dollar). References Java would reject when the first
//! match happens (`$` at the end, unknown group, trailing `\`) are rejected at build instead.

use std::borrow::Cow;

use bytes::Bytes;
use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Interceptor};
use regex::Regex;
use serde::Deserialize;

use super::{body_text, compile_regex};
use crate::components::{BuildResult, InterceptorDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: InterceptorDescriptor = InterceptorDescriptor {
    name: "search_replace",
    classes: &["org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder"],
    description: "Replaces every regex match in the body",
    build,
};

/// Configuration of the `search_replace` interceptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SearchReplaceInterceptorConfig {
    /// Regex to search for in the body. Flume key: `searchPattern`. Required, not empty.
    #[serde(rename = "searchPattern")]
    pub search_pattern: Option<String>,
    /// Replacement, in Java `Matcher.replaceAll` syntax. Flume key: `replaceString`.
    /// Default: empty (Flume treats a missing key as the empty string: matches are deleted).
    #[serde(rename = "replaceString")]
    pub replace_string: Option<String>,
    /// Body charset. Flume key: `charset`. Default: `UTF-8` (the only one flumen supports).
    pub charset: String,
}

impl Default for SearchReplaceInterceptorConfig {
    fn default() -> Self {
        Self {
            search_pattern: None,
            replace_string: None,
            charset: "UTF-8".to_string(),
        }
    }
}

/// Replaces every match of `regex` in the body by `replacement`.
#[derive(Debug)]
pub struct SearchReplaceInterceptor {
    regex: Regex,
    /// The replacement in `regex` crate syntax (see [`translate_replacement`]).
    replacement: String,
}

impl Interceptor for SearchReplaceInterceptor {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        let text = body_text(&event.body);
        let replaced = self.regex.replace_all(&text, self.replacement.as_str());
        // Only a borrowed result of a borrowed decode is the original bytes; a lossy decode
        // must be re-encoded even without a match, as Java does.
        let new_body = match (&text, replaced) {
            (Cow::Borrowed(_), Cow::Borrowed(_)) => None,
            (_, r) => Some(r.into_owned()),
        };
        if let Some(body) = new_body {
            event.body = Bytes::from(body.into_bytes());
        }
        Some(event)
    }
}

/// Translates a Java `Matcher.appendReplacement` string for `regex` into `regex` crate
/// replacement syntax, where every reference is braced (`${1}`) and every literal `$` doubled.
///
/// # Errors
/// Java's message for a replacement it would reject at the first match.
pub fn translate_replacement(java: &str, regex: &Regex) -> Result<String, String> {
    let group_count = regex.captures_len() - 1;
    let mut out = String::with_capacity(java.len() + 8);
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => return Err("character to be escaped is missing".to_string()),
            },
            '$' => match chars.next() {
                None => return Err("Illegal group reference: group index is missing".to_string()),
                Some('{') => {
                    let mut name = String::new();
                    while let Some(&n) = chars.peek() {
                        if !n.is_ascii_alphanumeric() {
                            break;
                        }
                        name.push(n);
                        chars.next();
                    }
                    if name.is_empty() {
                        return Err("named capturing group has 0 length name".to_string());
                    }
                    if chars.next() != Some('}') {
                        return Err("named capturing group is missing trailing '}'".to_string());
                    }
                    if name.starts_with(|c: char| c.is_ascii_digit()) {
                        return Err(format!(
                            "capturing group name {{{name}}} starts with digit character"
                        ));
                    }
                    if !regex.capture_names().flatten().any(|n| n == name) {
                        return Err(format!("No group with name {{{name}}}"));
                    }
                    out.push_str(&format!("${{{name}}}"));
                }
                Some(d) if d.is_ascii_digit() => {
                    let mut group = d as usize - '0' as usize;
                    if group > group_count {
                        return Err(format!("No group {group}"));
                    }
                    // Java takes the longest number that still names an existing group.
                    while let Some(n) = chars.peek().and_then(|c| c.to_digit(10)) {
                        let longer = group * 10 + n as usize;
                        if longer > group_count {
                            break;
                        }
                        group = longer;
                        chars.next();
                    }
                    out.push_str(&format!("${{{group}}}"));
                }
                Some(_) => return Err("Illegal group reference".to_string()),
            },
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Whether `charset` names UTF-8 (Java's `Charset.forName` is case-insensitive and knows the
/// `UTF8` alias).
fn is_utf8(charset: &str) -> bool {
    let c = charset.trim();
    c.eq_ignore_ascii_case("UTF-8") || c.eq_ignore_ascii_case("UTF8")
}

fn validate(config: &SearchReplaceInterceptorConfig, props: &Props) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    match config.search_pattern.as_deref() {
        None => {
            errors.push(props.error("searchPattern", "missing required property `searchPattern`"))
        }
        Some("") => errors.push(props.error("searchPattern", "`searchPattern` may not be empty")),
        Some(p) => match compile_regex(props, "searchPattern", p) {
            Err(e) => errors.extend(e),
            Ok(regex) => {
                let replacement = config.replace_string.as_deref().unwrap_or("");
                if let Err(msg) = translate_replacement(replacement, &regex) {
                    errors.push(props.error(
                        "replaceString",
                        format!("invalid replacement `{replacement}`: {msg}"),
                    ));
                }
            }
        },
    }
    if !is_utf8(&config.charset) {
        errors.push(props.error(
            "charset",
            format!(
                "unsupported charset `{}`: flumen supports only UTF-8",
                config.charset
            ),
        ));
    }
    errors
}

fn make(
    config: SearchReplaceInterceptorConfig,
    props: &Props,
) -> Result<SearchReplaceInterceptor, Vec<Diagnostic>> {
    let pattern = config.search_pattern.unwrap_or_default();
    let regex = compile_regex(props, "searchPattern", &pattern)?;
    let java = config.replace_string.unwrap_or_default();
    let replacement = translate_replacement(&java, &regex).map_err(|m| {
        vec![props.error(
            "replaceString",
            format!("invalid replacement `{java}`: {m}"),
        )]
    })?;
    Ok(SearchReplaceInterceptor { regex, replacement })
}

/// Builds the interceptor from its properties.
///
/// # Errors
/// Missing, empty or invalid `searchPattern`; invalid `replaceString`; a charset other than
/// UTF-8.
pub fn build(props: &Props) -> BuildResult<Box<dyn Interceptor>> {
    build_with(props, validate, |c| {
        Ok(Box::new(make(c, props)?) as Box<dyn Interceptor>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::interceptors::{error_messages, test_props};

    fn replace(pairs: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let (i, warnings) = build(&test_props(pairs)).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        i.intercept(Event::new(body.to_vec()))
            .unwrap()
            .body
            .to_vec()
    }

    #[test]
    fn defaults() {
        let d = SearchReplaceInterceptorConfig::default();
        assert_eq!(d.charset, "UTF-8");
        assert_eq!(d.replace_string, None);
    }

    #[test]
    fn replaces_every_match() {
        let p = [("searchPattern", "^INFO:"), ("replaceString", "Log msg:")];
        assert_eq!(replace(&p, b"INFO: started"), b"Log msg: started");
        let p = [("searchPattern", "[0-9]"), ("replaceString", "#")];
        assert_eq!(replace(&p, b"a1b22c"), b"a#b##c");
    }

    #[test]
    fn missing_or_empty_replace_string_deletes_matches() {
        assert_eq!(replace(&[("searchPattern", r"\s+")], b"a b  c"), b"abc");
        let p = [("searchPattern", "x"), ("replaceString", "")];
        assert_eq!(replace(&p, b"axbx"), b"ab");
    }

    #[test]
    fn java_group_references() {
        let p = [
            ("searchPattern", r"(\w+)@(\w+)"),
            ("replaceString", "$2 at $1"),
        ];
        assert_eq!(replace(&p, b"me@host!"), b"host at me!");
        // `$1x` is group 1 then `x` (Rust alone would read a group named `1x`).
        let p = [("searchPattern", "(a)"), ("replaceString", "$1x")];
        assert_eq!(replace(&p, b"a"), b"ax");
        // `$10` with one group is group 1 then `0`, as Java reads it.
        let p = [("searchPattern", "(a)"), ("replaceString", "$10")];
        assert_eq!(replace(&p, b"a"), b"a0");
        let p = [
            ("searchPattern", "(?<word>b+)"),
            ("replaceString", "<${word}>"),
        ];
        assert_eq!(replace(&p, b"abbc"), b"a<bb>c");
        // Whole match and non-participating groups.
        let p = [("searchPattern", "a|(z)"), ("replaceString", "[$0$1]")];
        assert_eq!(replace(&p, b"ab"), b"[a]b");
    }

    #[test]
    fn java_escapes_are_literals() {
        let p = [("searchPattern", "price"), ("replaceString", r"\$5 \\ \x")];
        assert_eq!(replace(&p, b"price"), br"$5 \ x");
    }

    #[test]
    fn body_without_match_is_untouched_and_invalid_utf8_is_reencoded() {
        let p = [("searchPattern", "zzz"), ("replaceString", "y")];
        assert_eq!(replace(&p, b"abc"), b"abc");
        assert_eq!(replace(&p, b"a\xffc"), "a\u{FFFD}c".as_bytes());
        let p = [("searchPattern", "c"), ("replaceString", "d")];
        assert_eq!(replace(&p, b"a\xffc"), "a\u{FFFD}d".as_bytes());
    }

    #[test]
    fn charset_accepts_utf8_spellings_only() {
        let base = [("searchPattern", "a"), ("replaceString", "b")];
        for cs in ["UTF-8", "utf-8", "utf8"] {
            let pairs = [base[0], base[1], ("charset", cs)];
            assert_eq!(replace(&pairs, b"a"), b"b");
        }
        let msgs = error_messages(build(&test_props(&[
            base[0],
            base[1],
            ("charset", "ISO-8859-1"),
        ])));
        assert_eq!(
            msgs,
            ["unsupported charset `ISO-8859-1`: flumen supports only UTF-8"]
        );
    }

    #[test]
    fn bad_config_errors() {
        let msgs = error_messages(build(&test_props(&[("replaceString", "x")])));
        assert_eq!(msgs, ["missing required property `searchPattern`"]);
        let msgs = error_messages(build(&test_props(&[("searchPattern", "")])));
        assert_eq!(msgs, ["`searchPattern` may not be empty"]);
        let msgs = error_messages(build(&test_props(&[("searchPattern", "(")])));
        assert!(msgs[0].starts_with("invalid regex `(`"), "{msgs:?}");
        let cases = [
            ("(a)", "$2", "No group 2"),
            ("a", "$", "Illegal group reference: group index is missing"),
            ("a", "$x", "Illegal group reference"),
            ("a", "x\\", "character to be escaped is missing"),
            ("a", "${}", "named capturing group has 0 length name"),
            (
                "(?<n>a)",
                "${n",
                "named capturing group is missing trailing '}'",
            ),
            (
                "(?<n>a)",
                "${1n}",
                "capturing group name {1n} starts with digit character",
            ),
            ("(?<n>a)", "${m}", "No group with name {m}"),
        ];
        for (pattern, replacement, expected) in cases {
            let r = build(&test_props(&[
                ("searchPattern", pattern),
                ("replaceString", replacement),
            ]));
            let diags = r.err().unwrap();
            assert_eq!(
                diags[0].message,
                format!("invalid replacement `{replacement}`: {expected}")
            );
            assert_eq!(
                diags[0].key.as_deref(),
                Some("a1.sources.r1.interceptors.i1.replaceString")
            );
        }
    }
}
