//! The `regex_extractor` interceptor: copies regex capture groups of the body into headers
//! (Flume's `RegexExtractorInterceptor`).
//!
//! Semantics, as in Flume: the regex is searched once (`Matcher.find()`, unanchored) in the
//! body decoded as UTF-8 (invalid bytes become U+FFFD). Group `i` (1-based) goes through
//! serializer `i` of the `serializers` list into that serializer's `name` header; groups without
//! a serializer are skipped, and so are serializers without a group. No match leaves the event
//! unchanged. The body is never changed and no event is dropped.
//!
//! Two serializers exist: pass-through (`DEFAULT`), and millis, which parses the group with a
//! Joda-Time pattern into epoch milliseconds. See [`JodaPattern`] for the supported subset.

use chrono::format::{Fixed, Item, Numeric, Pad, Parsed, StrftimeItems};
use chrono::{Datelike, FixedOffset, Local, NaiveDate, NaiveTime, TimeZone};
use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Interceptor};
use regex::Regex;
use serde::Deserialize;

use super::{body_text, compile_regex};
use crate::components::{BuildResult, InterceptorDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: InterceptorDescriptor = InterceptorDescriptor {
    name: "regex_extractor",
    classes: &["org.apache.flume.interceptor.RegexExtractorInterceptor$Builder"],
    description: "Copies regex capture groups of the body into headers",
    build,
};

/// `serializers.<s>.type` of the pass-through serializer, besides `DEFAULT`.
pub const PASS_THROUGH_SERIALIZER: &str =
    "org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer";
/// `serializers.<s>.type` of the Joda-pattern-to-epoch-millis serializer.
pub const MILLIS_SERIALIZER: &str =
    "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer";

/// Configuration of the `regex_extractor` interceptor. The per-serializer keys
/// `serializers.<s>.*` are read into [`RegexExtractorSerializerConfig`]s at build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RegexExtractorInterceptorConfig {
    /// Regex with capture groups, searched in the body. Flume key: `regex`. Required.
    pub regex: Option<String>,
    /// Serializer names, one per capture group, in group order. Flume key: `serializers`
    /// (whitespace-separated). Required.
    pub serializers: Option<Vec<String>>,
}

/// Configuration of one serializer, the keys under `serializers.<s>.`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RegexExtractorSerializerConfig {
    /// `DEFAULT` (pass-through), [`PASS_THROUGH_SERIALIZER`] or [`MILLIS_SERIALIZER`].
    /// Flume key: `serializers.<s>.type`. Default: `DEFAULT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Header receiving the group. Flume key: `serializers.<s>.name`. Required.
    pub name: Option<String>,
    /// Joda-Time date pattern of the millis serializer. Flume key: `serializers.<s>.pattern`.
    /// Required by the millis serializer.
    pub pattern: Option<String>,
}

impl Default for RegexExtractorSerializerConfig {
    fn default() -> Self {
        Self {
            kind: "DEFAULT".to_string(),
            name: None,
            pattern: None,
        }
    }
}

/// Turns a captured group into a header value.
#[derive(Debug, Clone)]
pub enum Serializer {
    /// The group as is.
    PassThrough,
    /// The group parsed with a Joda pattern, as decimal epoch milliseconds.
    Millis(JodaPattern),
}

impl Serializer {
    /// The header value for `group`; `None` when it does not parse (the header is left unset).
    pub fn serialize(&self, group: &str) -> Option<String> {
        match self {
            Serializer::PassThrough => Some(group.to_string()),
            Serializer::Millis(p) => p.parse_millis(group).map(|ms| ms.to_string()),
        }
    }
}

/// Copies capture groups into headers.
#[derive(Debug)]
pub struct RegexExtractorInterceptor {
    regex: Regex,
    /// (header name, serializer) for group 1, 2, …
    serializers: Vec<(String, Serializer)>,
}

impl Interceptor for RegexExtractorInterceptor {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        let text = body_text(&event.body);
        if let Some(caps) = self.regex.captures(&text) {
            let groups = caps.len() - 1;
            for (i, (name, serializer)) in self.serializers.iter().enumerate().take(groups) {
                // A group that did not take part in the match has no value (Flume would put a
                // null); leave the header unset.
                let value = caps
                    .get(i + 1)
                    .and_then(|m| serializer.serialize(m.as_str()));
                if let Some(value) = value {
                    event.headers.insert(name.as_str(), value);
                }
            }
        }
        Some(event)
    }
}

/// A Joda-Time `DateTimeFormat` pattern, translated to chrono parsing items.
///
/// Supported letters: `y` (`yy` = two-digit year with Joda's pivot, current year − 30 ± 50),
/// `M` (`MMM` short and `MMMM` long English month names), `d`, `H`, `h` with `a`, `m`, `s`,
/// `S` (fraction: 1–3 letters read exactly 3 digits, 4–6 read 6, more read 9), `E` (weekday
/// name, read and ignored) and `Z`/`ZZ` (offset `Z`, `+hh`, `+hhmm` or `+hh:mm`). Text in
/// single quotes and any non-letter is literal; `''` is a quote. Fields the pattern lacks
/// default to 1970-01-01T00:00:00.000 as in Joda; without `Z` the local time zone applies.
#[derive(Debug, Clone)]
pub struct JodaPattern {
    items: Vec<Item<'static>>,
    /// Whether the year is two digits (`yy`), resolved against `pivot`.
    two_digit_year: bool,
    /// Joda's pivot: the year the formatter was made, minus 30.
    pivot: i32,
}

impl JodaPattern {
    /// Translates `pattern`.
    ///
    /// # Errors
    /// A message naming the unsupported letter or the unclosed quote.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let mut items = Vec::new();
        let mut two_digit_year = false;
        let mut literal = String::new();
        let chars: Vec<char> = pattern.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '\'' {
                // `''` is a quote, inside or outside quoted text.
                if chars.get(i + 1) == Some(&'\'') {
                    literal.push('\'');
                    i += 2;
                    continue;
                }
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unclosed quote".to_string()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            literal.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(&q) => {
                            literal.push(q);
                            i += 1;
                        }
                    }
                }
                continue;
            }
            if !c.is_ascii_alphabetic() {
                literal.push(c);
                i += 1;
                continue;
            }
            let mut count = 1;
            while chars.get(i + count) == Some(&c) {
                count += 1;
            }
            i += count;
            if !literal.is_empty() {
                items.push(Item::OwnedLiteral(
                    std::mem::take(&mut literal).into_boxed_str(),
                ));
            }
            let num = |n| Item::Numeric(n, Pad::Zero);
            let item = match (c, count) {
                ('y', 2) => {
                    two_digit_year = true;
                    num(Numeric::YearMod100)
                }
                ('y', _) => num(Numeric::Year),
                ('M', 1 | 2) => num(Numeric::Month),
                ('M', 3) => Item::Fixed(Fixed::ShortMonthName),
                ('M', _) => Item::Fixed(Fixed::LongMonthName),
                ('d', _) => num(Numeric::Day),
                ('H', _) => num(Numeric::Hour),
                ('h', _) => num(Numeric::Hour12),
                ('a', _) => Item::Fixed(Fixed::UpperAmPm),
                ('m', _) => num(Numeric::Minute),
                ('s', _) => num(Numeric::Second),
                ('S', n) => fraction_item(n)?,
                ('E', 1..=3) => Item::Fixed(Fixed::ShortWeekdayName),
                ('E', _) => Item::Fixed(Fixed::LongWeekdayName),
                ('Z', 1 | 2) => Item::Fixed(Fixed::TimezoneOffsetZ),
                (c, n) => {
                    let token: String = std::iter::repeat_n(c, n).collect();
                    return Err(format!("unsupported pattern letters `{token}`"));
                }
            };
            items.push(item);
        }
        if !literal.is_empty() {
            items.push(Item::OwnedLiteral(literal.into_boxed_str()));
        }
        Ok(Self {
            items,
            two_digit_year,
            pivot: Local::now().year() - 30,
        })
    }

    /// Parses `text`, all of it, into epoch milliseconds; `None` when it does not fit the
    /// pattern or names no valid instant (a date like February 30th, a local time skipped by a
    /// daylight-saving change).
    pub fn parse_millis(&self, text: &str) -> Option<i64> {
        let mut p = Parsed::new();
        chrono::format::parse(&mut p, text, self.items.iter()).ok()?;
        let year = match (p.year(), p.year_mod_100()) {
            (Some(y), _) => y,
            (None, Some(yy)) if self.two_digit_year => {
                let low = self.pivot - 50;
                low + (yy - low).rem_euclid(100)
            }
            _ => 1970,
        };
        let date = NaiveDate::from_ymd_opt(year, p.month().unwrap_or(1), p.day().unwrap_or(1))?;
        // `h` without `a` means a morning hour, as in Joda.
        let hour = p.hour_div_12().unwrap_or(0) * 12 + p.hour_mod_12().unwrap_or(0);
        let time = NaiveTime::from_hms_nano_opt(
            hour,
            p.minute().unwrap_or(0),
            p.second().unwrap_or(0),
            p.nanosecond().unwrap_or(0),
        )?;
        let local = date.and_time(time);
        let instant = match p.offset() {
            Some(secs) => FixedOffset::east_opt(secs)?
                .from_local_datetime(&local)
                .single()?
                .timestamp_millis(),
            None => Local
                .from_local_datetime(&local)
                .earliest()?
                .timestamp_millis(),
        };
        Some(instant)
    }
}

/// The chrono item reading `letters` fraction-of-second digits (`S` repeated).
fn fraction_item(letters: usize) -> Result<Item<'static>, String> {
    let spec = match letters {
        1..=3 => "%3f",
        4..=6 => "%6f",
        _ => "%9f",
    };
    StrftimeItems::new(spec)
        .next()
        .ok_or_else(|| format!("no chrono item for `{spec}`"))
}

/// Parses the `serializers.<s>.*` keys of every listed serializer. Returns the serializers,
/// warnings and errors; errors mean the list is unusable.
fn parse_serializers(
    names: &[String],
    props: &Props,
) -> (Vec<(String, Serializer)>, Vec<Diagnostic>, Vec<Diagnostic>) {
    let (mut out, mut warnings, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for s in names {
        let sub = props.sub(&format!("serializers.{s}"), props.component());
        let config = match sub.deserialize::<RegexExtractorSerializerConfig>() {
            Ok((c, w)) => {
                warnings.extend(w);
                c
            }
            Err(diags) => {
                let (e, w): (Vec<_>, Vec<_>) = diags.into_iter().partition(Diagnostic::is_error);
                errors.extend(e);
                warnings.extend(w);
                continue;
            }
        };
        let name = match config.name.as_deref() {
            None => {
                let key = format!("serializers.{s}.name");
                errors.push(sub.error("name", format!("missing required property `{key}`")));
                None
            }
            Some("") => {
                errors.push(sub.error("name", format!("`serializers.{s}.name` may not be empty")));
                None
            }
            Some(n) => Some(n.to_string()),
        };
        let kind = config.kind.trim();
        let serializer = if kind.eq_ignore_ascii_case("DEFAULT") || kind == PASS_THROUGH_SERIALIZER
        {
            if config.pattern.is_some() {
                warnings.push(sub.warning(
                    "pattern",
                    "`pattern` is used only by the millis serializer; ignored",
                ));
            }
            Some(Serializer::PassThrough)
        } else if kind == MILLIS_SERIALIZER {
            match config.pattern.as_deref() {
                None => {
                    let key = format!("serializers.{s}.pattern");
                    errors.push(sub.error("pattern", format!("missing required property `{key}`")));
                    None
                }
                Some("") => {
                    let msg = format!("`serializers.{s}.pattern` may not be empty");
                    errors.push(sub.error("pattern", msg));
                    None
                }
                Some(p) => match JodaPattern::new(p) {
                    Ok(p) => Some(Serializer::Millis(p)),
                    Err(m) => {
                        errors
                            .push(sub.error("pattern", format!("invalid date pattern `{p}`: {m}")));
                        None
                    }
                },
            }
        } else {
            errors.push(sub.error(
                "type",
                format!(
                    "unknown serializer type `{kind}`; expected `DEFAULT`, \
                     `{PASS_THROUGH_SERIALIZER}` or `{MILLIS_SERIALIZER}`"
                ),
            ));
            None
        };
        if let (Some(name), Some(serializer)) = (name, serializer) {
            out.push((name, serializer));
        }
    }
    // Flume silently ignores the keys of serializers missing from the list; say so.
    let mut reported: Vec<&str> = Vec::new();
    for (key, _, _) in props.iter() {
        let Some(rest) = key.strip_prefix("serializers.") else {
            continue;
        };
        let s = rest.split('.').next().unwrap_or(rest);
        if !names.iter().any(|n| n == s) && !reported.contains(&s) {
            reported.push(s);
            warnings.push(props.warning(
                key,
                format!(
                    "serializer `{s}` is not listed in `serializers`; its properties are ignored"
                ),
            ));
        }
    }
    (out, warnings, errors)
}

fn validate(config: &RegexExtractorInterceptorConfig, props: &Props) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    match config.regex.as_deref() {
        None => errors.push(props.error("regex", "missing required property `regex`")),
        Some("") => errors.push(props.error("regex", "`regex` may not be empty")),
        Some(r) => errors.extend(compile_regex(props, "regex", r).err().into_iter().flatten()),
    }
    match config.serializers.as_deref() {
        None => errors.push(props.error("serializers", "missing required property `serializers`")),
        Some([]) => errors.push(props.error(
            "serializers",
            "`serializers` may not be empty: name one serializer per capture group",
        )),
        Some(names) => errors.extend(parse_serializers(names, props).2),
    }
    errors
}

fn make(
    config: RegexExtractorInterceptorConfig,
    props: &Props,
) -> Result<(RegexExtractorInterceptor, Vec<Diagnostic>), Vec<Diagnostic>> {
    let regex = compile_regex(props, "regex", config.regex.as_deref().unwrap_or_default())?;
    let names = config.serializers.unwrap_or_default();
    let (serializers, warnings, errors) = parse_serializers(&names, props);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((RegexExtractorInterceptor { regex, serializers }, warnings))
}

/// Builds the interceptor from its properties.
///
/// # Errors
/// Missing or invalid `regex`; missing `serializers`; a listed serializer without `name`, with
/// an unknown `type`, or a millis serializer without a valid `pattern`.
pub fn build(props: &Props) -> BuildResult<Box<dyn Interceptor>> {
    let ((interceptor, mut extra), mut warnings) = build_with(props, validate, |c| make(c, props))?;
    warnings.append(&mut extra);
    Ok((Box::new(interceptor), warnings))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use flumen_core::Headers;

    use super::*;
    use crate::components::interceptors::{error_messages, test_props};

    fn build_ok(pairs: &[(&str, &str)]) -> Box<dyn Interceptor> {
        let (i, warnings) = build(&test_props(pairs)).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        i
    }

    fn headers(pairs: &[(&str, &str)], body: &str) -> Headers {
        let e = build_ok(pairs)
            .intercept(Event::new(body.to_string()))
            .unwrap();
        assert_eq!(e.body, body.as_bytes(), "the body is never changed");
        e.headers
    }

    fn local_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        Local
            .with_ymd_and_hms(y, mo, d, h, mi, s)
            .earliest()
            .unwrap()
            .timestamp_millis()
    }

    fn utc_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .timestamp_millis()
    }

    fn millis(pattern: &str, text: &str) -> Option<i64> {
        JodaPattern::new(pattern).unwrap().parse_millis(text)
    }

    #[test]
    fn flume_user_guide_example() {
        let pairs = [
            ("regex", r"(\d):(\d):(\d)"),
            ("serializers", "s1 s2 s3"),
            ("serializers.s1.name", "one"),
            ("serializers.s2.name", "two"),
            ("serializers.s3.name", "three"),
        ];
        let h = headers(&pairs, "1:2:3.4foobar5");
        assert_eq!(
            h,
            Headers::from_iter([("one", "1"), ("two", "2"), ("three", "3")])
        );
    }

    #[test]
    fn defaults_are_pass_through() {
        let d = RegexExtractorSerializerConfig::default();
        assert_eq!(
            (d.kind.as_str(), d.name, d.pattern),
            ("DEFAULT", None, None)
        );
        assert_eq!(RegexExtractorInterceptorConfig::default().regex, None);
        let pairs = [
            ("regex", "id=(\\w+)"),
            ("serializers", "a"),
            ("serializers.a.type", "default"),
            ("serializers.a.name", "id"),
        ];
        assert_eq!(headers(&pairs, "x id=42 y").get("id"), Some("42"));
        let pairs = [
            ("regex", "id=(\\w+)"),
            ("serializers", "a"),
            ("serializers.a.type", PASS_THROUGH_SERIALIZER),
            ("serializers.a.name", "id"),
        ];
        assert_eq!(headers(&pairs, "id=7").get("id"), Some("7"));
    }

    #[test]
    fn find_is_unanchored_and_used_once() {
        let pairs = [
            ("regex", "n=(\\d)"),
            ("serializers", "s"),
            ("serializers.s.name", "n"),
        ];
        // The first match wins.
        assert_eq!(headers(&pairs, "a n=1 b n=2").get("n"), Some("1"));
        assert!(headers(&pairs, "no number").is_empty());
    }

    #[test]
    fn extra_groups_and_extra_serializers_are_ignored() {
        let pairs = [
            ("regex", "(a)(b)(c)"),
            ("serializers", "s1"),
            ("serializers.s1.name", "x"),
        ];
        assert_eq!(headers(&pairs, "abc"), Headers::from_iter([("x", "a")]));
        let pairs = [
            ("regex", "(a)"),
            ("serializers", "s1 s2"),
            ("serializers.s1.name", "x"),
            ("serializers.s2.name", "y"),
        ];
        assert_eq!(headers(&pairs, "abc"), Headers::from_iter([("x", "a")]));
    }

    #[test]
    fn non_participating_group_leaves_header_unset_and_existing_headers_are_overwritten() {
        let pairs = [
            ("regex", "(a)|(b)"),
            ("serializers", "s1 s2"),
            ("serializers.s1.name", "x"),
            ("serializers.s2.name", "y"),
        ];
        let i = build_ok(&pairs);
        let ev = Event::with_headers(Headers::from_iter([("y", "old"), ("x", "old")]), "b");
        let e = i.intercept(ev).unwrap();
        assert_eq!(e.headers, Headers::from_iter([("x", "old"), ("y", "b")]));
    }

    #[test]
    fn millis_serializer_with_joda_pattern_in_local_time() {
        let pairs = [
            ("regex", r"^(\d\d\d\d-\d\d-\d\d \d\d:\d\d)"),
            ("serializers", "ts"),
            ("serializers.ts.type", MILLIS_SERIALIZER),
            ("serializers.ts.name", "timestamp"),
            ("serializers.ts.pattern", "yyyy-MM-dd HH:mm"),
        ];
        let h = headers(&pairs, "2024-03-05 14:07 disk full");
        let expected = local_ms(2024, 3, 5, 14, 7, 0).to_string();
        assert_eq!(h.get("timestamp"), Some(expected.as_str()));
    }

    #[test]
    fn joda_pattern_with_quoted_literal_millis_and_offset() {
        let p = "yyyy-MM-dd'T'HH:mm:ss.SSSZ";
        let base = utc_ms(2024, 3, 5, 13, 7, 8) + 123;
        assert_eq!(millis(p, "2024-03-05T14:07:08.123+0100"), Some(base));
        assert_eq!(millis(p, "2024-03-05T14:07:08.123+01:00"), Some(base));
        assert_eq!(millis(p, "2024-03-05T13:07:08.123Z"), Some(base));
        assert_eq!(millis(p, "2024-03-05T08:07:08.123-0500"), Some(base));
        // Everything must be consumed and every field must fit.
        assert_eq!(millis(p, "2024-03-05T14:07:08.123+0100 trailing"), None);
        assert_eq!(millis(p, "2024-03-05 14:07:08.123+0100"), None);
        assert_eq!(millis(p, "2024-02-30T14:07:08.123+0100"), None);
    }

    #[test]
    fn joda_pattern_variants() {
        assert_eq!(
            millis("yyyy-MM-dd", "2024-03-05"),
            Some(local_ms(2024, 3, 5, 0, 0, 0))
        );
        assert_eq!(
            millis("HH:mm", "14:07"),
            Some(local_ms(1970, 1, 1, 14, 7, 0))
        );
        assert_eq!(
            millis("dd/MMM/yyyy:HH:mm:ss Z", "05/Mar/2024:14:07:08 +0100"),
            Some(utc_ms(2024, 3, 5, 13, 7, 8))
        );
        assert_eq!(
            millis("yyyyMMddHHmmss", "20240305140708"),
            Some(local_ms(2024, 3, 5, 14, 7, 8))
        );
        assert_eq!(
            millis("h:mm a", "2:07 PM"),
            Some(local_ms(1970, 1, 1, 14, 7, 0))
        );
        assert_eq!(
            millis("h:mm a", "12:07 am"),
            Some(local_ms(1970, 1, 1, 0, 7, 0))
        );
        assert_eq!(
            millis("EEE, dd MMMM yyyy", "Tue, 05 March 2024"),
            Some(local_ms(2024, 3, 5, 0, 0, 0))
        );
        assert_eq!(
            millis("''yyyy''", "'2024'"),
            Some(local_ms(2024, 1, 1, 0, 0, 0))
        );
        assert_eq!(
            millis("'at' HH'h'", "at 07h"),
            Some(local_ms(1970, 1, 1, 7, 0, 0))
        );
        // `yy` uses Joda's pivot: within 50 years around (this year - 30).
        let pivot = Local::now().year() - 30;
        let y24 = millis("yy-MM-dd", "24-01-02").unwrap();
        let expected_year = if (pivot - 50..pivot + 50).contains(&2024) {
            2024
        } else {
            2124
        };
        assert_eq!(y24, local_ms(expected_year, 1, 2, 0, 0, 0));
        assert_eq!(millis("yyyy-MM-dd", "not a date"), None);
    }

    #[test]
    fn unparsable_value_leaves_header_unset() {
        let pairs = [
            ("regex", r"^(\S+) (\S+)"),
            ("serializers", "t w"),
            ("serializers.t.type", MILLIS_SERIALIZER),
            ("serializers.t.name", "timestamp"),
            ("serializers.t.pattern", "yyyy-MM-dd"),
            ("serializers.w.name", "word"),
        ];
        let h = headers(&pairs, "yesterday hello");
        assert_eq!(h, Headers::from_iter([("word", "hello")]));
    }

    #[test]
    fn bad_joda_patterns() {
        assert_eq!(
            JodaPattern::new("yyyy-QQ").unwrap_err(),
            "unsupported pattern letters `QQ`"
        );
        assert_eq!(JodaPattern::new("yyyy 'T").unwrap_err(), "unclosed quote");
        assert_eq!(
            JodaPattern::new("ZZZ").unwrap_err(),
            "unsupported pattern letters `ZZZ`"
        );
    }

    #[test]
    fn missing_required_properties() {
        let msgs = error_messages(build(&test_props(&[])));
        assert_eq!(
            msgs,
            [
                "missing required property `regex`",
                "missing required property `serializers`"
            ]
        );
        let msgs = error_messages(build(&test_props(&[("regex", ""), ("serializers", " ")])));
        assert_eq!(
            msgs,
            [
                "`regex` may not be empty",
                "`serializers` may not be empty: name one serializer per capture group"
            ]
        );
        let msgs = error_messages(build(&test_props(&[
            ("regex", "(a)"),
            ("serializers", "s1"),
        ])));
        assert_eq!(msgs, ["missing required property `serializers.s1.name`"]);
    }

    #[test]
    fn bad_serializer_config() {
        let r = build(&test_props(&[
            ("regex", "(a"),
            ("serializers", "s1 s2 s3"),
            ("serializers.s1.name", "x"),
            ("serializers.s1.type", "org.example.Nope"),
            ("serializers.s2.name", "y"),
            ("serializers.s2.type", MILLIS_SERIALIZER),
            ("serializers.s3.name", "z"),
            ("serializers.s3.type", MILLIS_SERIALIZER),
            ("serializers.s3.pattern", "yyyy-qq"),
        ]));
        let diags = r.err().unwrap();
        let msgs: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert!(msgs[0].starts_with("invalid regex `(a`"), "{msgs:?}");
        assert_eq!(
            msgs[1],
            format!(
                "unknown serializer type `org.example.Nope`; expected `DEFAULT`, \
                 `{PASS_THROUGH_SERIALIZER}` or `{MILLIS_SERIALIZER}`"
            )
        );
        assert_eq!(
            diags[1].key.as_deref(),
            Some("a1.sources.r1.interceptors.i1.serializers.s1.type")
        );
        assert_eq!(
            msgs[2],
            "missing required property `serializers.s2.pattern`"
        );
        assert_eq!(
            msgs[3],
            "invalid date pattern `yyyy-qq`: unsupported pattern letters `qq`"
        );
        assert_eq!(
            diags[3].key.as_deref(),
            Some("a1.sources.r1.interceptors.i1.serializers.s3.pattern")
        );
    }

    #[test]
    fn warnings_for_ignored_keys() {
        let (_, warnings) = build(&test_props(&[
            ("regex", "(a)"),
            ("serializers", "s1"),
            ("serializers.s1.name", "x"),
            ("serializers.s1.pattern", "yyyy"),
            ("serializers.s1.nmae", "typo"),
            ("serializers.s9.name", "unlisted"),
        ]))
        .unwrap();
        let msgs: Vec<&str> = warnings.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            [
                "unknown property `serializers.s1.nmae`",
                "`pattern` is used only by the millis serializer; ignored",
                "serializer `s9` is not listed in `serializers`; its properties are ignored"
            ]
        );
    }
}
