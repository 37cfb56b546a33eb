//! Fuzzes the Thrift frame decoder and both protocols' request/reply decoders: garbage,
//! truncated frames and huge length claims must give an error, never a panic or a huge
//! allocation.
#![no_main]

use bytes::BytesMut;
use flumen_rpc::thrift::framing::{ClientCodec, ServerCodec};
use flumen_rpc::thrift::protocol::{Protocol, decode_reply, decode_request};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    for proto in [Protocol::Compact, Protocol::Binary] {
        let _ = decode_request(proto, data);
        let _ = decode_reply(proto, data);
        // A small frame limit keeps the fuzzer in the interesting range.
        let mut server = ServerCodec::new(proto, 1 << 16);
        let mut buf = BytesMut::from(data);
        while let Ok(Some(_)) = server.decode(&mut buf) {}
        let mut client = ClientCodec::new(proto, 1 << 16);
        let mut buf = BytesMut::from(data);
        while let Ok(Some(_)) = client.decode(&mut buf) {}
    }
});
