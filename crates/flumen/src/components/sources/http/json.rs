//! Flume's `JSONHandler`: a request body holding a JSON array of
//! `{"headers": {"k": "v"}, "body": "text"}` objects becomes one event per element; flumen
//! also reads newline-delimited JSON (one such object per line).
//!
//! Charsets, as Flume: the request text is decoded with the `charset` of its `Content-Type`
//! (UTF-8 when absent; `UTF-8`, `UTF-16` and `UTF-32` accepted, any case), and every body
//! string is encoded back into that charset the way Java's `String.getBytes` does — UTF-16
//! bodies start with the big-endian byte-order mark `FE FF`, UTF-32 bodies are big-endian
//! without one. Header keys and values are strings whatever the charset.
//!
//! Leniency, as Gson reading Flume's `JSONEvent`: a missing or `null` body is an empty body, a
//! missing or `null` `headers` is no headers, numbers and booleans given as a body or a header
//! value are taken as their JSON text, members other than `headers` and `body` are ignored.
//! Everything else (a body that is an object, a header value that is an array, broken syntax)
//! is an error naming the element: `element 3: body is not a string (found an object) at line
//! 1 column 57`. Elements are counted from 0, as `jq '.[3]'` does; ndjson errors name the line
//! (from 1).
//!
//! Invariants: never panics on any input; stops as soon as more than `max_events` events are
//! read (memory stays proportional to what the channel could accept, not to the request).

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use bytes::Bytes;
use flumen_core::{Event, Headers};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The request charsets the JSON handler accepts (Flume's three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// UTF-8, the default.
    Utf8,
    /// UTF-16: read with a byte-order mark, else big-endian; bodies written big-endian with
    /// the mark, as Java does.
    Utf16,
    /// UTF-32: read with a byte-order mark, else big-endian; bodies written big-endian.
    Utf32,
}

/// Why a request body is not a batch of events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Malformed input: the message says what and where (HTTP 400).
    Malformed(String),
    /// The `charset` of the request is not one the handler reads (HTTP 400 too; Flume answers
    /// 500 because its handler throws `UnsupportedCharsetException`).
    Charset(String),
    /// More events than `max_events` (HTTP 413).
    TooManyEvents(usize),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Malformed(m) => f.write_str(m),
            JsonError::Charset(c) => write!(
                f,
                "unsupported charset `{c}`: the JSON handler reads UTF-8, UTF-16 and UTF-32"
            ),
            JsonError::TooManyEvents(n) => write!(
                f,
                "the request holds more than {n} events, the most one channel transaction takes \
                 (transactionCapacity); send smaller batches"
            ),
        }
    }
}

/// The `charset` parameter of a `Content-Type` value, if any (quotes removed).
pub fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"'))
    })
}

/// The charset of a request from its `Content-Type` (UTF-8 without one).
///
/// # Errors
/// [`JsonError::Charset`] for any charset but UTF-8, UTF-16 and UTF-32.
pub fn charset_of(content_type: Option<&str>) -> Result<Charset, JsonError> {
    match content_type.and_then(charset_param) {
        None => Ok(Charset::Utf8),
        Some(c) if c.eq_ignore_ascii_case("utf-8") || c.eq_ignore_ascii_case("utf8") => {
            Ok(Charset::Utf8)
        }
        Some(c) if c.eq_ignore_ascii_case("utf-16") => Ok(Charset::Utf16),
        Some(c) if c.eq_ignore_ascii_case("utf-32") => Ok(Charset::Utf32),
        Some(c) => Err(JsonError::Charset(c.chars().take(64).collect())),
    }
}

/// Decodes request bytes into text. UTF-8 may start with a byte-order mark (dropped); UTF-16
/// and UTF-32 honour a byte-order mark and default to big-endian, as Java's decoders do.
///
/// # Errors
/// Bytes that are not valid in `charset`, with the byte offset.
pub fn decode(bytes: &[u8], charset: Charset) -> Result<Cow<'_, str>, JsonError> {
    let bad = |at: usize| {
        JsonError::Malformed(format!(
            "the request body is not valid {} (at byte {at})",
            match charset {
                Charset::Utf8 => "UTF-8",
                Charset::Utf16 => "UTF-16",
                Charset::Utf32 => "UTF-32",
            }
        ))
    };
    match charset {
        Charset::Utf8 => {
            let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            std::str::from_utf8(b)
                .map(Cow::Borrowed)
                .map_err(|e| bad(e.valid_up_to() + bytes.len() - b.len()))
        }
        Charset::Utf16 => {
            let (le, start) = match bytes {
                [0xFF, 0xFE, ..] => (true, 2),
                [0xFE, 0xFF, ..] => (false, 2),
                _ => (false, 0),
            };
            let body = &bytes[start..];
            if !body.len().is_multiple_of(2) {
                return Err(bad(bytes.len() - 1));
            }
            let units = body.chunks_exact(2).map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            });
            let mut out = String::with_capacity(body.len() / 2);
            for (i, r) in char::decode_utf16(units).enumerate() {
                match r {
                    Ok(c) => out.push(c),
                    Err(_) => return Err(bad(start + 2 * i)),
                }
            }
            Ok(Cow::Owned(out))
        }
        Charset::Utf32 => {
            let (le, start) = match bytes {
                [0xFF, 0xFE, 0, 0, ..] => (true, 4),
                [0, 0, 0xFE, 0xFF, ..] => (false, 4),
                _ => (false, 0),
            };
            let body = &bytes[start..];
            if !body.len().is_multiple_of(4) {
                return Err(bad(bytes.len() - body.len() % 4));
            }
            let mut out = String::with_capacity(body.len() / 4);
            for (i, c) in body.chunks_exact(4).enumerate() {
                let b = [c[0], c[1], c[2], c[3]];
                let v = if le {
                    u32::from_le_bytes(b)
                } else {
                    u32::from_be_bytes(b)
                };
                out.push(char::from_u32(v).ok_or_else(|| bad(start + 4 * i))?);
            }
            Ok(Cow::Owned(out))
        }
    }
}

/// A body string as bytes in `charset`, as Java's `String.getBytes(charset)` writes it.
pub fn encode_body(text: &str, charset: Charset) -> Bytes {
    match charset {
        Charset::Utf8 => Bytes::copy_from_slice(text.as_bytes()),
        Charset::Utf16 => {
            let mut out = Vec::with_capacity(2 + text.len() * 2);
            // Java's "UTF-16" encoder writes a big-endian byte-order mark, even for "".
            out.extend_from_slice(&[0xFE, 0xFF]);
            for u in text.encode_utf16() {
                out.extend_from_slice(&u.to_be_bytes());
            }
            Bytes::from(out)
        }
        Charset::Utf32 => {
            let mut out = Vec::with_capacity(text.len() * 4);
            for c in text.chars() {
                out.extend_from_slice(&u32::from(c).to_be_bytes());
            }
            Bytes::from(out)
        }
    }
}

/// Parses a JSON array of events (Flume's format) from decoded request text.
///
/// # Errors
/// [`JsonError::Malformed`] naming the element and position; [`JsonError::TooManyEvents`]
/// past `max_events`.
pub fn parse_array(
    text: &str,
    charset: Charset,
    max_events: usize,
) -> Result<Vec<Event>, JsonError> {
    if text.trim().is_empty() {
        return Err(JsonError::Malformed(
            "the request body is empty; expected a JSON array of events".into(),
        ));
    }
    let state = ArrayState {
        seed: EventSeed(charset),
        max_events,
        index: Cell::new(None),
        too_many: Cell::new(false),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let result = de::Deserializer::deserialize_seq(&mut de, ArrayVisitor(&state));
    let events = match result {
        Ok(events) => events,
        Err(e) => {
            if state.too_many.get() {
                return Err(JsonError::TooManyEvents(max_events));
            }
            return Err(JsonError::Malformed(match state.index.get() {
                Some(i) => format!("element {i}: {e}"),
                None => e.to_string(),
            }));
        }
    };
    de.end()
        .map_err(|e| JsonError::Malformed(format!("after the array: {e}")))?;
    Ok(events)
}

/// Parses newline-delimited JSON: one event object per line, blank lines skipped.
///
/// # Errors
/// As [`parse_array`], naming the line (from 1).
pub fn parse_ndjson(
    text: &str,
    charset: Charset,
    max_events: usize,
) -> Result<Vec<Event>, JsonError> {
    let mut events = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if events.len() >= max_events {
            return Err(JsonError::TooManyEvents(max_events));
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let event = EventSeed(charset)
            .deserialize(&mut de)
            .and_then(|e| de.end().map(|()| e))
            .map_err(|e| JsonError::Malformed(format!("line {}: {e}", n + 1)))?;
        events.push(event);
    }
    Ok(events)
}

/// What the array visitor shares with the caller for error messages.
struct ArrayState {
    seed: EventSeed,
    max_events: usize,
    /// The element being read, for the error message.
    index: Cell<Option<usize>>,
    /// Set when the visitor stopped because of `max_events`.
    too_many: Cell<bool>,
}

struct ArrayVisitor<'s>(&'s ArrayState);

impl<'de> Visitor<'de> for ArrayVisitor<'_> {
    type Value = Vec<Event>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Event>, A::Error> {
        let state = self.0;
        // The size hint is never trusted for allocation beyond the cap.
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(state.max_events));
        loop {
            state.index.set(Some(out.len()));
            match seq.next_element_seed(state.seed)? {
                Some(e) => {
                    if out.len() >= state.max_events {
                        state.too_many.set(true);
                        return Err(de::Error::custom("too many events"));
                    }
                    out.push(e);
                }
                None => break,
            }
        }
        state.index.set(None);
        Ok(out)
    }
}

/// Reads one `{"headers": {...}, "body": "..."}` object. Bodies are copied out of the request
/// (not sliced from it): a queued event then holds its body only, which is also what the
/// memory channel's `byteCapacity` counts.
#[derive(Clone, Copy)]
struct EventSeed(Charset);

impl<'de> DeserializeSeed<'de> for EventSeed {
    type Value = Event;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Event, D::Error> {
        d.deserialize_map(EventVisitor(self.0))
    }
}

struct EventVisitor(Charset);

/// `found an object` etc., for the messages.
fn found(u: de::Unexpected<'_>) -> &'static str {
    match u {
        de::Unexpected::Map => "an object",
        de::Unexpected::Seq => "an array",
        de::Unexpected::Str(_) => "a string",
        de::Unexpected::Bool(_) => "a boolean",
        de::Unexpected::Unit => "null",
        _ => "a number",
    }
}

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object {\"headers\": {...}, \"body\": \"...\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut headers = Headers::new();
        let mut body = Bytes::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "headers" => headers = map.next_value::<HeaderMap>()?.0,
                "body" => {
                    body = match map.next_value::<Scalar<'de>>()?.0 {
                        Ok(Some(text)) => encode_body(&text, self.0),
                        Ok(None) => Bytes::new(),
                        Err(what) => {
                            return Err(de::Error::custom(format!(
                                "body is not a string (found {what})"
                            )));
                        }
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Event::with_headers(headers, body))
    }
}

/// A JSON scalar as text (strings as they are, numbers and booleans as their JSON text), or
/// `None` for `null`, or `Err(what was found)` for an object or array. Never fails by itself,
/// so the caller words the error with the field's name.
struct Scalar<'de>(Result<Option<Cow<'de, str>>, &'static str>);

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar(Ok(Some(Cow::Borrowed(v)))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar(Ok(Some(Cow::Owned(v.to_owned())))))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar(Ok(Some(Cow::Owned(v)))))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar(Ok(Some(Cow::Owned(v.to_string())))))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar(Ok(Some(Cow::Owned(v.to_string())))))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar(Ok(Some(Cow::Owned(v.to_string())))))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar(Ok(Some(Cow::Owned(v.to_string())))))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar(Ok(None)))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar(Ok(None)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Consumed, so the error is reported at the value's end by the caller's message.
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar(Err(found(de::Unexpected::Map))))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar(Err(found(de::Unexpected::Seq))))
    }
}

/// The `headers` object: string keys to scalar values; `null` means no headers.
struct HeaderMap(Headers);

impl<'de> de::Deserialize<'de> for HeaderMap {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(HeaderVisitor)
    }
}

struct HeaderVisitor;

impl<'de> Visitor<'de> for HeaderVisitor {
    type Value = HeaderMap;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("headers as an object of strings")
    }
    fn visit_unit<E>(self) -> Result<HeaderMap, E> {
        Ok(HeaderMap(Headers::new()))
    }
    fn visit_none<E>(self) -> Result<HeaderMap, E> {
        Ok(HeaderMap(Headers::new()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HeaderMap, A::Error> {
        let mut h = Headers::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match map.next_value::<Scalar<'de>>()?.0 {
                Ok(Some(v)) => {
                    h.insert(key.into_owned(), v.into_owned());
                }
                // Gson keeps a null value; a Flume header cannot be null, so it is left out.
                Ok(None) => {}
                Err(what) => {
                    return Err(de::Error::custom(format!(
                        "header `{key}` is not a string (found {what})"
                    )));
                }
            }
        }
        Ok(HeaderMap(h))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<HeaderMap, A::Error> {
        Err(de::Error::custom(
            "headers is not an object (found an array)",
        ))
    }
    fn visit_str<E: de::Error>(self, _v: &str) -> Result<HeaderMap, E> {
        Err(E::custom("headers is not an object (found a string)"))
    }
    fn visit_bool<E: de::Error>(self, _v: bool) -> Result<HeaderMap, E> {
        Err(E::custom("headers is not an object (found a boolean)"))
    }
    fn visit_i64<E: de::Error>(self, _v: i64) -> Result<HeaderMap, E> {
        Err(E::custom("headers is not an object (found a number)"))
    }
    fn visit_u64<E: de::Error>(self, _v: u64) -> Result<HeaderMap, E> {
        Err(E::custom("headers is not an object (found a number)"))
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<HeaderMap, E> {
        Err(E::custom("headers is not an object (found a number)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(json: &str) -> Vec<Event> {
        parse_array(json, Charset::Utf8, 1000).unwrap()
    }

    fn err(json: &str) -> String {
        parse_array(json, Charset::Utf8, 1000)
            .unwrap_err()
            .to_string()
    }

    fn body(e: &Event) -> &str {
        std::str::from_utf8(&e.body).unwrap()
    }

    // Flume's TestJSONHandler vectors.
    #[test]
    fn flume_multiple_events() {
        let v = parse(
            r#"[{"headers":{"a": "b"},"body": "random_body"},{"headers":{"e": "f"},"body": "random_body2"}]"#,
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].headers.get("a"), Some("b"));
        assert_eq!(body(&v[0]), "random_body");
        assert_eq!(v[1].headers.get("e"), Some("f"));
        assert_eq!(body(&v[1]), "random_body2");
    }

    #[test]
    fn flume_escaped_json_and_no_body() {
        let v =
            parse(r#"[{"headers":{"a": "b"}},{"headers":{"e": "f"},"body": "rand\"om_body2"}]"#);
        assert!(v[0].body.is_empty());
        assert_eq!(v[0].headers.get("a"), Some("b"));
        assert_eq!(body(&v[1]), "rand\"om_body2");
        let v = parse(r#"[{"headers": {"a": "b"},"body": "<html><body>test</body></html>"}]"#);
        assert_eq!(body(&v[0]), "<html><body>test</body></html>");
    }

    #[test]
    fn flume_multiple_large_events() {
        let v = parse(
            r#"[{"headers" : {"a": "b", "a2": "b2","a3": "b3","a4": "b4"},"body": "random_body"},
               {"headers" :{"e": "f","e2": "f2","e3": "f3","e4": "f4","e5": "f5"},"body": "random_body2"},
               {"headers" :{"q1": "b","q2": "b2","q3": "b3","q4": "b4"},"body": "random_bodyq"}]"#,
        );
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].headers.len(), 4);
        assert_eq!(v[1].headers.get("e5"), Some("f5"));
        assert_eq!(body(&v[2]), "random_bodyq");
    }

    #[test]
    fn flume_bad_event_is_malformed() {
        let e = parse_array(r#"{["a": "b"],"body": "random_body"}"#, Charset::Utf8, 10);
        assert!(matches!(e, Err(JsonError::Malformed(_))), "{e:?}");
    }

    #[test]
    fn flume_charsets() {
        let json = r#"[{"headers":{"a": "b"},"body": "random_body"},{"headers":{"e": "f"},"body": "random_body2"}]"#;
        // UTF-16 request text (Java writes it big-endian with a byte-order mark).
        let mut utf16 = vec![0xFE, 0xFF];
        for u in json.encode_utf16() {
            utf16.extend_from_slice(&u.to_be_bytes());
        }
        let cs = charset_of(Some("application/json; charset=UTF-16")).unwrap();
        assert_eq!(cs, Charset::Utf16);
        let v = parse_array(&decode(&utf16, cs).unwrap(), cs, 10).unwrap();
        assert_eq!(v[0].headers.get("a"), Some("b"));
        let mut expect = vec![0xFE, 0xFF];
        for u in "random_body".encode_utf16() {
            expect.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(&v[0].body[..], &expect[..]);
        // Little-endian with its mark reads too.
        let mut le = vec![0xFF, 0xFE];
        for u in json.encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(parse_array(&decode(&le, cs).unwrap(), cs, 10).unwrap(), v);
        // UTF-32, big-endian, no mark.
        let utf32: Vec<u8> = json
            .chars()
            .flat_map(|c| u32::from(c).to_be_bytes())
            .collect();
        let cs = charset_of(Some("application/json;charset=\"utf-32\"")).unwrap();
        let v = parse_array(&decode(&utf32, cs).unwrap(), cs, 10).unwrap();
        assert_eq!(v[1].headers.get("e"), Some("f"));
        assert_eq!(&v[1].body[..4], &[0, 0, 0, b'r']);
        assert_eq!(v[1].body.len(), 4 * "random_body2".len());
        // Flume's testError: ISO-8859-1 is refused.
        assert!(matches!(
            charset_of(Some("application/json; charset=ISO-8859-1")),
            Err(JsonError::Charset(_))
        ));
        assert_eq!(charset_of(None).unwrap(), Charset::Utf8);
        assert_eq!(charset_of(Some("application/json")).unwrap(), Charset::Utf8);
        // Bad bytes are located.
        assert!(
            decode(b"[\xff]", Charset::Utf8)
                .unwrap_err()
                .to_string()
                .contains("byte 1")
        );
        assert!(decode(&[0, 0x61, 0xD8], Charset::Utf16).is_err());
        assert!(decode(&[0, 0x11, 0, 0], Charset::Utf32).is_err());
    }

    #[test]
    fn non_ascii_headers_and_bodies() {
        let v = parse(r#"[{"headers":{"städt":"Zürich ✓"},"body":"日本語 \u00e9"}]"#);
        assert_eq!(v[0].headers.get("städt"), Some("Zürich ✓"));
        assert_eq!(body(&v[0]), "日本語 é");
    }

    #[test]
    fn gson_leniency() {
        let v = parse(
            r#"[{"headers":{"n":12,"t":true,"z":null},"body":3.5,"extra":[1,{"x":2}]},{"body":null,"headers":null},{}]"#,
        );
        assert_eq!(v[0].headers.get("n"), Some("12"));
        assert_eq!(v[0].headers.get("t"), Some("true"));
        assert!(!v[0].headers.contains_key("z"));
        assert_eq!(body(&v[0]), "3.5");
        assert!(v[1].body.is_empty() && v[1].headers.is_empty());
        assert_eq!(v.len(), 3);
        assert!(parse("[]").is_empty());
    }

    #[test]
    fn errors_name_the_element() {
        let e = err(r#"[{"body":"a"},{"body":"b"},{"body":"c"},{"body":{"x":1}}]"#);
        assert!(
            e.starts_with("element 3: body is not a string (found an object)"),
            "{e}"
        );
        assert!(e.contains("line 1 column"), "{e}");
        let e = err(r#"[{"body":"a"},{"headers":{"k":[1]}}]"#);
        assert!(
            e.starts_with("element 1: header `k` is not a string (found an array)"),
            "{e}"
        );
        let e = err(r#"[{"body":"a"},{"headers":"k"}]"#);
        assert!(e.starts_with("element 1: headers is not an object"), "{e}");
        let e = err(r#"[{"body":"a"}, 5]"#);
        assert!(e.starts_with("element 1: invalid type: integer"), "{e}");
        let e = err(r#"[{"body":"a"}, {"body":"b"#);
        assert!(e.starts_with("element 1: EOF while parsing"), "{e}");
        let e = err(r#"{"body":"a"}"#);
        assert!(e.contains("expected a JSON array of events"), "{e}");
        let e = err(r#"[{"body":"a"}] x"#);
        assert!(e.starts_with("after the array: trailing characters"), "{e}");
        assert!(err("").contains("empty"));
        let e = err("[[]]");
        assert!(
            e.starts_with("element 0: invalid type: sequence, expected an event object"),
            "{e}"
        );
    }

    #[test]
    fn too_many_events_stops_early() {
        let json = format!("[{}{{}}]", "{},".repeat(10));
        assert_eq!(
            parse_array(&json, Charset::Utf8, 5),
            Err(JsonError::TooManyEvents(5))
        );
        assert_eq!(parse_array(&json, Charset::Utf8, 11).unwrap().len(), 11);
        let nd = "{}\n".repeat(6);
        assert_eq!(
            parse_ndjson(&nd, Charset::Utf8, 5),
            Err(JsonError::TooManyEvents(5))
        );
    }

    #[test]
    fn ndjson_lines() {
        let v = parse_ndjson(
            "{\"headers\":{\"a\":\"1\"},\"body\":\"x\"}\n\n{\"body\":\"y\"}\r\n",
            Charset::Utf8,
            10,
        )
        .unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(body(&v[1]), "y");
        let e = parse_ndjson("{\"body\":\"x\"}\n{\"body\":[]}\n", Charset::Utf8, 10)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("line 2: body is not a string (found an array)"),
            "{e}"
        );
        let e = parse_ndjson("{\"body\":\"x\"} {}\n", Charset::Utf8, 10)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("line 1: trailing characters"), "{e}");
        assert!(parse_ndjson("", Charset::Utf8, 10).unwrap().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            for cs in [Charset::Utf8, Charset::Utf16, Charset::Utf32] {
                if let Ok(text) = decode(&data, cs) {
                    let _ = parse_array(&text, cs, 50);
                    let _ = parse_ndjson(&text, cs, 50);
                }
            }
        }

        #[test]
        fn never_panics_on_jsonish_text(text in r#"[\[\]{}",:a-z0-9 \\nbodyheaders\n]{0,200}"#) {
            let _ = parse_array(&text, Charset::Utf8, 50);
            let _ = parse_ndjson(&text, Charset::Utf8, 50);
        }

        #[test]
        fn round_trips_generated_events(
            events in proptest::collection::vec(
                (proptest::collection::btree_map("[a-zé]{1,5}", "\\PC{0,8}", 0..4), "\\PC{0,20}"),
                0..20,
            )
        ) {
            let json = serde_json::to_string(
                &events
                    .iter()
                    .map(|(h, b)| serde_json::json!({"headers": h, "body": b}))
                    .collect::<Vec<_>>(),
            )
            .unwrap();
            let parsed = parse_array(&json, Charset::Utf8, 100).unwrap();

            prop_assert_eq!(parsed.len(), events.len());
            for (p, (h, b)) in parsed.iter().zip(&events) {
                prop_assert_eq!(&p.body[..], b.as_bytes());
                let got: Vec<(&str, &str)> = p.headers.iter().collect();
                let want: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
