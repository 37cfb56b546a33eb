//! `TFramedTransport` framing: a 4-byte big-endian length, then one Thrift message of that
//! many bytes (Flume's `TFastFramedTransport` is wire-identical).
//!
//! [`FrameCodec`] is the sans-I/O layer: its decoder yields whole frame payloads and checks the
//! claimed length against a maximum *before* reserving anything, so a frame claiming 4 GiB is a
//! clean error, not an allocation. [`ServerCodec`] and [`ClientCodec`] stack the protocol of
//! [`super::protocol`] on top for the server and the client side.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flumen_core::Event;
use tokio_util::codec::{Decoder, Encoder};

use super::protocol::{
    self, Protocol, Reply, Request, Status, ThriftError, encode_append, encode_append_batch,
};

/// Flume's default maximum frame length (`TFastFramedTransport`): 16,384,000 bytes.
pub const DEFAULT_MAX_FRAME: usize = 16_384_000;

/// Why a framed stream failed; the connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame claimed more than the configured maximum.
    #[error("thrift frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Claimed length.
        len: u64,
        /// Configured maximum.
        max: usize,
    },
    /// A frame with a negative length (Java rejects those too).
    #[error("thrift frame with negative length {0}")]
    Negative(i32),
    /// The frame's contents are not a valid message.
    #[error(transparent)]
    Protocol(#[from] ThriftError),
}

/// Splits a byte stream into frame payloads and prefixes outgoing payloads with their length.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_frame: usize,
}

impl FrameCodec {
    /// A codec refusing frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self { max_frame }
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME)
    }
}

impl Decoder for FrameCodec {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if len < 0 {
            return Err(FrameError::Negative(len));
        }
        let len = len as usize;
        if len > self.max_frame {
            return Err(FrameError::TooLarge {
                len: len as u64,
                max: self.max_frame,
            });
        }
        if src.len() < 4 + len {
            // Reserve only what a length already checked against the maximum needs.
            src.reserve(4 + len - src.len());
            return Ok(None);
        }
        src.advance(4);
        Ok(Some(src.split_to(len).freeze()))
    }
}

/// Writes `f`'s output as one frame: the length is patched in after the message is written.
fn framed(dst: &mut BytesMut, f: impl FnOnce(&mut BytesMut)) -> Result<(), FrameError> {
    let start = dst.len();
    dst.put_u32(0);
    f(dst);
    let len = dst.len() - start - 4;
    let len32 = u32::try_from(len).map_err(|_| FrameError::TooLarge {
        len: len as u64,
        max: i32::MAX as usize,
    })?;
    dst[start..start + 4].copy_from_slice(&len32.to_be_bytes());
    Ok(())
}

impl Encoder<&[u8]> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        framed(dst, |d| d.put_slice(item))
    }
}

/// What a server sends back for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// A REPLY with a status.
    Status {
        /// Echoed message name.
        name: String,
        /// Echoed sequence id.
        seqid: i32,
        /// The status.
        status: Status,
    },
    /// An EXCEPTION (`TApplicationException`).
    Exception {
        /// Echoed message name.
        name: String,
        /// Echoed sequence id.
        seqid: i32,
        /// Its text.
        message: String,
        /// Its type (e.g. [`protocol::UNKNOWN_METHOD`]).
        kind: i32,
    },
}

/// Server side: decodes framed requests, encodes framed responses.
#[derive(Debug, Clone, Copy)]
pub struct ServerCodec {
    frames: FrameCodec,
    proto: Protocol,
}

impl ServerCodec {
    /// A server codec for `proto` with a frame limit.
    pub fn new(proto: Protocol, max_frame: usize) -> Self {
        Self {
            frames: FrameCodec::new(max_frame),
            proto,
        }
    }
}

impl Decoder for ServerCodec {
    type Item = Request;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Request>, FrameError> {
        match self.frames.decode(src)? {
            Some(frame) => Ok(Some(protocol::decode_request(self.proto, &frame)?)),
            None => Ok(None),
        }
    }
}

impl Encoder<Response> for ServerCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Response, dst: &mut BytesMut) -> Result<(), FrameError> {
        let proto = self.proto;
        framed(dst, |d| match &item {
            Response::Status {
                name,
                seqid,
                status,
            } => protocol::encode_reply(proto, name, *seqid, *status, d),
            Response::Exception {
                name,
                seqid,
                message,
                kind,
            } => protocol::encode_exception(proto, name, *seqid, message, *kind, d),
        })
    }
}

/// A call the client sends.
#[derive(Debug, Clone, Copy)]
pub enum Outgoing<'a> {
    /// `append(event)`.
    Append(i32, &'a Event),
    /// `appendBatch(events)`.
    AppendBatch(i32, &'a [Event]),
}

/// Client side: encodes framed calls, decodes framed replies.
#[derive(Debug, Clone, Copy)]
pub struct ClientCodec {
    frames: FrameCodec,
    proto: Protocol,
}

impl ClientCodec {
    /// A client codec for `proto` with a frame limit (for replies).
    pub fn new(proto: Protocol, max_frame: usize) -> Self {
        Self {
            frames: FrameCodec::new(max_frame),
            proto,
        }
    }
}

impl Decoder for ClientCodec {
    type Item = Reply;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Reply>, FrameError> {
        match self.frames.decode(src)? {
            Some(frame) => Ok(Some(protocol::decode_reply(self.proto, &frame)?)),
            None => Ok(None),
        }
    }
}

impl Encoder<Outgoing<'_>> for ClientCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Outgoing<'_>, dst: &mut BytesMut) -> Result<(), FrameError> {
        let proto = self.proto;
        framed(dst, |d| match item {
            Outgoing::Append(seqid, e) => encode_append(proto, seqid, e, d),
            Outgoing::AppendBatch(seqid, es) => encode_append_batch(proto, seqid, es, d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thrift::protocol::Call;

    #[test]
    fn frames_split_and_wait_for_more() {
        let mut c = FrameCodec::new(100);
        let mut b = BytesMut::from(&[0u8, 0, 0, 3, b'a', b'b'][..]);
        assert_eq!(c.decode(&mut b).unwrap(), None);
        b.extend_from_slice(&[b'c', 0, 0, 0, 0, 0]);
        assert_eq!(c.decode(&mut b).unwrap().as_deref(), Some(&b"abc"[..]));
        assert_eq!(c.decode(&mut b).unwrap().as_deref(), Some(&b""[..]));
        assert_eq!(c.decode(&mut b).unwrap(), None);
        let mut out = BytesMut::new();
        c.encode(&b"xyz"[..], &mut out).unwrap();
        assert_eq!(&out[..], &[0, 0, 0, 3, b'x', b'y', b'z']);
    }

    #[test]
    fn huge_or_negative_frames_are_refused_without_allocating() {
        let mut c = FrameCodec::default();
        let mut b = BytesMut::from(&[0x7fu8, 0xff, 0xff, 0xff][..]);
        assert!(matches!(c.decode(&mut b), Err(FrameError::TooLarge { .. })));
        assert!(b.capacity() < 1024);
        let mut b = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        assert!(matches!(c.decode(&mut b), Err(FrameError::Negative(-1))));
    }

    #[test]
    fn server_and_client_codecs_round_trip() {
        for proto in [Protocol::Compact, Protocol::Binary] {
            let mut client = ClientCodec::new(proto, DEFAULT_MAX_FRAME);
            let mut server = ServerCodec::new(proto, DEFAULT_MAX_FRAME);
            let events = vec![Event::new("one"), Event::new("two")];
            let mut wire = BytesMut::new();
            client
                .encode(Outgoing::AppendBatch(5, &events), &mut wire)
                .unwrap();
            let last = wire.split_off(wire.len() - 1);
            assert_eq!(server.decode(&mut wire).unwrap(), None);
            wire.unsplit(last);
            let req = server.decode(&mut wire).unwrap().unwrap();
            assert_eq!(req.call, Call::AppendBatch(events));
            server
                .encode(
                    Response::Status {
                        name: req.name,
                        seqid: req.seqid,
                        status: Status::Failed,
                    },
                    &mut wire,
                )
                .unwrap();
            let reply = client.decode(&mut wire).unwrap().unwrap();
            assert_eq!((reply.seqid, reply.result), (5, Ok(Status::Failed)));
        }
    }

    #[test]
    fn golden_framed_compact_reply() {
        let mut s = ServerCodec::new(Protocol::Compact, DEFAULT_MAX_FRAME);
        let mut out = BytesMut::new();
        s.encode(
            Response::Status {
                name: "append".into(),
                seqid: 0,
                status: Status::Ok,
            },
            &mut out,
        )
        .unwrap();
        let mut want = vec![0, 0, 0, 0x0e, 0x82, 0x41, 0x00, 0x06];
        want.extend_from_slice(b"append");
        want.extend_from_slice(&[0x05, 0x00, 0x00, 0x00]);
        assert_eq!(&out[..], &want[..]);
    }
}
