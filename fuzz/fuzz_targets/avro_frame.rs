//! Fuzzes the Avro RPC decoders: Netty frames (plain and inside zlib), the handshake, calls
//! and responses. None may panic or allocate what a length field claims (the limit is small
//! here so a frame claiming 4 GiB is rejected, not allocated).
#![no_main]

use bytes::BytesMut;
use flumen_rpc::avro::framing::WireCodec;
use flumen_rpc::avro::handshake::{HandshakeRequest, HandshakeResponse};
use flumen_rpc::avro::protocol::{Reader, read_call, read_result};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

const MAX_FRAME: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    for mut codec in [
        WireCodec::plain(MAX_FRAME),
        WireCodec::deflate(MAX_FRAME, 6),
    ] {
        let mut buf = BytesMut::from(data);
        // Bounded: every decoded frame consumes at least its 12-byte header and buffer.
        for _ in 0..64 {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let mut r = Reader::new(frame.payload.clone());
                    if HandshakeRequest::read(&mut r).is_ok() {
                        let _ = read_call(&mut r);
                    }
                    let _ = read_call(&mut Reader::new(frame.payload.clone()));
                    let mut r = Reader::new(frame.payload);
                    if HandshakeResponse::read(&mut r).is_ok() {
                        let _ = read_result(&mut r);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
});
