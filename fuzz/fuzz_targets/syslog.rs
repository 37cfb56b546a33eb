//! Fuzzes the syslog TCP framer (octet counting and lines, eventSize cap) and the syslog
//! parser: any bytes, cut into reads anywhere, must give frames no longer than eventSize, a
//! buffer that stays bounded, and events, never a panic or a large allocation.
#![no_main]

use bytes::BytesMut;
use flumen::components::sources::syslog::framing::SyslogFramer;
use flumen::components::sources::syslog::parser::{KeepFields, SyslogParser};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, data)) = data.split_first() else {
        return;
    };
    // A small eventSize keeps the fuzzer where the cutting happens.
    let event_size = 10 + usize::from(knobs & 0x3f);
    let keep = KeepFields {
        priority: knobs & 0x40 != 0,
        version: knobs & 0x80 != 0,
        timestamp: knobs & 0x41 == 0x41,
        hostname: knobs & 0x82 == 0x82,
    };
    let parser = SyslogParser::new(keep, "UTF-8").expect("UTF-8 is supported");
    // The UDP path: the whole input is one message.
    let _ = parser.parse(data, false);

    let chunk = 1 + usize::from(knobs % 7);
    let mut framer = SyslogFramer::new(event_size);
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Ok(Some(frame)) = framer.decode(&mut buf) {
            assert!(frame.msg.len() <= framer.event_size());
            let _ = parser.parse(&frame.msg, frame.truncated);
        }
        assert!(buf.len() <= framer.event_size() + 12);
    }
    while let Ok(Some(frame)) = framer.decode_eof(&mut buf) {
        let _ = parser.parse(&frame.msg, frame.truncated);
    }
});
