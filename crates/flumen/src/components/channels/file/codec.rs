//! Event ↔ WAL payload encoding. The WAL stores opaque bytes; this is the only place that knows
//! how an event is laid out in them.
//!
//! ```text
//! payload := version u8 (= 1) | header_count u32le | (key_len u32le | key | value_len u32le | value)*
//!            | body (the rest of the payload)
//! ```
//!
//! Frozen with the WAL format: a change needs a new version byte and a decoder for the old one.

use bytes::Bytes;
use flumen_core::{Event, Headers};

const VERSION: u8 = 1;

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt event payload: {0}")]
pub struct DecodeError(&'static str);

/// Appends `event`'s encoding to `out`.
pub fn encode(event: &Event) -> Vec<u8> {
    let headers_len: usize = event
        .headers
        .iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum();
    let mut out = Vec::with_capacity(5 + headers_len + event.body.len());
    out.push(VERSION);
    out.extend_from_slice(&(event.headers.len() as u32).to_le_bytes());
    for (k, v) in event.headers.iter() {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(&event.body);
    out
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(DecodeError("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.u32()? as usize;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError("header is not UTF-8"))
    }
}

/// Decodes a payload written by [`encode`]. The body shares the payload's allocation.
///
/// # Errors
/// A payload that is not a version-1 encoding (truncated, bad lengths, non-UTF-8 header).
pub fn decode(payload: Vec<u8>) -> Result<Event, DecodeError> {
    let mut c = Cursor {
        buf: &payload,
        pos: 0,
    };
    let version = c.bytes(1)?[0];
    if version != VERSION {
        return Err(DecodeError("unknown version"));
    }
    let count = c.u32()? as usize;
    // Each header takes at least 8 bytes: a count beyond that is corrupt, not a reason to
    // allocate.
    if count > payload.len() / 8 {
        return Err(DecodeError("header count larger than the payload"));
    }
    let mut headers = Headers::new();
    for _ in 0..count {
        let k = c.string()?;
        let v = c.string()?;
        headers.insert(k, v);
    }
    let start = c.pos;
    let body = Bytes::from(payload).slice(start..);
    Ok(Event::with_headers(headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_with_and_without_headers() {
        let e = Event::with_headers(
            Headers::from_iter([("a", "1"), ("host", "h")]),
            "body bytes",
        );
        assert_eq!(decode(encode(&e)).unwrap(), e);
        let e = Event::new(Bytes::new());
        assert_eq!(decode(encode(&e)).unwrap(), e);
    }

    #[test]
    fn corrupt_payloads_are_errors() {
        assert_eq!(decode(vec![]).unwrap_err(), DecodeError("truncated"));
        assert_eq!(decode(vec![9]).unwrap_err(), DecodeError("unknown version"));
        assert_eq!(
            decode(vec![1, 255, 255, 255, 255]).unwrap_err(),
            DecodeError("header count larger than the payload")
        );
        let mut p = encode(&Event::with_headers(Headers::from_iter([("k", "v")]), "x"));
        p[5] = 200; // key length past the end
        assert_eq!(decode(p).unwrap_err(), DecodeError("truncated"));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(bytes);
        }

        #[test]
        fn round_trip(headers in proptest::collection::btree_map(".{0,8}", ".{0,8}", 0..4), body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let e = Event::with_headers(headers.into_iter().collect(), body);
            prop_assert_eq!(decode(encode(&e)).unwrap(), e);
        }
    }
}
