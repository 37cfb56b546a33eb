//! Avro's Netty framing (`NettyTransportCodec`): `serial:i32 count:i32 (length:i32 bytes)*count`,
//! all big-endian.
//!
//! Invariants:
//! - the decoder consumes nothing until a whole frame is buffered, so a truncated frame is
//!   `Ok(None)` and decoding resumes where it left off when more bytes arrive;
//! - no length field is trusted before it is checked against [`FrameCodec::max_frame`]: a frame
//!   claiming 4 GiB is an error, not an allocation; negative lengths and zero-buffer frames
//!   (which Java never delivers) are errors too;
//! - buffer boundaries carry no meaning, so a decoded frame is the concatenation of its buffers
//!   (one zero-copy slice when the frame has a single buffer, the common case).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio_util::codec::{Decoder, Encoder};

/// Default largest frame (sum of its buffers) accepted: 64 MiB.
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// Largest buffer written by the encoder; Java's ByteBufferOutputStream uses 8 KiB chunks, but
/// any size is legal and larger chunks cost less.
const MAX_WRITE_BUFFER: usize = 1024 * 1024;

/// One Netty frame: the serial that pairs a response with its request, and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Chosen by the client; echoed by the server.
    pub serial: i32,
    /// The buffers of the frame, concatenated.
    pub payload: Bytes,
}

/// Why bytes on the wire are not a Netty frame stream.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame header or a buffer length is impossible or above the limit.
    #[error("bad Avro Netty frame: {0}")]
    Invalid(String),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `tokio_util` codec for [`Frame`]s, both directions.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    /// Largest accepted frame payload in bytes.
    pub max_frame: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

impl FrameCodec {
    /// A codec accepting frames up to `max_frame` bytes of payload.
    pub fn new(max_frame: usize) -> Self {
        Self { max_frame }
    }
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    let s = b.get(at..at + 4)?;
    Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let (Some(serial), Some(count)) = (be_i32(src, 0), be_i32(src, 4)) else {
            return Ok(None);
        };
        if count <= 0 {
            return Err(FrameError::Invalid(format!("buffer count {count}")));
        }
        let count = count as usize;
        // Java writes 8 KiB buffers; allowing one per KiB of the limit leaves ample room while
        // keeping the per-call walk over buffer headers short.
        if count > self.max_frame / 1024 + 64 {
            return Err(FrameError::Invalid(format!(
                "buffer count {count} exceeds the limit for {} byte frames",
                self.max_frame
            )));
        }
        let mut pos = 8usize;
        let mut total = 0usize;
        let mut spans = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let Some(len) = be_i32(src, pos) else {
                src.reserve(pos + 4 - src.len());
                return Ok(None);
            };
            if len < 0 {
                return Err(FrameError::Invalid(format!("negative buffer length {len}")));
            }
            let len = len as usize;
            total += len;
            if total > self.max_frame {
                return Err(FrameError::Invalid(format!(
                    "frame of at least {total} bytes exceeds the limit of {} bytes",
                    self.max_frame
                )));
            }
            pos += 4;
            spans.push((pos, len));
            pos += len;
            if src.len() < pos {
                // Safe to reserve: `total` is within the limit.
                src.reserve(pos - src.len());
                return Ok(None);
            }
        }
        let frame = src.split_to(pos).freeze();
        let payload = match spans.as_slice() {
            [(start, len)] => frame.slice(*start..start + len),
            _ => {
                let mut joined = BytesMut::with_capacity(total);
                for (start, len) in spans {
                    joined.extend_from_slice(&frame[start..start + len]);
                }
                joined.freeze()
            }
        };
        Ok(Some(Frame { serial, payload }))
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        encode_parts(frame.serial, &[frame.payload], dst);
        Ok(())
    }
}

/// Writes one frame whose buffers are `parts`, each split into chunks of at most 1 MiB.
/// An empty `parts` (or all-empty parts) still writes one zero-length buffer: Java never
/// delivers a frame without buffers.
pub fn encode_parts(serial: i32, parts: &[Bytes], dst: &mut BytesMut) {
    let chunks: Vec<&[u8]> = parts
        .iter()
        .flat_map(|p| p.chunks(MAX_WRITE_BUFFER))
        .collect();
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    dst.reserve(8 + 4 * chunks.len().max(1) + total);
    dst.put_i32(serial);
    if chunks.is_empty() {
        dst.put_i32(1);
        dst.put_i32(0);
        return;
    }
    dst.put_i32(chunks.len() as i32);
    for c in chunks {
        dst.put_i32(c.len() as i32);
        dst.put_slice(c);
    }
}

/// Decodes one frame from the start of `data` without a codec (for tests and fuzzing):
/// `Ok(None)` when `data` is a truncated frame.
///
/// # Errors
/// As [`FrameCodec`]'s decoder.
pub fn decode_one(data: &[u8], max_frame: usize) -> Result<Option<Frame>, FrameError> {
    let mut buf = BytesMut::from(data);
    FrameCodec::new(max_frame).decode(&mut buf)
}

/// The codec of a connection: Netty frames, optionally inside one zlib stream per direction
/// (`compression-type = deflate`, A.8), sync-flushed after every frame so each frame can be
/// decoded as soon as it arrives.
pub struct WireCodec {
    frames: FrameCodec,
    deflate: Option<Deflate>,
}

struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// Inflated bytes not yet decoded as frames.
    inflated: BytesMut,
}

impl std::fmt::Debug for WireCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireCodec")
            .field("frames", &self.frames)
            .field("deflate", &self.deflate.is_some())
            .finish()
    }
}

impl WireCodec {
    /// Plain frames up to `max_frame` bytes.
    pub fn plain(max_frame: usize) -> Self {
        Self {
            frames: FrameCodec::new(max_frame),
            deflate: None,
        }
    }
    /// Frames inside zlib streams; `level` 0-9 applies to what this side writes.
    pub fn deflate(max_frame: usize, level: u32) -> Self {
        Self {
            frames: FrameCodec::new(max_frame),
            deflate: Some(Deflate {
                compress: Compress::new(Compression::new(level.min(9)), true),
                decompress: Decompress::new(true),
                inflated: BytesMut::new(),
            }),
        }
    }
}

fn zlib_error(e: impl std::fmt::Display) -> FrameError {
    FrameError::Invalid(format!("bad zlib stream: {e}"))
}

impl Decoder for WireCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(d) = &mut self.deflate else {
            return self.frames.decode(src);
        };
        // Inflate no more than one maximal frame ahead: a small zip bomb cannot fill memory.
        let limit = self.frames.max_frame.saturating_add(64 * 1024);
        let mut scratch = Vec::new();
        while !src.is_empty() && d.inflated.len() < limit {
            scratch.clear();
            scratch.reserve(64 * 1024);
            let (in0, out0) = (d.decompress.total_in(), d.decompress.total_out());
            d.decompress
                .decompress_vec(src, &mut scratch, FlushDecompress::None)
                .map_err(zlib_error)?;
            let consumed = (d.decompress.total_in() - in0) as usize;
            let produced = (d.decompress.total_out() - out0) as usize;
            src.advance(consumed);
            d.inflated.extend_from_slice(&scratch);
            if consumed == 0 && produced == 0 {
                break;
            }
        }
        self.frames.decode(&mut d.inflated)
    }
}

impl Encoder<Frame> for WireCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let Some(d) = &mut self.deflate else {
            return self.frames.encode(frame, dst);
        };
        let mut plain = BytesMut::new();
        self.frames.encode(frame, &mut plain)?;
        let mut out = Vec::with_capacity(plain.len() / 2 + 128);
        let mut input = &plain[..];
        loop {
            if out.capacity() - out.len() < 128 {
                out.reserve(out.capacity().max(4096));
            }
            let in0 = d.compress.total_in();
            d.compress
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(zlib_error)?;
            input = &input[(d.compress.total_in() - in0) as usize..];
            // Done when everything is in and the flush did not run out of room.
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        dst.extend_from_slice(&out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_single_and_multi_buffer() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        codec
            .encode(
                Frame {
                    serial: 7,
                    payload: Bytes::from_static(b"hello"),
                },
                &mut buf,
            )
            .unwrap();
        assert_eq!(&buf[..], b"\0\0\0\x07\0\0\0\x01\0\0\0\x05hello");
        let f = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(f.serial, 7);
        assert_eq!(&f.payload[..], b"hello");
        assert!(buf.is_empty());

        // Java response shape: empty first buffer, then metadata, then result.
        let golden = [
            0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0,
        ];
        let mut buf = BytesMut::from(&golden[..]);
        let f = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(f.serial, 1);
        assert_eq!(&f.payload[..], &[0, 0, 0]);
    }

    #[test]
    fn empty_parts_write_one_empty_buffer() {
        let mut buf = BytesMut::new();
        encode_parts(3, &[], &mut buf);
        assert_eq!(&buf[..], &[0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 0]);
        let f = decode_one(&buf, 100).unwrap().unwrap();
        assert!(f.payload.is_empty());
    }

    #[test]
    fn truncated_is_none_at_every_cut() {
        let mut full = BytesMut::new();
        encode_parts(
            9,
            &[Bytes::from_static(b"abc"), Bytes::from_static(b"defg")],
            &mut full,
        );
        for cut in 0..full.len() {
            assert!(decode_one(&full[..cut], 1000).unwrap().is_none(), "{cut}");
        }
        let f = decode_one(&full, 1000).unwrap().unwrap();
        assert_eq!(&f.payload[..], b"abcdefg");
    }

    #[test]
    fn garbage_is_an_error_without_allocating() {
        // A frame claiming a 4 GiB-ish buffer.
        let huge = [0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff];
        assert!(decode_one(&huge, DEFAULT_MAX_FRAME).is_err());
        let neg = [0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        assert!(decode_one(&neg, DEFAULT_MAX_FRAME).is_err());
        let zero = [0, 0, 0, 1, 0, 0, 0, 0];
        assert!(decode_one(&zero, DEFAULT_MAX_FRAME).is_err());
        let many = [0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff];
        assert!(decode_one(&many, DEFAULT_MAX_FRAME).is_err());
        // Many small buffers whose sum passes the limit.
        let mut buf = BytesMut::new();
        encode_parts(
            1,
            &[Bytes::from(vec![0u8; 60]), Bytes::from(vec![0u8; 60])],
            &mut buf,
        );
        assert!(decode_one(&buf, 100).is_err());
    }

    #[test]
    fn deflate_round_trip_frame_by_frame() {
        let mut a = WireCodec::deflate(DEFAULT_MAX_FRAME, 6);
        let mut b = WireCodec::deflate(DEFAULT_MAX_FRAME, 6);
        let mut wire = BytesMut::new();
        for i in 0..3 {
            let payload = Bytes::from(vec![b'a' + i as u8; 10_000]);
            a.encode(
                Frame {
                    serial: i,
                    payload: payload.clone(),
                },
                &mut wire,
            )
            .unwrap();
            if i == 0 {
                assert_eq!(&wire[..2], &[0x78, 0x9c]);
            }
            // Sync flush: each frame decodes as soon as its bytes are there.
            let f = b.decode(&mut wire).unwrap().unwrap();
            assert_eq!((f.serial, f.payload), (i, payload));
        }
        let mut bad = BytesMut::from(&b"garbage!"[..]);
        assert!(WireCodec::deflate(100, 6).decode(&mut bad).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = decode_one(&data, 1000);
            let mut buf = BytesMut::from(&data[..]);
            let _ = WireCodec::deflate(1000, 6).decode(&mut buf);
        }
    }
}
