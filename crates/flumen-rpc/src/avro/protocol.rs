//! Flume's `AvroSourceProtocol` on the wire: Avro binary encoding of the call metadata, the
//! message name, `AvroFlumeEvent {headers: map<string>, body: bytes}`, the `Status` enum and
//! error responses (see `flume-rpc.md` A.3, A.5).
//!
//! Invariants: the reader never panics and never allocates more than the input could hold
//! (every collection count is checked against the bytes remaining, every length against the
//! input); bodies are zero-copy slices of the received payload.

use bytes::{BufMut, Bytes, BytesMut};
use flumen_core::{Event, Headers};

/// Flume's Avro `Status` enum (index order is the wire value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Events committed.
    Ok = 0,
    /// Events refused (channel full...).
    Failed = 1,
    /// Never sent by Flume's source.
    Unknown = 2,
}

impl Status {
    fn from_index(i: i64) -> Option<Self> {
        match i {
            0 => Some(Self::Ok),
            1 => Some(Self::Failed),
            2 => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// A malformed Avro message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad Avro data: {0}")]
pub struct DecodeError(pub String);

fn bad<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

/// A cursor over an Avro binary payload.
#[derive(Debug)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    /// Reads `buf` from its start.
    pub fn new(buf: Bytes) -> Self {
        Self { buf, pos: 0 }
    }
    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Reads one raw byte.
    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError("truncated".into()))?;
        self.pos += 1;
        Ok(b)
    }
    /// Reads `n` raw bytes (zero-copy).
    pub fn raw(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if n > self.remaining() {
            return bad(format!(
                "length {n} exceeds the {} bytes left",
                self.remaining()
            ));
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }
    /// Reads a zig-zag varint `long`.
    pub fn long(&mut self) -> Result<i64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return bad("varint overflow");
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
            }
        }
        bad("varint too long")
    }
    /// Reads a length, checked against the bytes left.
    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.long()?;
        if n < 0 || n as u64 > self.remaining() as u64 {
            return bad(format!("length {n} with {} bytes left", self.remaining()));
        }
        Ok(n as usize)
    }
    /// Reads `bytes`.
    pub fn bytes(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.len()?;
        self.raw(n)
    }
    /// Reads a UTF-8 `string`.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).or_else(|_| bad("string is not UTF-8"))
    }
    /// Reads a `boolean`.
    pub fn boolean(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => bad(format!("boolean byte {b}")),
        }
    }
    /// Reads a union branch index below `branches`.
    pub fn union(&mut self, branches: i64) -> Result<i64, DecodeError> {
        let i = self.long()?;
        if !(0..branches).contains(&i) {
            return bad(format!("union branch {i}"));
        }
        Ok(i)
    }
    /// Reads the count of the next collection block (0 = end); a negative count is followed
    /// by the block's byte size, which is skipped. `min_item` bounds the count by what the
    /// bytes left can hold.
    fn block(&mut self, min_item: usize) -> Result<usize, DecodeError> {
        let n = self.long()?;
        let n = if n < 0 {
            let _size = self.long()?;
            n.checked_neg()
                .ok_or(DecodeError("bad block count".into()))?
        } else {
            n
        };
        if n as u64 > (self.remaining() / min_item.max(1)) as u64 {
            return bad(format!(
                "block of {n} items with {} bytes left",
                self.remaining()
            ));
        }
        Ok(n as usize)
    }
    /// Reads a `map<string>` into headers.
    pub fn string_map(&mut self) -> Result<Headers, DecodeError> {
        let mut h = Headers::new();
        loop {
            let n = self.block(2)?;
            if n == 0 {
                return Ok(h);
            }
            for _ in 0..n {
                let k = self.string()?;
                let v = self.string()?;
                h.insert(k, v);
            }
        }
    }
    /// Reads and discards a `map<bytes>` (call and handshake metadata).
    pub fn bytes_map(&mut self) -> Result<Vec<(String, Bytes)>, DecodeError> {
        let mut out = Vec::new();
        loop {
            let n = self.block(2)?;
            if n == 0 {
                return Ok(out);
            }
            for _ in 0..n {
                let k = self.string()?;
                let v = self.bytes()?;
                out.push((k, v));
            }
        }
    }
    /// Reads one `AvroFlumeEvent`.
    pub fn event(&mut self) -> Result<Event, DecodeError> {
        let headers = self.string_map()?;
        let body = self.bytes()?;
        Ok(Event { headers, body })
    }
    /// Reads an `array<AvroFlumeEvent>`.
    pub fn events(&mut self) -> Result<Vec<Event>, DecodeError> {
        let mut out = Vec::new();
        loop {
            let n = self.block(2)?;
            if n == 0 {
                return Ok(out);
            }
            out.reserve(n);
            for _ in 0..n {
                out.push(self.event()?);
            }
        }
    }
}

/// Writes a zig-zag varint `long`.
pub fn put_long(out: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    out.put_u8(z as u8);
}

/// Writes `bytes` / `string`.
pub fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.put_slice(b);
}

/// Writes one `AvroFlumeEvent`.
pub fn put_event(out: &mut BytesMut, e: &Event) {
    if !e.headers.is_empty() {
        put_long(out, e.headers.len() as i64);
        for (k, v) in e.headers.iter() {
            put_bytes(out, k.as_bytes());
            put_bytes(out, v.as_bytes());
        }
    }
    put_long(out, 0);
    put_bytes(out, &e.body);
}

/// The encoded size of an event, to reserve once per batch.
fn event_size(e: &Event) -> usize {
    let h: usize = e.headers.iter().map(|(k, v)| k.len() + v.len() + 20).sum();
    h + e.body.len() + 20
}

/// A call of the protocol, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `append(event)`.
    Append(Event),
    /// `appendBatch(events)`.
    AppendBatch(Vec<Event>),
    /// The handshake ping: empty message name, no parameters.
    Ping,
}

/// Message name on the wire for `append`.
pub const APPEND: &str = "append";
/// Message name on the wire for `appendBatch`.
pub const APPEND_BATCH: &str = "appendBatch";

/// Reads call metadata, the message name and its parameters. An unknown message name is
/// `Ok(Err(name))`, answered with an error response.
///
/// # Errors
/// Malformed data.
pub fn read_call(r: &mut Reader) -> Result<Result<Call, String>, DecodeError> {
    r.bytes_map()?;
    let name = r.string()?;
    let call = match name.as_str() {
        "" => Call::Ping,
        APPEND => Call::Append(r.event()?),
        APPEND_BATCH => Call::AppendBatch(r.events()?),
        _ => return Ok(Err(name)),
    };
    Ok(Ok(call))
}

/// Writes call metadata `{}`, the message name and the parameters of an `appendBatch` (or of
/// an `append` when `batch` is false and there is exactly one event).
pub fn put_call(out: &mut BytesMut, events: &[Event], batch: bool) {
    out.reserve(events.iter().map(event_size).sum::<usize>() + 32);
    put_long(out, 0);
    if !batch && events.len() == 1 {
        put_bytes(out, APPEND.as_bytes());
        put_event(out, &events[0]);
        return;
    }
    put_bytes(out, APPEND_BATCH.as_bytes());
    if !events.is_empty() {
        put_long(out, events.len() as i64);
        for e in events {
            put_event(out, e);
        }
    }
    put_long(out, 0);
}

/// Writes a response body: metadata `{}`, then the status or the error text.
pub fn put_result(out: &mut BytesMut, result: &Result<Status, String>) {
    put_long(out, 0);
    match result {
        Ok(s) => {
            out.put_u8(0);
            put_long(out, *s as i64);
        }
        Err(msg) => {
            out.put_u8(1);
            put_long(out, 0); // union {string}: branch 0
            put_bytes(out, msg.as_bytes());
        }
    }
}

/// Reads a response body (after the handshake part): the status, or the remote error text.
///
/// # Errors
/// Malformed data.
pub fn read_result(r: &mut Reader) -> Result<Result<Status, String>, DecodeError> {
    r.bytes_map()?;
    if r.boolean()? {
        // Declared errors are `union {string}`; system errors use the same form.
        r.union(1)?;
        return Ok(Err(r.string()?));
    }
    let i = r.long()?;
    Status::from_index(i)
        .map(Ok)
        .ok_or(DecodeError(format!("status index {i}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(h: &[(&str, &str)], body: &'static [u8]) -> Event {
        Event::with_headers(h.iter().copied().collect(), Bytes::from_static(body))
    }

    #[test]
    fn varints() {
        for v in [0i64, 1, -1, 63, -64, 64, 300, i64::MAX, i64::MIN] {
            let mut b = BytesMut::new();
            put_long(&mut b, v);
            assert_eq!(Reader::new(b.freeze()).long().unwrap(), v);
        }
        let mut b = BytesMut::new();
        put_long(&mut b, 11);
        assert_eq!(&b[..], &[0x16]);
    }

    #[test]
    fn golden_append_batch_params() {
        // From the captured Flume 1.11 request (flume-rpc.md A.5).
        let events = vec![
            ev(&[("host", "cli"), ("hk1", "hv1")], b"x1"),
            ev(&[("host", "cli"), ("hk1", "hv1")], b"x2"),
        ];
        let mut b = BytesMut::new();
        put_call(&mut b, &events, true);
        let mut expected = vec![0u8, 0x16];
        expected.extend(b"appendBatch");
        expected.push(0x04);
        for body in [b"x1", b"x2"] {
            // Headers are written in key order; Flume's HashMap order differs, both legal.
            expected.extend([0x04, 0x06]);
            expected.extend(b"hk1");
            expected.push(0x06);
            expected.extend(b"hv1");
            expected.push(0x08);
            expected.extend(b"host");
            expected.push(0x06);
            expected.extend(b"cli");
            expected.extend([0x00, 0x04]);
            expected.extend(body);
        }
        expected.push(0);
        assert_eq!(&b[..], &expected[..]);
        let got = read_call(&mut Reader::new(b.freeze())).unwrap().unwrap();
        assert_eq!(got, Call::AppendBatch(events));
    }

    #[test]
    fn append_and_results_round_trip() {
        let e = ev(&[("k", "välue ✓")], b"body");
        let mut b = BytesMut::new();
        put_call(&mut b, std::slice::from_ref(&e), false);
        assert_eq!(
            read_call(&mut Reader::new(b.freeze())).unwrap().unwrap(),
            Call::Append(e)
        );
        for r in [Ok(Status::Ok), Ok(Status::Failed), Err("boom".to_string())] {
            let mut b = BytesMut::new();
            put_result(&mut b, &r);
            assert_eq!(read_result(&mut Reader::new(b.freeze())).unwrap(), r);
        }
        let mut b = BytesMut::new();
        put_result(&mut b, &Ok(Status::Failed));
        assert_eq!(&b[..], &[0, 0, 2]);
    }

    #[test]
    fn negative_block_counts_are_accepted() {
        // headers map as one block of -1 items with a byte size, then end.
        let mut b = BytesMut::new();
        put_long(&mut b, -1);
        put_long(&mut b, 4);
        put_bytes(&mut b, b"a");
        put_bytes(&mut b, b"b");
        put_long(&mut b, 0);
        put_bytes(&mut b, b"z");
        let e = Reader::new(b.freeze()).event().unwrap();
        assert_eq!(e.headers.get("a"), Some("b"));
    }

    #[test]
    fn garbage_is_an_error() {
        let mut b = BytesMut::new();
        put_long(&mut b, 0);
        put_bytes(&mut b, b"appendBatch");
        put_long(&mut b, 1_000_000_000); // claims a billion events
        assert!(read_call(&mut Reader::new(b.freeze())).is_err());
        assert!(Reader::new(Bytes::from_static(&[0xff; 11])).long().is_err());
        assert!(
            Reader::new(Bytes::from_static(&[0x02, 0xff]))
                .string()
                .is_err()
        );
        let mut b = BytesMut::new();
        put_long(&mut b, 0);
        put_bytes(&mut b, b"nope");
        assert_eq!(
            read_call(&mut Reader::new(b.freeze())).unwrap(),
            Err("nope".to_string())
        );
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let b = Bytes::from(data);
            let _ = read_call(&mut Reader::new(b.clone()));
            let _ = read_result(&mut Reader::new(b));
        }
    }
}
