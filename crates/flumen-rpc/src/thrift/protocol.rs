//! Thrift `TCompactProtocol` and `TBinaryProtocol` encoding and decoding of the
//! `ThriftSourceProtocol` messages (Flume's IDL, Java namespace `org.apache.flume.thrift`):
//!
//! ```text
//! struct ThriftFlumeEvent { 1: required map<string,string> headers, 2: required binary body }
//! enum Status { OK = 0, FAILED = 1, ERROR = 2, UNKNOWN = 3 }
//! service ThriftSourceProtocol {
//!   Status append(1: ThriftFlumeEvent event),
//!   Status appendBatch(1: list<ThriftFlumeEvent> events),
//! }
//! ```
//!
//! Everything here works on one whole message (the payload of one frame, see
//! [`super::framing`]), so a decoder never waits for more bytes: running out of input inside a
//! frame is an error.
//!
//! Invariants:
//! - decoding never panics and never allocates more than the input could hold: every
//!   container size is checked against the bytes left before anything is reserved;
//! - unknown fields (any type, nested up to [`MAX_DEPTH`]) are skipped, as Thrift requires;
//! - the binary protocol is written strict (`80 01 00 <type>`) and read strict or non-strict,
//!   like Java's `TBinaryProtocol` defaults;
//! - header strings that are not valid UTF-8 are decoded lossily (Java replaces them too).

use bytes::{BufMut, Bytes, BytesMut};
use flumen_core::{Event, Headers};

/// Deepest nesting of structs/containers a skipped value may have.
pub const MAX_DEPTH: usize = 64;

/// The wire protocol inside a frame. Flume's key `protocol`: `compact` (default) or `binary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `TCompactProtocol` (Flume's default).
    #[default]
    Compact,
    /// `TBinaryProtocol`.
    Binary,
}

/// Flume's Thrift `Status` enum (four values, unlike the Avro one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Events committed to the channels.
    Ok = 0,
    /// The channels refused the events.
    Failed = 1,
    /// A server error (never sent by Flume's source).
    Error = 2,
    /// Unknown (never sent by Flume's source).
    Unknown = 3,
}

impl Status {
    /// The enum for a wire value, `None` for values the IDL does not define.
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Ok,
            1 => Self::Failed,
            2 => Self::Error,
            3 => Self::Unknown,
            _ => return None,
        })
    }
}

/// Thrift message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// A call expecting a reply.
    Call = 1,
    /// A reply carrying the result struct.
    Reply = 2,
    /// A reply carrying a `TApplicationException`.
    Exception = 3,
    /// A call expecting no reply.
    Oneway = 4,
}

impl MessageType {
    fn from_u8(v: u8) -> Result<Self, ThriftError> {
        Ok(match v {
            1 => Self::Call,
            2 => Self::Reply,
            3 => Self::Exception,
            4 => Self::Oneway,
            _ => return Err(ThriftError::Invalid(format!("unknown message type {v}"))),
        })
    }
}

/// What went wrong decoding a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThriftError {
    /// The message ended inside a value.
    #[error("thrift message truncated")]
    Truncated,
    /// The bytes are not a valid message of this protocol.
    #[error("invalid thrift message: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> ThriftError {
    ThriftError::Invalid(msg.into())
}

/// A decoded call on the `ThriftSourceProtocol` service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `append(1: ThriftFlumeEvent event)`.
    Append(Event),
    /// `appendBatch(1: list<ThriftFlumeEvent> events)`.
    AppendBatch(Vec<Event>),
    /// A method this service does not have; answered with `UNKNOWN_METHOD`.
    Unknown,
}

/// One request: the message header plus the decoded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Message name as sent (echoed in the reply).
    pub name: String,
    /// Sequence id as sent (echoed in the reply).
    pub seqid: i32,
    /// `true` for a `ONEWAY` message, which gets no reply.
    pub oneway: bool,
    /// The call.
    pub call: Call,
}

/// One reply as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Message name (should echo the request's).
    pub name: String,
    /// Sequence id (should echo the request's).
    pub seqid: i32,
    /// The returned status, or the text of a `TApplicationException` / missing result.
    pub result: Result<Status, String>,
}

/// Protocol-neutral value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TType {
    Bool,
    Byte,
    I16,
    I32,
    I64,
    Double,
    String,
    Struct,
    Map,
    Set,
    List,
    Uuid,
}

impl TType {
    fn compact(self) -> u8 {
        match self {
            TType::Bool => 1,
            TType::Byte => 3,
            TType::I16 => 4,
            TType::I32 => 5,
            TType::I64 => 6,
            TType::Double => 7,
            TType::String => 8,
            TType::List => 9,
            TType::Set => 10,
            TType::Map => 11,
            TType::Struct => 12,
            TType::Uuid => 13,
        }
    }
    fn from_compact(v: u8) -> Result<Self, ThriftError> {
        Ok(match v {
            1 | 2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::I16,
            5 => TType::I32,
            6 => TType::I64,
            7 => TType::Double,
            8 => TType::String,
            9 => TType::List,
            10 => TType::Set,
            11 => TType::Map,
            12 => TType::Struct,
            13 => TType::Uuid,
            _ => return Err(invalid(format!("unknown compact type {v}"))),
        })
    }
    fn binary(self) -> u8 {
        match self {
            TType::Bool => 2,
            TType::Byte => 3,
            TType::Double => 4,
            TType::I16 => 6,
            TType::I32 => 8,
            TType::I64 => 10,
            TType::String => 11,
            TType::Struct => 12,
            TType::Map => 13,
            TType::Set => 14,
            TType::List => 15,
            TType::Uuid => 16,
        }
    }
    fn from_binary(v: u8) -> Result<Self, ThriftError> {
        Ok(match v {
            2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::Double,
            6 => TType::I16,
            8 => TType::I32,
            10 => TType::I64,
            11 => TType::String,
            12 => TType::Struct,
            13 => TType::Map,
            14 => TType::Set,
            15 => TType::List,
            16 => TType::Uuid,
            _ => return Err(invalid(format!("unknown binary type {v}"))),
        })
    }
    /// Fewest bytes one value of this type takes on the wire (for size sanity checks).
    fn min_size(self, proto: Protocol) -> usize {
        match (proto, self) {
            (_, TType::Bool | TType::Byte | TType::Struct) => 1,
            (Protocol::Compact, TType::I16 | TType::I32 | TType::I64 | TType::String) => 1,
            (Protocol::Compact, TType::Map | TType::Set | TType::List) => 1,
            (Protocol::Binary, TType::I16) => 2,
            (Protocol::Binary, TType::I32 | TType::String) => 4,
            (Protocol::Binary, TType::I64) => 8,
            (Protocol::Binary, TType::Map) => 6,
            (Protocol::Binary, TType::Set | TType::List) => 5,
            (_, TType::Double) => 8,
            (_, TType::Uuid) => 16,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A cursor over one message with the state the compact protocol needs.
struct Reader<'a> {
    proto: Protocol,
    buf: &'a [u8],
    pos: usize,
    /// Compact: last field id of each open struct.
    last_field: Vec<i16>,
    /// Compact: the value of a bool field, carried in its field header.
    pending_bool: Option<bool>,
}

impl<'a> Reader<'a> {
    fn new(proto: Protocol, buf: &'a [u8]) -> Self {
        Self {
            proto,
            buf,
            pos: 0,
            last_field: Vec::new(),
            pending_bool: None,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ThriftError> {
        if self.remaining() < n {
            return Err(ThriftError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, ThriftError> {
        Ok(self.take(1)?[0])
    }

    fn be_i32(&mut self) -> Result<i32, ThriftError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn be_i16(&mut self) -> Result<i16, ThriftError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn varint(&mut self, max_bytes: usize) -> Result<u64, ThriftError> {
        let mut v: u64 = 0;
        for i in 0..max_bytes {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(invalid("varint too long"))
    }

    fn zigzag32(&mut self) -> Result<i32, ThriftError> {
        let v = self.varint(5)? as u32;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    fn i32(&mut self) -> Result<i32, ThriftError> {
        match self.proto {
            Protocol::Compact => self.zigzag32(),
            Protocol::Binary => self.be_i32(),
        }
    }

    /// A size prefix checked against the bytes left (each item taking at least `min` bytes).
    fn size(&mut self, raw: i64, min: usize) -> Result<usize, ThriftError> {
        if raw < 0 {
            return Err(invalid(format!("negative size {raw}")));
        }
        let n = usize::try_from(raw).map_err(|_| invalid("size too large"))?;
        if n.saturating_mul(min.max(1)) > self.remaining() {
            return Err(invalid(format!(
                "size {n} exceeds the {} bytes left in the frame",
                self.remaining()
            )));
        }
        Ok(n)
    }

    fn binary(&mut self) -> Result<&'a [u8], ThriftError> {
        let raw = match self.proto {
            Protocol::Compact => self.varint(5)? as i64,
            Protocol::Binary => i64::from(self.be_i32()?),
        };
        let n = self.size(raw, 1)?;
        self.take(n)
    }

    fn string(&mut self) -> Result<String, ThriftError> {
        Ok(String::from_utf8_lossy(self.binary()?).into_owned())
    }

    fn message_begin(&mut self) -> Result<(String, MessageType, i32), ThriftError> {
        match self.proto {
            Protocol::Compact => {
                let id = self.u8()?;
                if id != 0x82 {
                    return Err(invalid(format!(
                        "bad compact protocol id {id:#04x} (expected 0x82)"
                    )));
                }
                let vt = self.u8()?;
                if vt & 0x1f != 1 {
                    return Err(invalid(format!("bad compact version {}", vt & 0x1f)));
                }
                let ty = MessageType::from_u8(vt >> 5)?;
                let seqid = self.varint(5)? as u32 as i32;
                let name = self.string()?;
                Ok((name, ty, seqid))
            }
            Protocol::Binary => {
                let first = self.be_i32()?;
                if first < 0 {
                    let version = (first as u32) & 0xffff_0000;
                    if version != 0x8001_0000 {
                        return Err(invalid(format!("bad binary version {version:#x}")));
                    }
                    let ty = MessageType::from_u8((first & 0xff) as u8)?;
                    let name = self.string()?;
                    let seqid = self.be_i32()?;
                    Ok((name, ty, seqid))
                } else {
                    // Non-strict: the first word is the name's length.
                    let n = self.size(i64::from(first), 1)?;
                    let name = String::from_utf8_lossy(self.take(n)?).into_owned();
                    let ty = MessageType::from_u8(self.u8()?)?;
                    let seqid = self.be_i32()?;
                    Ok((name, ty, seqid))
                }
            }
        }
    }

    fn struct_begin(&mut self) {
        self.last_field.push(0);
    }

    fn struct_end(&mut self) {
        self.last_field.pop();
    }

    /// The next field's type and id, `None` at the struct's STOP.
    fn field_begin(&mut self) -> Result<Option<(TType, i16)>, ThriftError> {
        match self.proto {
            Protocol::Binary => {
                let t = self.u8()?;
                if t == 0 {
                    return Ok(None);
                }
                let ty = TType::from_binary(t)?;
                let id = self.be_i16()?;
                Ok(Some((ty, id)))
            }
            Protocol::Compact => {
                let b = self.u8()?;
                if b == 0 {
                    return Ok(None);
                }
                let t = b & 0x0f;
                let ty = TType::from_compact(t)?;
                if ty == TType::Bool {
                    self.pending_bool = Some(t == 1);
                }
                let delta = b >> 4;
                let last = self.last_field.last().copied().unwrap_or(0);
                let id = if delta == 0 {
                    let v = self.zigzag32()?;
                    i16::try_from(v).map_err(|_| invalid("field id out of range"))?
                } else {
                    last.wrapping_add(i16::from(delta))
                };
                if let Some(l) = self.last_field.last_mut() {
                    *l = id;
                }
                Ok(Some((ty, id)))
            }
        }
    }

    fn map_begin(&mut self) -> Result<(TType, TType, usize), ThriftError> {
        match self.proto {
            Protocol::Binary => {
                let k = TType::from_binary(self.u8()?)?;
                let v = TType::from_binary(self.u8()?)?;
                let raw = self.be_i32()?;
                let n = self.size(
                    i64::from(raw),
                    k.min_size(self.proto) + v.min_size(self.proto),
                )?;
                Ok((k, v, n))
            }
            Protocol::Compact => {
                let raw = self.varint(5)? as i64;
                if raw == 0 {
                    return Ok((TType::String, TType::String, 0));
                }
                let kv = self.u8()?;
                let k = TType::from_compact(kv >> 4)?;
                let v = TType::from_compact(kv & 0x0f)?;
                let n = self.size(raw, k.min_size(self.proto) + v.min_size(self.proto))?;
                Ok((k, v, n))
            }
        }
    }

    fn list_begin(&mut self) -> Result<(TType, usize), ThriftError> {
        match self.proto {
            Protocol::Binary => {
                let e = TType::from_binary(self.u8()?)?;
                let raw = self.be_i32()?;
                let n = self.size(i64::from(raw), e.min_size(self.proto))?;
                Ok((e, n))
            }
            Protocol::Compact => {
                let b = self.u8()?;
                let e = TType::from_compact(b & 0x0f)?;
                let short = b >> 4;
                let raw = if short == 15 {
                    self.varint(5)? as i64
                } else {
                    i64::from(short)
                };
                let n = self.size(raw, e.min_size(self.proto))?;
                Ok((e, n))
            }
        }
    }

    fn bool_value(&mut self) -> Result<bool, ThriftError> {
        if let Some(b) = self.pending_bool.take() {
            return Ok(b);
        }
        let b = self.u8()?;
        Ok(match self.proto {
            Protocol::Compact => b == 1,
            Protocol::Binary => b != 0,
        })
    }

    fn skip(&mut self, ty: TType, depth: usize) -> Result<(), ThriftError> {
        if depth > MAX_DEPTH {
            return Err(invalid("values nested too deeply"));
        }
        match ty {
            TType::Bool => {
                self.bool_value()?;
            }
            TType::Byte => {
                self.take(1)?;
            }
            TType::I16 | TType::I32 | TType::I64 => match self.proto {
                Protocol::Compact => {
                    self.varint(10)?;
                }
                Protocol::Binary => {
                    self.take(match ty {
                        TType::I16 => 2,
                        TType::I32 => 4,
                        _ => 8,
                    })?;
                }
            },
            TType::Double => {
                self.take(8)?;
            }
            TType::Uuid => {
                self.take(16)?;
            }
            TType::String => {
                self.binary()?;
            }
            TType::Struct => {
                self.struct_begin();
                while let Some((fty, _)) = self.field_begin()? {
                    self.skip(fty, depth + 1)?;
                }
                self.struct_end();
            }
            TType::Map => {
                let (k, v, n) = self.map_begin()?;
                for _ in 0..n {
                    self.skip(k, depth + 1)?;
                    self.skip(v, depth + 1)?;
                }
            }
            TType::Set | TType::List => {
                let (e, n) = self.list_begin()?;
                for _ in 0..n {
                    self.skip(e, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    /// Reads a `ThriftFlumeEvent` struct.
    fn event(&mut self) -> Result<Event, ThriftError> {
        let mut headers: Option<Headers> = None;
        let mut body: Option<Bytes> = None;
        self.struct_begin();
        while let Some((ty, id)) = self.field_begin()? {
            match (id, ty) {
                (1, TType::Map) => {
                    let (k, v, n) = self.map_begin()?;
                    if n > 0 && (k != TType::String || v != TType::String) {
                        return Err(invalid("event headers are not map<string,string>"));
                    }
                    let mut h = Headers::new();
                    for _ in 0..n {
                        let key = self.string()?;
                        let value = self.string()?;
                        h.insert(key, value);
                    }
                    headers = Some(h);
                }
                (2, TType::String) => body = Some(Bytes::copy_from_slice(self.binary()?)),
                _ => self.skip(ty, 1)?,
            }
        }
        self.struct_end();
        match (headers, body) {
            (Some(h), Some(b)) => Ok(Event::with_headers(h, b)),
            (None, _) => Err(invalid("required field 'headers' was not present")),
            (_, None) => Err(invalid("required field 'body' was not present")),
        }
    }

    /// Reads an args struct whose field 1 is `want` (skipping everything else), with `read`.
    fn args<T>(
        &mut self,
        want: TType,
        mut read: impl FnMut(&mut Self) -> Result<T, ThriftError>,
    ) -> Result<Option<T>, ThriftError> {
        let mut out = None;
        self.struct_begin();
        while let Some((ty, id)) = self.field_begin()? {
            if id == 1 && ty == want {
                out = Some(read(self)?);
            } else {
                self.skip(ty, 1)?;
            }
        }
        self.struct_end();
        Ok(out)
    }
}

/// Decodes one request message (the payload of one frame).
///
/// # Errors
/// Truncated or invalid bytes, or a message that is not a call.
pub fn decode_request(proto: Protocol, msg: &[u8]) -> Result<Request, ThriftError> {
    let mut r = Reader::new(proto, msg);
    let (name, ty, seqid) = r.message_begin()?;
    let oneway = match ty {
        MessageType::Call => false,
        MessageType::Oneway => true,
        other => return Err(invalid(format!("expected a call, got {other:?}"))),
    };
    let call = match name.as_str() {
        "append" => match r.args(TType::Struct, Reader::event)? {
            Some(e) => Call::Append(e),
            None => return Err(invalid("append without its event argument")),
        },
        "appendBatch" => {
            let events = r.args(TType::List, |r| {
                let (e, n) = r.list_begin()?;
                if n > 0 && e != TType::Struct {
                    return Err(invalid("appendBatch argument is not a list of structs"));
                }
                let mut events = Vec::with_capacity(n);
                for _ in 0..n {
                    events.push(r.event()?);
                }
                Ok(events)
            })?;
            match events {
                Some(v) => Call::AppendBatch(v),
                None => return Err(invalid("appendBatch without its events argument")),
            }
        }
        _ => {
            r.skip(TType::Struct, 0)?;
            Call::Unknown
        }
    };
    Ok(Request {
        name,
        seqid,
        oneway,
        call,
    })
}

/// Decodes one reply message (the payload of one frame).
///
/// # Errors
/// Truncated or invalid bytes, or a message that is not a reply.
pub fn decode_reply(proto: Protocol, msg: &[u8]) -> Result<Reply, ThriftError> {
    let mut r = Reader::new(proto, msg);
    let (name, ty, seqid) = r.message_begin()?;
    let result = match ty {
        MessageType::Reply => {
            let mut status = None;
            r.struct_begin();
            while let Some((fty, id)) = r.field_begin()? {
                if id == 0 && fty == TType::I32 {
                    status = Some(r.i32()?);
                } else {
                    r.skip(fty, 1)?;
                }
            }
            r.struct_end();
            match status {
                Some(v) => Status::from_i32(v).ok_or_else(|| format!("unknown status value {v}")),
                None => Err(format!("{name} failed: unknown result")),
            }
        }
        MessageType::Exception => {
            let mut message = String::new();
            let mut kind = 0;
            r.struct_begin();
            while let Some((fty, id)) = r.field_begin()? {
                match (id, fty) {
                    (1, TType::String) => message = r.string()?,
                    (2, TType::I32) => kind = r.i32()?,
                    _ => r.skip(fty, 1)?,
                }
            }
            r.struct_end();
            Err(format!("application exception {kind}: {message}"))
        }
        other => return Err(invalid(format!("expected a reply, got {other:?}"))),
    };
    Ok(Reply {
        name,
        seqid,
        result,
    })
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes values of one protocol into a buffer.
struct Writer<'a> {
    proto: Protocol,
    out: &'a mut BytesMut,
    last_field: Vec<i16>,
}

impl<'a> Writer<'a> {
    fn new(proto: Protocol, out: &'a mut BytesMut) -> Self {
        Self {
            proto,
            out,
            last_field: Vec::new(),
        }
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.put_u8(v as u8);
    }

    fn i32(&mut self, v: i32) {
        match self.proto {
            Protocol::Compact => self.varint(u64::from(((v << 1) ^ (v >> 31)) as u32)),
            Protocol::Binary => self.out.put_i32(v),
        }
    }

    fn binary(&mut self, b: &[u8]) {
        match self.proto {
            Protocol::Compact => self.varint(b.len() as u64),
            Protocol::Binary => self.out.put_i32(b.len() as i32),
        }
        self.out.put_slice(b);
    }

    fn message_begin(&mut self, name: &str, ty: MessageType, seqid: i32) {
        match self.proto {
            Protocol::Compact => {
                self.out.put_u8(0x82);
                self.out.put_u8(((ty as u8) << 5) | 1);
                self.varint(u64::from(seqid as u32));
                self.binary(name.as_bytes());
            }
            Protocol::Binary => {
                self.out.put_u32(0x8001_0000 | ty as u32);
                self.binary(name.as_bytes());
                self.out.put_i32(seqid);
            }
        }
    }

    fn struct_begin(&mut self) {
        self.last_field.push(0);
    }

    fn struct_end(&mut self) {
        self.out.put_u8(0); // STOP
        self.last_field.pop();
    }

    fn field(&mut self, ty: TType, id: i16) {
        match self.proto {
            Protocol::Binary => {
                self.out.put_u8(ty.binary());
                self.out.put_i16(id);
            }
            Protocol::Compact => {
                let last = self.last_field.last().copied().unwrap_or(0);
                let delta = i32::from(id) - i32::from(last);
                if id > last && delta <= 15 {
                    self.out.put_u8(((delta as u8) << 4) | ty.compact());
                } else {
                    self.out.put_u8(ty.compact());
                    self.i32(i32::from(id));
                }
                if let Some(l) = self.last_field.last_mut() {
                    *l = id;
                }
            }
        }
    }

    fn map_begin(&mut self, k: TType, v: TType, n: usize) {
        match self.proto {
            Protocol::Binary => {
                self.out.put_u8(k.binary());
                self.out.put_u8(v.binary());
                self.out.put_i32(n as i32);
            }
            Protocol::Compact => {
                self.varint(n as u64);
                if n > 0 {
                    self.out.put_u8((k.compact() << 4) | v.compact());
                }
            }
        }
    }

    fn list_begin(&mut self, e: TType, n: usize) {
        match self.proto {
            Protocol::Binary => {
                self.out.put_u8(e.binary());
                self.out.put_i32(n as i32);
            }
            Protocol::Compact => {
                if n < 15 {
                    self.out.put_u8(((n as u8) << 4) | e.compact());
                } else {
                    self.out.put_u8(0xf0 | e.compact());
                    self.varint(n as u64);
                }
            }
        }
    }

    fn event(&mut self, e: &Event) {
        self.struct_begin();
        self.field(TType::Map, 1);
        self.map_begin(TType::String, TType::String, e.headers.len());
        for (k, v) in e.headers.iter() {
            self.binary(k.as_bytes());
            self.binary(v.as_bytes());
        }
        self.field(TType::String, 2);
        self.binary(&e.body);
        self.struct_end();
    }
}

/// Appends an `append` call for `event` to `out`.
pub fn encode_append(proto: Protocol, seqid: i32, event: &Event, out: &mut BytesMut) {
    let mut w = Writer::new(proto, out);
    w.message_begin("append", MessageType::Call, seqid);
    w.struct_begin();
    w.field(TType::Struct, 1);
    w.event(event);
    w.struct_end();
}

/// Appends an `appendBatch` call for `events` to `out`.
pub fn encode_append_batch(proto: Protocol, seqid: i32, events: &[Event], out: &mut BytesMut) {
    let mut w = Writer::new(proto, out);
    w.message_begin("appendBatch", MessageType::Call, seqid);
    w.struct_begin();
    w.field(TType::List, 1);
    w.list_begin(TType::Struct, events.len());
    for e in events {
        w.event(e);
    }
    w.struct_end();
}

/// Appends a REPLY carrying `status` (result struct field 0, i32) to `out`.
pub fn encode_reply(proto: Protocol, name: &str, seqid: i32, status: Status, out: &mut BytesMut) {
    let mut w = Writer::new(proto, out);
    w.message_begin(name, MessageType::Reply, seqid);
    w.struct_begin();
    w.field(TType::I32, 0);
    w.i32(status as i32);
    w.struct_end();
}

/// `TApplicationException` type for a method the service does not have.
pub const UNKNOWN_METHOD: i32 = 1;

/// Appends an EXCEPTION reply (`TApplicationException{1: message, 2: type}`) to `out`.
pub fn encode_exception(
    proto: Protocol,
    name: &str,
    seqid: i32,
    message: &str,
    kind: i32,
    out: &mut BytesMut,
) {
    let mut w = Writer::new(proto, out);
    w.message_begin(name, MessageType::Exception, seqid);
    w.struct_begin();
    w.field(TType::String, 1);
    w.binary(message.as_bytes());
    w.field(TType::I32, 2);
    w.i32(kind);
    w.struct_end();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(h: &[(&str, &str)], body: &str) -> Event {
        Event::with_headers(
            h.iter().copied().collect(),
            Bytes::copy_from_slice(body.as_bytes()),
        )
    }

    fn enc(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut b = BytesMut::new();
        f(&mut b);
        b.to_vec()
    }

    #[test]
    fn golden_compact_append_request_decodes() {
        // The captured request of the reference (B.2), without the frame length.
        let mut msg = vec![0x82, 0x21, 0x00, 0x06];
        msg.extend_from_slice(b"append");
        msg.extend_from_slice(&[0x1c, 0x1b, 0x03, 0x88]);
        for s in ["seq", "0", "client", "thrift_client.py", "host", "h1"] {
            msg.push(s.len() as u8);
            msg.extend_from_slice(s.as_bytes());
        }
        msg.extend_from_slice(&[0x18, 0x0e]);
        msg.extend_from_slice(b"thrift-event 0");
        msg.extend_from_slice(&[0x00, 0x00]);
        assert_eq!(msg.len(), 70);
        let req = decode_request(Protocol::Compact, &msg).unwrap();
        assert_eq!(req.name, "append");
        assert_eq!(req.seqid, 0);
        let want = ev(
            &[("seq", "0"), ("client", "thrift_client.py"), ("host", "h1")],
            "thrift-event 0",
        );
        assert_eq!(req.call, Call::Append(want.clone()));
        // Our encoder writes the same bytes (headers in key order, so compare by decoding).
        let again = enc(|b| encode_append(Protocol::Compact, 0, &want, b));
        assert_eq!(again.len(), msg.len());
        assert_eq!(
            decode_request(Protocol::Compact, &again).unwrap().call,
            req.call
        );
    }

    #[test]
    fn golden_replies() {
        let mut want = vec![0x82, 0x41, 0x00, 0x06];
        want.extend_from_slice(b"append");
        want.extend_from_slice(&[0x05, 0x00, 0x00, 0x00]);
        assert_eq!(
            enc(|b| encode_reply(Protocol::Compact, "append", 0, Status::Ok, b)),
            want
        );
        let mut want = vec![0x80, 0x01, 0x00, 0x02, 0, 0, 0, 6];
        want.extend_from_slice(b"append");
        want.extend_from_slice(&[0, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(want.len(), 0x1a);
        assert_eq!(
            enc(|b| encode_reply(Protocol::Binary, "append", 0, Status::Failed, b)),
            want
        );
        let r = decode_reply(Protocol::Binary, &want).unwrap();
        assert_eq!(r.result, Ok(Status::Failed));
    }

    #[test]
    fn round_trips_both_protocols() {
        let events: Vec<Event> = (0..40)
            .map(|i| {
                ev(
                    &[("k", "välue ☃"), ("n", &i.to_string())],
                    &"x".repeat(i * 7),
                )
            })
            .collect();
        for proto in [Protocol::Compact, Protocol::Binary] {
            let b = enc(|b| encode_append_batch(proto, 77, &events, b));
            let req = decode_request(proto, &b).unwrap();
            assert_eq!(req.seqid, 77);
            assert_eq!(req.name, "appendBatch");
            assert_eq!(req.call, Call::AppendBatch(events.clone()));
            let b = enc(|b| encode_append(proto, -5, &events[3], b));
            let req = decode_request(proto, &b).unwrap();
            assert_eq!(req.seqid, -5);
            assert_eq!(req.call, Call::Append(events[3].clone()));
            for s in [Status::Ok, Status::Failed, Status::Error, Status::Unknown] {
                let b = enc(|b| encode_reply(proto, "appendBatch", i32::MAX, s, b));
                let r = decode_reply(proto, &b).unwrap();
                assert_eq!(
                    (r.name.as_str(), r.seqid, r.result),
                    ("appendBatch", i32::MAX, Ok(s))
                );
            }
            let b =
                enc(|b| encode_exception(proto, "nope", 3, "Invalid method name: 'nope'", 1, b));
            let r = decode_reply(proto, &b).unwrap();
            assert!(r.result.unwrap_err().contains("Invalid method name"));
        }
    }

    #[test]
    fn skips_unknown_fields() {
        // Hand-built compact append with extra fields of every kind around the known ones.
        let mut b = BytesMut::new();
        let mut w = Writer::new(Protocol::Compact, &mut b);
        w.message_begin("append", MessageType::Call, 9);
        w.struct_begin();
        w.field(TType::I64, 7);
        w.varint(12345);
        w.field(TType::Struct, 1);
        w.struct_begin();
        w.field(TType::Bool, 0); // bool in the header, long-form id
        w.field(TType::List, 3);
        w.list_begin(TType::Double, 20);
        for _ in 0..20 {
            w.out.put_u64(0);
        }
        w.field(TType::Map, 4);
        w.map_begin(TType::I32, TType::Struct, 1);
        w.i32(-1);
        w.struct_begin();
        w.struct_end();
        w.field(TType::Map, 1);
        w.map_begin(TType::String, TType::String, 1);
        w.binary(b"a");
        w.binary(b"b");
        w.field(TType::String, 2);
        w.binary(b"body");
        w.field(TType::Uuid, 40);
        w.out.put_slice(&[0; 16]);
        w.struct_end();
        w.struct_end();
        let req = decode_request(Protocol::Compact, &b).unwrap();
        assert_eq!(req.call, Call::Append(ev(&[("a", "b")], "body")));
    }

    #[test]
    fn non_strict_binary_and_unknown_method() {
        let mut b = BytesMut::new();
        b.put_i32(4);
        b.put_slice(b"ping");
        b.put_u8(1);
        b.put_i32(11);
        b.put_u8(0);
        let req = decode_request(Protocol::Binary, &b).unwrap();
        assert_eq!(
            (req.name.as_str(), req.seqid, req.call),
            ("ping", 11, Call::Unknown)
        );
    }

    #[test]
    fn truncated_and_garbage_give_errors() {
        let full =
            enc(|b| encode_append_batch(Protocol::Compact, 1, &[ev(&[("h", "v")], "body")], b));
        for n in 0..full.len() {
            assert!(
                decode_request(Protocol::Compact, &full[..n]).is_err(),
                "prefix {n}"
            );
        }
        // A list claiming 2^31 events in a tiny message: refused before allocating.
        let mut b = BytesMut::new();
        let mut w = Writer::new(Protocol::Binary, &mut b);
        w.message_begin("appendBatch", MessageType::Call, 1);
        w.struct_begin();
        w.field(TType::List, 1);
        w.list_begin(TType::Struct, i32::MAX as usize);
        let err = decode_request(Protocol::Binary, &b).unwrap_err();
        assert!(matches!(err, ThriftError::Invalid(_)), "{err}");
        assert!(decode_request(Protocol::Compact, b"GET / HTTP/1.1\r\n").is_err());
        assert!(decode_request(Protocol::Binary, b"GET / HTTP/1.1\r\n").is_err());
        // Deep nesting is refused, not a stack overflow.
        let mut deep = vec![0x82, 0x21, 0x00, 0x01, b'x'];
        deep.extend(std::iter::repeat_n(0x1c, 10_000));
        assert!(decode_request(Protocol::Compact, &deep).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            for proto in [Protocol::Compact, Protocol::Binary] {
                let _ = decode_request(proto, &data);
                let _ = decode_reply(proto, &data);
            }
        }
    }
}
