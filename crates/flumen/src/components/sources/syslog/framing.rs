//! Syslog TCP stream framing (RFC 6587): octet counting (`LEN SP MSG`, what rsyslog's
//! `TCP_Framing="octet-counted"` and `logger --octet-count` send) or non-transparent framing
//! (one message per `\n`-terminated line, Flume's only framing), with the `eventSize` cap.
//!
//! # Invariants
//! - The framing is chosen once per connection from its first byte (after any empty lines):
//!   an ASCII digit means octet counting, anything else lines. A syslog line starts with `<`,
//!   so a line-framed sender is never mistaken for a counting one.
//! - Memory is bounded by `eventSize`: a message longer than that is emitted cut to
//!   `eventSize` bytes with `truncated = true` and the rest of it is discarded as it arrives,
//!   never buffered; an octet count is only used after checking it, so the decoder never
//!   reserves what a length field claims beyond `eventSize`. Between calls the buffer holds at
//!   most `eventSize + 2` bytes of an unfinished line or `eventSize` + a count header of an
//!   unfinished frame (plus whatever the last read brought).
//! - Garbage in an octet-counted stream (a frame that does not start with a digit, a count
//!   followed by anything but a space, a count of more than [`MAX_OCTET_COUNT`]) is read as a
//!   line up to the next `\n` and delivered like any other message (the parser flags it
//!   `Invalid` when it has no `<PRI>`); the next frame is counted again. Nothing received is
//!   dropped silently, and a bad frame never closes the connection.
//! - A trailing `\r` before the `\n` (Windows senders) is stripped, and so is a `\n` or `\r\n`
//!   that a sender put at the end of a counted frame; empty lines and line breaks between
//!   counted frames are skipped.
//! - At end of stream, an unterminated last line is delivered; a counted frame cut short by
//!   the close is delivered with `truncated = true`.
//!
//! Flume cuts an over-long line into several events (the first `Incomplete`, the following
//! pieces `Invalid`) and flags a line of exactly `eventSize` bytes `Incomplete`; here one
//! event per message and only a message that was really cut is flagged.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// The largest octet count accepted as a frame length (rsyslog's default maximum frame size
/// is 200 000). A bigger count is framing garbage, unless `eventSize` is bigger still.
pub const MAX_OCTET_COUNT: u64 = 1 << 20;

/// Flume's smallest `eventSize` (`SyslogUtils.MIN_SIZE`).
pub const MIN_EVENT_SIZE: usize = 10;

/// Digits in the longest count header we read: more is garbage.
const MAX_COUNT_DIGITS: usize = 10;

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message bytes, without framing (no count, no line end).
    pub msg: Bytes,
    /// The message was cut at eventSize.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No byte seen yet.
    Detect,
    OctetCounting,
    Lines,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    None,
    /// Discard up to and including the next `\n` (the rest of a cut line).
    Line,
    /// Discard this many more bytes (the rest of a cut counted frame).
    Octets(u64),
}

/// What the start of an octet-counted frame turned out to be.
enum Header {
    /// Not enough bytes yet to tell.
    Partial,
    /// `count` bytes of message follow a header of `len` bytes.
    Count { len: usize, count: u64 },
    /// Not a count: read this frame as a line.
    Garbage,
}

/// `tokio_util::codec::Decoder` for a syslog TCP stream (see the module docs).
#[derive(Debug)]
pub struct SyslogFramer {
    event_size: usize,
    mode: Mode,
    skip: Skip,
    /// Bytes of the unfinished line at the buffer's start already searched for `\n`, so a
    /// line arriving in many small reads is scanned once.
    scanned: usize,
}

impl SyslogFramer {
    /// A framer cutting messages at `event_size` bytes (Flume's minimum of 10 applies).
    pub fn new(event_size: usize) -> Self {
        Self {
            event_size: event_size.max(MIN_EVENT_SIZE),
            mode: Mode::Detect,
            skip: Skip::None,
            scanned: 0,
        }
    }

    /// The cap in bytes after applying the minimum.
    pub fn event_size(&self) -> usize {
        self.event_size
    }

    /// True once the connection turned out to use octet counting.
    pub fn is_octet_counting(&self) -> bool {
        self.mode == Mode::OctetCounting
    }

    fn max_count(&self) -> u64 {
        MAX_OCTET_COUNT.max(self.event_size as u64)
    }

    /// Discards what an earlier cut left to skip; true when done skipping.
    fn skip(&mut self, src: &mut BytesMut) -> bool {
        match self.skip {
            Skip::None => true,
            Skip::Line => match memchr::memchr(b'\n', src) {
                Some(p) => {
                    src.advance(p + 1);
                    self.skip = Skip::None;
                    true
                }
                None => {
                    src.clear();
                    false
                }
            },
            Skip::Octets(n) => {
                let k = usize::try_from(n).unwrap_or(usize::MAX).min(src.len());
                src.advance(k);
                let left = n - k as u64;
                self.skip = if left == 0 {
                    Skip::None
                } else {
                    Skip::Octets(left)
                };
                left == 0
            }
        }
    }

    /// Reads a count header at the start of `src` (which starts with a digit).
    fn header(&self, src: &[u8]) -> Header {
        let digits = src.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > MAX_COUNT_DIGITS {
            return Header::Garbage;
        }
        match src.get(digits) {
            None => Header::Partial,
            Some(b' ') => {
                let count = src[..digits]
                    .iter()
                    .fold(0u64, |v, b| v * 10 + u64::from(b - b'0'));
                if count == 0 || count > self.max_count() {
                    Header::Garbage
                } else {
                    Header::Count {
                        len: digits + 1,
                        count,
                    }
                }
            }
            Some(_) => Header::Garbage,
        }
    }

    /// One line from the start of `src`, cut at eventSize; `eof` = take what is there.
    fn line(&mut self, src: &mut BytesMut, eof: bool) -> Option<Frame> {
        // A line of eventSize bytes may still be followed by `\r\n`: look that far.
        let window = src.len().min(self.event_size + 2);
        let from = self.scanned.min(window);
        let newline = memchr::memchr(b'\n', &src[from..window]).map(|p| p + from);
        self.scanned = 0;
        match newline {
            Some(p) => {
                let mut msg = src.split_to(p + 1).freeze();
                msg.truncate(p);
                if msg.last() == Some(&b'\r') {
                    msg.truncate(p - 1);
                }
                Some(self.capped(msg))
            }
            None if src.len() >= self.event_size + 2 => {
                let msg = src.split_to(self.event_size).freeze();
                self.skip = Skip::Line;
                Some(Frame {
                    msg,
                    truncated: true,
                })
            }
            None if eof => {
                let mut msg = src.split().freeze();
                if msg.last() == Some(&b'\r') {
                    msg.truncate(msg.len() - 1);
                }
                Some(self.capped(msg))
            }
            None => {
                self.scanned = window;
                None
            }
        }
    }

    fn capped(&self, mut msg: Bytes) -> Frame {
        let truncated = msg.len() > self.event_size;
        msg.truncate(self.event_size);
        Frame { msg, truncated }
    }

    fn next_frame(&mut self, src: &mut BytesMut, eof: bool) -> Option<Frame> {
        loop {
            if !self.skip(src) {
                return None;
            }
            let blank = src
                .iter()
                .take_while(|&&b| b == b'\n' || b == b'\r')
                .count();
            src.advance(blank);
            let first = *src.first()?;
            if self.mode == Mode::Detect {
                self.mode = if first.is_ascii_digit() {
                    Mode::OctetCounting
                } else {
                    Mode::Lines
                };
            }
            if self.mode == Mode::Lines || !first.is_ascii_digit() {
                return self.line(src, eof);
            }
            let (len, count) = match self.header(src) {
                Header::Count { len, count } => (len, count),
                Header::Garbage => return self.line(src, eof),
                Header::Partial if eof => return self.line(src, eof),
                Header::Partial => return None,
            };
            let want = usize::try_from(count)
                .unwrap_or(usize::MAX)
                .min(self.event_size);
            if src.len() < len + want {
                if !eof {
                    // Bounded: `want` never exceeds eventSize.
                    src.reserve(len + want - src.len());
                    return None;
                }
                // The peer closed mid-frame: deliver what came, flagged.
                src.advance(len);
                let msg = src.split().freeze();
                return Some(Frame {
                    msg: strip_frame_end(msg),
                    truncated: true,
                });
            }
            src.advance(len);
            let msg = src.split_to(want).freeze();
            if count > want as u64 {
                self.skip = Skip::Octets(count - want as u64);
                return Some(Frame {
                    msg,
                    truncated: true,
                });
            }
            let msg = strip_frame_end(msg);
            if msg.is_empty() {
                // A frame holding only a line break: nothing to deliver.
                continue;
            }
            return Some(Frame {
                msg,
                truncated: false,
            });
        }
    }
}

/// Drops a `\n` or `\r\n` a sender put inside the count.
fn strip_frame_end(mut msg: Bytes) -> Bytes {
    if msg.last() == Some(&b'\n') {
        msg.truncate(msg.len() - 1);
    }
    if msg.last() == Some(&b'\r') {
        msg.truncate(msg.len() - 1);
    }
    msg
}

impl Decoder for SyslogFramer {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        Ok(self.next_frame(src, false))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        let frame = self.next_frame(src, true);
        if frame.is_none() {
            // Only skipped bytes or line breaks were left.
            src.clear();
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Bytes exactly as util-linux logger 2.38.1 and rsyslog 8.2302 omfwd sent them.
    const LOGGER_TCP_3164: &[u8] = b"<156>Nov 21 14:17:26 vm myapp: hello rfc3164\n";
    const LOGGER_TCP_5424: &[u8] = b"<156>1 2026-11-21T14:17:28.173300+00:00 vm myapp - - \
[timeQuality tzKnown=\"1\" isSynced=\"0\"] hello rfc5424\n";
    const LOGGER_OC_3164: &[u8] = b"46 <13>Nov 21 14:17:27 vm myapp: hello oc rfc3164";
    const LOGGER_OC_5424: &[u8] = b"107 <13>1 2026-11-21T14:17:28.684740+00:00 vm myapp - - \
[timeQuality tzKnown=\"1\" isSynced=\"0\"] hello oc rfc5424";
    /// omfwd `TCP_Framing="octet-counted"`, default template, two messages.
    const RSYSLOG_OC: &[u8] = b"45 <134>Nov 21 14:17:35 vm app: one from rsyslog\
45 <134>Nov 21 14:17:35 vm app: two from rsyslog";
    /// omfwd octet-counted with RSYSLOG_SyslogProtocol23Format: the count includes a `\n`.
    const RSYSLOG_OC_5424: &[u8] = b"107 <134>1 2026-11-21T14:17:43.737771+00:00 vm app - - \
[timeQuality tzKnown=\"1\" isSynced=\"0\"] one from rsyslog\n";

    /// Most bytes the decoder may keep between calls (see the module docs).
    fn bound(event_size: usize) -> usize {
        event_size + MAX_COUNT_DIGITS + 2
    }

    /// Feeds `chunks` one by one, decoding after each as FramedRead does, then EOF.
    fn run(event_size: usize, chunks: &[&[u8]]) -> (Vec<Frame>, SyslogFramer) {
        let mut f = SyslogFramer::new(event_size);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(frame) = f.decode(&mut buf).unwrap() {
                out.push(frame);
            }
            assert!(
                buf.len() <= bound(f.event_size()),
                "buffer holds {} bytes",
                buf.len()
            );
        }
        while let Some(frame) = f.decode_eof(&mut buf).unwrap() {
            out.push(frame);
        }
        assert!(buf.is_empty());
        (out, f)
    }

    fn whole(event_size: usize, stream: &[u8]) -> Vec<Frame> {
        run(event_size, &[stream]).0
    }

    fn msgs(frames: &[Frame]) -> Vec<(&[u8], bool)> {
        frames.iter().map(|f| (&f.msg[..], f.truncated)).collect()
    }

    /// The same frames however the stream is cut: one byte at a time, and at every single
    /// split point.
    fn same_when_split(event_size: usize, stream: &[u8]) -> Vec<Frame> {
        let want = whole(event_size, stream);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(event_size, &bytes).0, want, "byte by byte");
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(run(event_size, &[a, b]).0, want, "split at {cut}");
        }
        want
    }

    #[test]
    fn lines_from_logger() {
        let stream = [LOGGER_TCP_3164, LOGGER_TCP_5424].concat();
        let frames = same_when_split(2500, &stream);
        assert_eq!(
            msgs(&frames),
            [
                (&LOGGER_TCP_3164[..LOGGER_TCP_3164.len() - 1], false),
                (&LOGGER_TCP_5424[..LOGGER_TCP_5424.len() - 1], false),
            ]
        );
        let (_, f) = run(2500, &[&stream]);
        assert!(!f.is_octet_counting());
    }

    #[test]
    fn crlf_and_empty_lines() {
        let frames = same_when_split(2500, b"\r\n\n<13>a\r\n\n\r\n<14>b\n \n<15>c\r");
        assert_eq!(
            msgs(&frames),
            [
                (&b"<13>a"[..], false),
                (b"<14>b", false),
                (b" ", false),
                (b"<15>c", false)
            ]
        );
    }

    #[test]
    fn octet_counting_from_logger_and_rsyslog() {
        let frames = same_when_split(2500, &[LOGGER_OC_3164, LOGGER_OC_5424].concat());
        assert_eq!(
            msgs(&frames),
            [(&LOGGER_OC_3164[3..], false), (&LOGGER_OC_5424[4..], false)]
        );
        let frames = same_when_split(2500, RSYSLOG_OC);
        assert_eq!(
            msgs(&frames),
            [
                (&b"<134>Nov 21 14:17:35 vm app: one from rsyslog"[..], false),
                (b"<134>Nov 21 14:17:35 vm app: two from rsyslog", false),
            ]
        );
        let frames = same_when_split(2500, &[RSYSLOG_OC_5424, RSYSLOG_OC_5424].concat());
        let want = &RSYSLOG_OC_5424[4..RSYSLOG_OC_5424.len() - 1];
        assert_eq!(msgs(&frames), [(want, false), (want, false)]);
        let (_, f) = run(2500, &[RSYSLOG_OC]);
        assert!(f.is_octet_counting());
    }

    #[test]
    fn octet_frames_may_hold_line_breaks() {
        let frames = same_when_split(2500, b"11 <13>a\nb\r\nc\n5 <1>zz\n\n3 <1>");
        assert_eq!(
            msgs(&frames),
            [
                (&b"<13>a\nb\r\nc"[..], false),
                (b"<1>zz", false),
                (b"<1>", false)
            ]
        );
    }

    #[test]
    fn count_larger_than_event_size_is_cut_and_the_rest_skipped() {
        let mut stream = b"30 <13>abcdefghijklmnopqrstuvwxyz".to_vec();
        assert_eq!(stream.len(), 33);
        stream.extend_from_slice(b"5 <13>x");
        let frames = same_when_split(10, &stream);
        assert_eq!(
            msgs(&frames),
            [(&b"<13>abcdef"[..], true), (b"<13>x", false)]
        );
    }

    #[test]
    fn lines_longer_than_event_size() {
        let mut stream = b"<13>".to_vec();
        stream.extend_from_slice(&[b'x'; 100]);
        stream.extend_from_slice(b"\n<14>ok\n0123456789\n0123456789\r\n0123456789a\n");
        let frames = same_when_split(10, &stream);
        assert_eq!(
            msgs(&frames),
            [
                (&b"<13>xxxxxx"[..], true),
                (b"<14>ok", false),
                // Exactly eventSize is complete (Flume flags it Incomplete), also with `\r\n`.
                (b"0123456789", false),
                (b"0123456789", false),
                (b"0123456789", true),
            ]
        );
    }

    #[test]
    fn the_minimum_event_size_is_flumes() {
        // testExtractBadEventLarge: eventSize 5 is raised to 10.
        let frames = whole(5, b"<10> bad bad data bad bad\n<10> ok\n");
        assert_eq!(
            msgs(&frames),
            [(&b"<10> bad b"[..], true), (b"<10> ok", false)]
        );
    }

    #[test]
    fn garbage_in_an_octet_counted_stream() {
        let stream: &[u8] = b"5 <13>a\
hello 12 x\n\
12a bad\n\
99999999999 <13>huge\n\
2000000 <13>too big\n\
0 zero\n\
4 <1>b";
        let frames = same_when_split(2500, stream);
        assert_eq!(
            msgs(&frames),
            [
                (&b"<13>a"[..], false),
                (b"hello 12 x", false),
                (b"12a bad", false),
                (b"99999999999 <13>huge", false),
                (b"2000000 <13>too big", false),
                (b"0 zero", false),
                (b"<1>b", false),
            ]
        );
    }

    #[test]
    fn a_line_stream_never_switches_to_counting() {
        let frames = same_when_split(2500, b"garbage 123\n123 <13>x\n");
        assert_eq!(
            msgs(&frames),
            [(&b"garbage 123"[..], false), (b"123 <13>x", false)]
        );
    }

    #[test]
    fn end_of_stream() {
        assert_eq!(
            msgs(&whole(2500, b"<13>a\n<13>last, no newline\r")),
            [(&b"<13>a"[..], false), (b"<13>last, no newline", false)]
        );
        // Cut mid-frame by the close: delivered, flagged.
        assert_eq!(msgs(&whole(2500, b"20 <13>abc")), [(&b"<13>abc"[..], true)]);
        // Only a partial count: delivered as it is.
        assert_eq!(
            msgs(&whole(2500, b"5 <1>ab12")),
            [(&b"<1>ab"[..], false), (b"12", false)]
        );
        // Only skipped bytes or line breaks left: nothing.
        assert!(whole(2500, b"\r\n\n").is_empty());
        let mut cut = b"<13>".to_vec();
        cut.extend_from_slice(&[b'y'; 50]);
        assert_eq!(msgs(&whole(10, &cut)), [(&b"<13>yyyyyy"[..], true)]);
    }

    /// A client that never sends a newline, or claims a huge frame and keeps sending: the
    /// buffer stays under eventSize + a count header (`run` asserts it after every read).
    #[test]
    fn endless_input_keeps_memory_bounded() {
        let chunk = vec![b'z'; 4096];
        let mut chunks: Vec<&[u8]> = vec![b"<13>"];
        chunks.extend(std::iter::repeat_n(&chunk[..], 1024)); // 4 MiB
        chunks.push(b"\n<13>next\n");
        let (frames, _) = run(2500, &chunks);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].msg.len(), 2500);
        assert!(frames[0].truncated);
        assert_eq!(msgs(&frames[1..]), [(&b"<13>next"[..], false)]);

        let mut chunks: Vec<&[u8]> = vec![b"1000000 <13>"];
        let body_chunks = (1_000_000 - 4) / 4096;
        let tail = vec![b'z'; (1_000_000 - 4) % 4096];
        chunks.extend(std::iter::repeat_n(&chunk[..], body_chunks));
        chunks.push(&tail);
        chunks.push(b"4 <1>n");
        let (frames, _) = run(2500, &chunks);
        assert_eq!(frames.len(), 2);
        assert_eq!((frames[0].msg.len(), frames[0].truncated), (2500, true));
        assert_eq!(msgs(&frames[1..]), [(&b"<1>n"[..], false)]);
    }

    /// Through a real socket with tokio's FramedRead: its read buffer stays small while a
    /// client streams 8 MiB without a newline, and the messages around it arrive.
    #[tokio::test]
    async fn framed_read_over_tcp_stays_small() {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        use tokio_util::codec::FramedRead;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(LOGGER_TCP_3164).await.unwrap();
            let junk = vec![b'j'; 64 * 1024];
            for _ in 0..128 {
                s.write_all(&junk).await.unwrap();
            }
            s.write_all(b"\n").await.unwrap();
            s.write_all(LOGGER_TCP_5424).await.unwrap();
        });
        let (stream, _) = listener.accept().await.unwrap();
        let mut framed = FramedRead::new(stream, SyslogFramer::new(2500));
        let mut frames = Vec::new();
        let mut max_capacity = 0;
        while let Some(frame) = framed.next().await {
            frames.push(frame.unwrap());
            max_capacity = max_capacity.max(framed.read_buffer().capacity());
        }
        client.await.unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(
            &frames[0].msg[..],
            &LOGGER_TCP_3164[..LOGGER_TCP_3164.len() - 1]
        );
        assert_eq!((frames[1].msg.len(), frames[1].truncated), (2500, true));
        assert_eq!(
            &frames[2].msg[..],
            &LOGGER_TCP_5424[..LOGGER_TCP_5424.len() - 1]
        );
        assert!(
            max_capacity <= 64 * 1024,
            "read buffer grew to {max_capacity}"
        );
    }

    fn chunked(stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = stream;
        for &c in cuts {
            let c = c.min(rest.len());
            let (a, b) = rest.split_at(c);
            out.push(a.to_vec());
            rest = b;
        }
        out.push(rest.to_vec());
        out
    }

    fn bodies(frames: Vec<Frame>) -> Vec<Vec<u8>> {
        frames.into_iter().map(|f| f.msg.to_vec()).collect()
    }

    fn message() -> impl Strategy<Value = Vec<u8>> {
        // Starts with `<`, does not end with a line break (the framing strips those).
        proptest::collection::vec(any::<u8>(), 0..60).prop_map(|mut m| {
            m.insert(0, b'<');
            while m.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                m.pop();
            }
            m
        })
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(
            stream in proptest::collection::vec(any::<u8>(), 0..400),
            cuts in proptest::collection::vec(0usize..50, 0..10),
            event_size in 0usize..40,
        ) {
            let chunks = chunked(&stream, &cuts);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let (frames, f) = run(event_size, &refs);
            for fr in &frames {
                prop_assert!(fr.msg.len() <= f.event_size());
            }
        }

        #[test]
        fn octet_counting_round_trips(
            messages in proptest::collection::vec(message(), 1..8),
            cuts in proptest::collection::vec(0usize..40, 0..10),
        ) {
            let mut stream = Vec::new();
            for m in &messages {
                stream.extend_from_slice(format!("{} ", m.len()).as_bytes());
                stream.extend_from_slice(m);
            }
            let chunks = chunked(&stream, &cuts);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(bodies(run(2500, &refs).0), messages);
        }

        #[test]
        fn lines_round_trip(
            messages in proptest::collection::vec(
                message()
                    .prop_map(|m| m.into_iter().filter(|&b| b != b'\n').collect::<Vec<u8>>())
                    .prop_filter("no trailing CR", |m| m.last() != Some(&b'\r')),
                1..8,
            ),
            cuts in proptest::collection::vec(0usize..40, 0..10),
            crlf: bool,
        ) {
            let mut stream = Vec::new();
            for m in &messages {
                stream.extend_from_slice(m);
                stream.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            let chunks = chunked(&stream, &cuts);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(bodies(run(2500, &refs).0), messages);
        }
    }
}
