//! Flume's two blob handlers: the whole request body becomes one event.
//!
//! - `org.apache.flume.sink.solr.morphline.BlobHandler` (the one Flume's user guide lists):
//!   headers are the request's `Content-Type` (header `Content-Type`) and its query
//!   parameters; a body longer than `handler.maxBlobLength` (default 100000000 bytes) is cut
//!   to that length, as Flume does (logged at WARN, at most once per 10 s).
//! - `org.apache.flume.source.http.BLOBHandler`: headers are the query parameters; every name
//!   in `handler.mandatoryParameters` (comma-separated) must be present, else HTTP 400.
//!
//! Query parameters are `application/x-www-form-urlencoded` (`+` is a space, `%XX` escapes,
//! UTF-8); the first value of a repeated name wins, as `ServletRequest.getParameter` does.
//! Form bodies are not parsed into parameters (Jetty would, and then hand the handler an
//! empty body).
//!
//! Invariants: never panics on any input; the body is never copied (`Bytes` slicing).

use bytes::Bytes;
use flumen_core::{Event, Headers};

/// The header the morphline `BlobHandler` stores the request's content type in (Tika's
/// `Metadata.CONTENT_TYPE`).
pub const CONTENT_TYPE_HEADER: &str = "Content-Type";

/// Decodes a query string into (name, value) pairs in order.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding; invalid escapes stay as written and invalid
/// UTF-8 becomes U+FFFD.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Headers from query parameters: the first value of each name.
fn parameter_headers(query: Option<&str>) -> Headers {
    let mut h = Headers::new();
    for (k, v) in query_pairs(query.unwrap_or("")) {
        if !h.contains_key(&k) {
            h.insert(k, v);
        }
    }
    h
}

/// The morphline `BlobHandler`: one event with the body cut to `max_blob_length`; returns
/// whether it was cut.
pub fn morphline_blob(
    body: Bytes,
    content_type: Option<&str>,
    query: Option<&str>,
    max_blob_length: usize,
) -> (Event, bool) {
    let mut headers = parameter_headers(query);
    if let Some(ct) = content_type {
        headers.insert(CONTENT_TYPE_HEADER, ct);
    }
    let cut = body.len() > max_blob_length;
    let body = if cut {
        body.slice(..max_blob_length)
    } else {
        body
    };
    (Event::with_headers(headers, body), cut)
}

/// The core `BLOBHandler`: one event, query parameters as headers.
///
/// # Errors
/// The message for a missing mandatory parameter (HTTP 400).
pub fn core_blob(body: Bytes, query: Option<&str>, mandatory: &[String]) -> Result<Event, String> {
    let headers = parameter_headers(query);
    if let Some(missing) = mandatory.iter().find(|m| !headers.contains_key(m)) {
        return Err(format!(
            "Please specify {missing} parameter in the request."
        ));
    }
    Ok(Event::with_headers(headers, body))
}

/// `handler.mandatoryParameters`: comma-separated names, blanks dropped (Flume's default `""`
/// would otherwise require a parameter with an empty name and refuse every request).
pub fn mandatory_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn flume_csv_and_tab_vectors() {
        // TestBLOBHandler.testCSVData / testTabData.
        let e = core_blob(
            Bytes::from_static(b"a,b,c"),
            Some("param1=value1&param2=value2"),
            &mandatory_list("param1,param2"),
        )
        .unwrap();
        assert_eq!(&e.body[..], b"a,b,c");
        assert_eq!(e.headers.get("param1"), Some("value1"));
        assert_eq!(e.headers.get("param2"), Some("value2"));
        let e = core_blob(Bytes::from_static(b"a\tb\tc"), Some("param1=value1"), &[]).unwrap();
        assert_eq!(&e.body[..], b"a\tb\tc");
        // testMissingParameters.
        let err = core_blob(Bytes::new(), None, &mandatory_list("param1")).unwrap_err();
        assert_eq!(err, "Please specify param1 parameter in the request.");
        assert!(mandatory_list("").is_empty());
    }

    #[test]
    fn morphline_headers_and_truncation() {
        let (e, cut) = morphline_blob(
            Bytes::from_static(b"0123456789"),
            Some("application/octet-stream"),
            Some("resourceName=a+b%2Fc.avro&x=1&x=2&bad=%zz&%E2%9C%93"),
            4,
        );
        assert!(cut);
        assert_eq!(&e.body[..], b"0123");
        assert_eq!(
            e.headers.get("Content-Type"),
            Some("application/octet-stream")
        );
        assert_eq!(e.headers.get("resourceName"), Some("a b/c.avro"));
        assert_eq!(e.headers.get("x"), Some("1"));
        assert_eq!(e.headers.get("bad"), Some("%zz"));
        assert_eq!(e.headers.get("✓"), Some(""));
        let (e, cut) = morphline_blob(Bytes::from_static(b"ab"), None, None, 2);
        assert!(!cut && e.headers.is_empty() && &e.body[..] == b"ab");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%41"), "aA");
    }

    proptest! {
        #[test]
        fn query_decoding_never_panics(q in "\\PC{0,40}|[%=&+a-f0-9]{0,40}") {
            let _ = query_pairs(&q);
        }
    }
}
