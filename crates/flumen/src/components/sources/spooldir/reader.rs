//! Deserializers of the `spooldir` source: a file becomes events, `LINE` or `BLOB`.
//!
//! A [`FileReader`] reads one file with large buffered reads (blocking; the source calls it
//! from `spawn_blocking`) and cuts batches of events from its buffer. Invariants:
//! - `offset` is the file offset of `buf[0]`: every byte before it went into an event already
//!   handed out, every byte from it on did not. The source records `offset` as progress once
//!   the batch is committed, so a restart at that offset neither loses nor repeats anything.
//! - Nothing past `limit` (the size when the file was picked up) is read; a file that ends
//!   early shrank, which the source treats as a modified file.
//!
//! `LINE`: a line ends at `\n`; the body is the line without `\n` or `\r\n`, decoded from the
//! input charset and encoded to the output charset. A line longer than `maxLineLength`
//! characters is cut into events of that many characters, as Flume's `LineDeserializer`
//! does (but a line of exactly that length gives one event, not one plus an empty one). A last
//! line without newline is still a line. When the bytes can be passed through unchanged
//! (ASCII, or same charset and valid), the body is a slice of the read buffer: no copy and no
//! allocation per line.
//!
//! `BLOB`: up to `maxBlobLength` bytes per event; the rest of a larger file becomes further
//! events, as Flume's `BlobDeserializer` does. An empty file gives no event.

use std::fs::File;
use std::io::Read;

use bytes::BytesMut;
use flumen_core::{Event, Headers};
use serde::Deserialize;

/// Size of each read buffer allocation for `LINE`.
const READ_CHUNK: usize = 256 * 1024;
/// Below this much free room, the buffer gets a fresh allocation before the next read.
const MIN_SPARE: usize = 16 * 1024;

/// A charset the text deserializer implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// UTF-8.
    Utf8,
    /// ISO-8859-1 (Latin-1): every byte is the code point of the same value.
    Latin1,
    /// US-ASCII: bytes above 0x7F are malformed.
    Ascii,
}

impl Charset {
    /// The charset named `name` (Java's canonical names and common aliases, any case).
    pub fn parse(name: &str) -> Option<Self> {
        let n: String = name
            .trim()
            .chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .collect::<String>()
            .to_ascii_uppercase();
        match n.as_str() {
            "UTF8" | "UNICODE11UTF8" => Some(Self::Utf8),
            "ISO88591" | "ISOLATIN1" | "LATIN1" | "L1" | "88591" | "CP819" | "IBM819"
            | "ISO88591:1987" | "CSISOLATIN1" => Some(Self::Latin1),
            "USASCII" | "ASCII" | "ISO646US" | "CP367" | "IBM367" | "ASCII7" | "CSASCII"
            | "ANSIX3.41968" | "ANSIX3.41986" => Some(Self::Ascii),
            _ => None,
        }
    }

    /// Appends `c` encoded; an unmappable character becomes `?`, as Java's encoders do.
    fn encode(self, c: char, out: &mut Vec<u8>) {
        match self {
            Self::Utf8 => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
            Self::Latin1 => out.push(u8::try_from(u32::from(c)).unwrap_or(b'?')),
            Self::Ascii => out.push(if c.is_ascii() { c as u8 } else { b'?' }),
        }
    }
}

/// What to do with input that is not valid in the input charset. Flume key:
/// `decodeErrorPolicy`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum DecodeErrorPolicy {
    /// Stop reading the file (the events before the bad bytes are delivered).
    Fail,
    /// Replace each malformed sequence with U+FFFD.
    Replace,
    /// Drop malformed sequences.
    Ignore,
}

/// How a file becomes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeserializerKind {
    /// One event per line (or per `max_chars` characters of a longer line).
    Line {
        /// `inputCharset`.
        input: Charset,
        /// `deserializer.outputCharset`.
        output: Charset,
        /// `decodeErrorPolicy`.
        policy: DecodeErrorPolicy,
        /// `deserializer.maxLineLength`, at least 1.
        max_chars: usize,
    },
    /// Up to `max_bytes` bytes per event.
    Blob {
        /// `deserializer.maxBlobLength`, at least 1.
        max_bytes: usize,
    },
}

/// Why a file cannot be read further.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The OS refused a read.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    /// Malformed input under `decodeErrorPolicy = FAIL`.
    #[error("undecodable input at byte offset {offset} (decodeErrorPolicy = FAIL)")]
    Decode {
        /// File offset of the first malformed byte.
        offset: u64,
    },
    /// The file ended before the size it had when it was picked up.
    #[error("the file shrank while it was being read (expected {expected} bytes, found {found})")]
    Shrank {
        /// Size at pickup.
        expected: u64,
        /// Where it ended.
        found: u64,
    },
}

/// One batch read from a file.
#[derive(Debug, Default)]
pub struct ReadBatch {
    /// The events, in file order.
    pub events: Vec<Event>,
    /// File offset just after the last byte that went into `events`.
    pub end_offset: u64,
    /// Whether the whole file has now been turned into events.
    pub at_end: bool,
    /// Malformed sequences replaced or dropped while reading this batch.
    pub malformed: u64,
}

/// One event's worth of a line, as the codec found it.
#[derive(Debug, Default, Clone, Copy)]
struct Piece {
    /// Bytes of the line it covers.
    consumed: usize,
    /// Whether it holds at least one character.
    nonempty: bool,
    /// Whether it reached `max_chars` (the line may go on).
    full: bool,
    /// Whether its body was written to the scratch buffer (else it is `buf[..consumed]`).
    owned: bool,
    /// Malformed sequences replaced or dropped.
    malformed: u64,
    /// Whether decoding stopped at malformed input under `FAIL`.
    failed: bool,
}

/// What the UTF-8/Latin-1/ASCII decoder found at the head of some bytes.
enum Next {
    Char(char, usize),
    Malformed(usize),
    /// A sequence that may be completed by bytes not read yet.
    Incomplete,
}

/// Decodes one character of `input` at the head of `bytes` (not empty). `complete` means no
/// more bytes follow, so a truncated sequence is malformed.
fn next_char(input: Charset, bytes: &[u8], complete: bool) -> Next {
    let b0 = bytes[0];
    if b0 < 0x80 {
        return Next::Char(char::from(b0), 1);
    }
    match input {
        Charset::Latin1 => Next::Char(char::from(b0), 1),
        Charset::Ascii => Next::Malformed(1),
        Charset::Utf8 => {
            let window = &bytes[..bytes.len().min(4)];
            let valid = match std::str::from_utf8(window) {
                Ok(s) => s,
                Err(e) if e.valid_up_to() > 0 => {
                    std::str::from_utf8(&window[..e.valid_up_to()]).unwrap_or_default()
                }
                Err(e) => {
                    return match e.error_len() {
                        Some(n) => Next::Malformed(n),
                        None if complete => Next::Malformed(window.len()),
                        None => Next::Incomplete,
                    };
                }
            };
            match valid.chars().next() {
                Some(c) => Next::Char(c, c.len_utf8()),
                None => Next::Malformed(1),
            }
        }
    }
}

/// Byte length of the first `max` characters of valid UTF-8 `s` (all of it if shorter), and
/// whether `max` characters were found.
fn utf8_prefix(s: &[u8], max: usize) -> (usize, bool) {
    let mut chars = 0;
    for (i, &b) in s.iter().enumerate() {
        // A character starts at every byte that is not a continuation byte.
        if (b as i8) >= -0x40 {
            if chars == max {
                return (i, true);
            }
            chars += 1;
        }
    }
    (s.len(), chars == max)
}

/// The text side of `LINE`: charsets, decode error policy, line length.
#[derive(Debug, Clone, Copy)]
struct TextCodec {
    input: Charset,
    output: Charset,
    policy: DecodeErrorPolicy,
    max_chars: usize,
}

impl TextCodec {
    /// Finds the first piece of `raw` (a line's content, or its known part when `complete` is
    /// false): up to `max_chars` characters. Fast paths return a slice; otherwise the body is
    /// written to `out`.
    fn piece(&self, raw: &[u8], complete: bool, out: &mut Vec<u8>) -> Piece {
        let max = self.max_chars;
        // ASCII is the same bytes in every supported charset.
        let head = raw.len().min(max);
        if raw[..head].is_ascii() {
            return Piece {
                consumed: head,
                nonempty: head > 0,
                full: head == max,
                ..Piece::default()
            };
        }
        match (self.input, self.output) {
            (Charset::Latin1, Charset::Latin1) => {
                return Piece {
                    consumed: head,
                    nonempty: head > 0,
                    full: head == max,
                    ..Piece::default()
                };
            }
            (Charset::Utf8, Charset::Utf8) => {
                let (valid, tail_incomplete) = match std::str::from_utf8(raw) {
                    Ok(_) => (raw.len(), false),
                    Err(e) => (e.valid_up_to(), e.error_len().is_none()),
                };
                let (len, full) = utf8_prefix(&raw[..valid], max);
                // Usable when the piece ends before any malformed byte: it is full, or the
                // input is valid to its end (or to a sequence that may still complete).
                if full || valid == raw.len() || (!complete && tail_incomplete) {
                    return Piece {
                        consumed: len,
                        nonempty: len > 0,
                        full,
                        ..Piece::default()
                    };
                }
            }
            _ => {}
        }
        self.decode_piece(raw, complete, out)
    }

    /// The general path: decode character by character into `out`.
    fn decode_piece(&self, raw: &[u8], complete: bool, out: &mut Vec<u8>) -> Piece {
        let mut p = Piece {
            owned: true,
            ..Piece::default()
        };
        let mut chars = 0;
        let mut i = 0;
        while i < raw.len() {
            if chars == self.max_chars {
                p.full = true;
                break;
            }
            match next_char(self.input, &raw[i..], complete) {
                Next::Char(c, n) => {
                    self.output.encode(c, out);
                    chars += 1;
                    i += n;
                }
                Next::Malformed(n) => {
                    match self.policy {
                        DecodeErrorPolicy::Fail => {
                            p.failed = true;
                            p.consumed = i;
                            return p;
                        }
                        DecodeErrorPolicy::Replace => {
                            self.output.encode(char::REPLACEMENT_CHARACTER, out);
                            chars += 1;
                        }
                        DecodeErrorPolicy::Ignore => {}
                    }
                    p.malformed += 1;
                    i += n;
                }
                Next::Incomplete => break,
            }
        }
        p.full |= chars == self.max_chars;
        p.consumed = i;
        p.nonempty = chars > 0;
        p
    }
}

/// Reads one file from a given offset and cuts it into batches of events.
#[derive(Debug)]
pub struct FileReader {
    file: File,
    /// Bytes read and not yet turned into events; starts at file offset `offset`.
    buf: BytesMut,
    /// File offset of `buf[0]`.
    offset: u64,
    /// Bytes of the file read so far (`offset + buf.len()`).
    read_to: u64,
    /// Size of the file when it was picked up.
    limit: u64,
    kind: DeserializerKind,
    /// Whether the head of `buf` continues a line already cut into events (a later empty
    /// remainder is then not an event).
    mid_line: bool,
    /// Set when decoding failed under `FAIL`; the next read reports it.
    failed_at: Option<u64>,
}

impl FileReader {
    /// A reader over `file`, already positioned at `offset`.
    pub fn new(file: File, offset: u64, limit: u64, kind: DeserializerKind) -> Self {
        Self {
            file,
            buf: BytesMut::new(),
            offset,
            read_to: offset,
            limit,
            kind,
            mid_line: false,
            failed_at: None,
        }
    }

    /// The open file, for `fstat` checks.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Reads up to `max_events` events, each with a clone of `headers`.
    ///
    /// # Errors
    /// A read failure, a file that shrank, or (on the call after the events before it were
    /// returned) malformed input under `FAIL`.
    pub fn read_batch(
        &mut self,
        max_events: usize,
        headers: &Headers,
    ) -> Result<ReadBatch, ReadError> {
        if let Some(offset) = self.failed_at {
            return Err(ReadError::Decode { offset });
        }
        let mut batch = ReadBatch {
            events: Vec::with_capacity(max_events.min(1024)),
            ..ReadBatch::default()
        };
        match self.kind {
            DeserializerKind::Line {
                input,
                output,
                policy,
                max_chars,
            } => {
                let codec = TextCodec {
                    input,
                    output,
                    policy,
                    max_chars,
                };
                self.read_lines(&codec, max_events, headers, &mut batch)?;
            }
            DeserializerKind::Blob { max_bytes } => {
                self.read_blobs(max_bytes, max_events, headers, &mut batch)?;
            }
        }
        if let Some(offset) = self.failed_at
            && batch.events.is_empty()
        {
            return Err(ReadError::Decode { offset });
        }
        batch.end_offset = self.offset;
        batch.at_end =
            self.failed_at.is_none() && self.buf.is_empty() && self.read_to >= self.limit;
        Ok(batch)
    }

    /// Reads more of the file into `buf`, making room for at least `room` bytes when the
    /// spare capacity is below [`MIN_SPARE`]. Returns 0 at `limit`.
    fn fill(&mut self, room: usize) -> Result<usize, ReadError> {
        let remaining = usize::try_from(self.limit - self.read_to).unwrap_or(usize::MAX);
        if remaining == 0 {
            return Ok(0);
        }
        if self.buf.capacity() - self.buf.len() < MIN_SPARE.min(remaining) {
            self.buf.reserve(room.min(remaining));
        }
        let start = self.buf.len();
        let want = (self.buf.capacity() - start).min(remaining);
        self.buf.resize(start + want, 0);
        let n = loop {
            match self.file.read(&mut self.buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(e.into());
                }
            }
        };
        self.buf.truncate(start + n);
        if n == 0 {
            return Err(ReadError::Shrank {
                expected: self.limit,
                found: self.read_to,
            });
        }
        self.read_to += n as u64;
        Ok(n)
    }

    fn read_lines(
        &mut self,
        codec: &TextCodec,
        max_events: usize,
        headers: &Headers,
        batch: &mut ReadBatch,
    ) -> Result<(), ReadError> {
        while batch.events.len() < max_events && self.failed_at.is_none() {
            if let Some(nl) = memchr::memchr(b'\n', &self.buf) {
                let content = if nl > 0 && self.buf[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                self.emit_line(
                    codec,
                    content,
                    nl + 1 - content,
                    true,
                    max_events,
                    headers,
                    batch,
                );
            } else if self.read_to >= self.limit {
                if self.buf.is_empty() {
                    break;
                }
                // The last line, without newline.
                let len = self.buf.len();
                self.emit_line(codec, len, 0, true, max_events, headers, batch);
            } else {
                if !self.buf.is_empty() {
                    // A line longer than the buffer: cut what is certain already.
                    let len = self.buf.len();
                    self.emit_line(codec, len, 0, false, max_events, headers, batch);
                    if batch.events.len() >= max_events || self.failed_at.is_some() {
                        break;
                    }
                }
                self.fill(READ_CHUNK)?;
            }
        }
        Ok(())
    }

    /// Cuts events from the line at the head of `buf`: `content` bytes, then `term` bytes of
    /// terminator. With `complete` false the line goes on beyond `buf` and only pieces that are
    /// certainly not its end are taken.
    #[allow(clippy::too_many_arguments)]
    fn emit_line(
        &mut self,
        codec: &TextCodec,
        mut content: usize,
        term: usize,
        complete: bool,
        max_events: usize,
        headers: &Headers,
        batch: &mut ReadBatch,
    ) {
        let mut scratch = Vec::new();
        while batch.events.len() < max_events {
            let piece = codec.piece(&self.buf[..content], complete, &mut scratch);
            batch.malformed += piece.malformed;
            if piece.failed {
                self.failed_at = Some(self.offset + piece.consumed as u64);
                return;
            }
            let rest = content - piece.consumed;
            let last = complete && rest == 0;
            if !last {
                // Not the line's end: only a full piece is an event, and only when what
                // follows is surely more of the line (a lone `\r` may be half of `\r\n`).
                let certain = piece.full
                    && rest > 0
                    && (complete || rest > 1 || self.buf[piece.consumed] != b'\r');
                if !certain {
                    scratch.clear();
                    return;
                }
            }
            let take = piece.consumed + if last { term } else { 0 };
            let mut chunk = self.buf.split_to(take).freeze();
            self.offset += take as u64;
            let skip = last && !piece.nonempty && self.mid_line;
            self.mid_line = !last;
            if !skip {
                let body = if piece.owned {
                    bytes::Bytes::from(std::mem::take(&mut scratch))
                } else {
                    chunk.truncate(piece.consumed);
                    chunk
                };
                batch
                    .events
                    .push(Event::with_headers(headers.clone(), body));
            }
            scratch.clear();
            if last {
                return;
            }
            content = rest;
        }
    }

    fn read_blobs(
        &mut self,
        max_bytes: usize,
        max_events: usize,
        headers: &Headers,
        batch: &mut ReadBatch,
    ) -> Result<(), ReadError> {
        while batch.events.len() < max_events {
            while self.buf.len() < max_bytes && self.read_to < self.limit {
                let room = max_bytes - self.buf.len();
                self.fill(room)?;
            }
            if self.buf.is_empty() {
                break;
            }
            let n = self.buf.len().min(max_bytes);
            let body = self.buf.split_to(n).freeze();
            self.offset += n as u64;
            batch
                .events
                .push(Event::with_headers(headers.clone(), body));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        input: Charset,
        output: Charset,
        policy: DecodeErrorPolicy,
        max: usize,
    ) -> DeserializerKind {
        DeserializerKind::Line {
            input,
            output,
            policy,
            max_chars: max,
        }
    }

    fn utf8(max: usize) -> DeserializerKind {
        line(Charset::Utf8, Charset::Utf8, DecodeErrorPolicy::Fail, max)
    }

    /// Reads all of `content` from `offset` in batches of `batch`; bodies and batch ends.
    fn read_all(
        content: &[u8],
        offset: u64,
        kind: DeserializerKind,
        batch: usize,
    ) -> (Vec<Vec<u8>>, Vec<u64>) {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, content).unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset)).unwrap();
        let mut r = FileReader::new(f, offset, content.len() as u64, kind);
        let (mut bodies, mut ends) = (Vec::new(), Vec::new());
        loop {
            let b = r.read_batch(batch, &Headers::new()).unwrap();
            bodies.extend(b.events.iter().map(|e| e.body.to_vec()));
            if b.events.is_empty() {
                assert!(b.at_end);
                return (bodies, ends);
            }
            ends.push(b.end_offset);
        }
    }

    fn strs(v: &[Vec<u8>]) -> Vec<String> {
        v.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn line_endings_empty_lines_and_last_line() {
        let (b, _) = read_all(b"a\r\n\nb\rc\nlast\r", 0, utf8(100), 10);
        assert_eq!(strs(&b), ["a", "", "b\rc", "last\r"]);
        let (b, _) = read_all(b"", 0, utf8(100), 10);
        assert!(b.is_empty());
    }

    #[test]
    fn cut_lines_never_leave_an_empty_tail_and_offsets_resume_exactly() {
        let content = b"abc\r\nabcdef\nab\n";
        let (b, ends) = read_all(content, 0, utf8(3), 1);
        assert_eq!(strs(&b), ["abc", "abc", "def", "ab"]);
        assert_eq!(ends, [5, 8, 12, 15]);
        // Resuming at any batch end gives exactly the rest.
        for (i, &end) in ends.iter().enumerate() {
            let (rest, _) = read_all(content, end, utf8(3), 1);
            assert_eq!(rest, b[i + 1..].to_vec(), "from {end}");
        }
    }

    #[test]
    fn pieces_of_a_line_not_fully_read_yet() {
        let codec = TextCodec {
            input: Charset::Utf8,
            output: Charset::Utf8,
            policy: DecodeErrorPolicy::Fail,
            max_chars: 2,
        };
        let mut out = Vec::new();
        let p = codec.piece(b"\xc3\xa9a\xc3", false, &mut out);
        assert!(p.full && !p.owned && p.consumed == 3);
        // A truncated sequence at the end waits for more bytes.
        let p = codec.piece(b"a\xc3", false, &mut out);
        assert!(!p.full && p.consumed == 1 && !p.failed);
        let p = codec.piece(b"a\xc3", true, &mut out);
        assert!(p.failed && p.consumed == 1);
    }

    #[test]
    fn transcoding_and_policies() {
        let l1 = line(Charset::Latin1, Charset::Utf8, DecodeErrorPolicy::Fail, 2);
        let (b, _) = read_all(b"\xe9\xe9\xe9\n", 0, l1, 10);
        assert_eq!(strs(&b), ["éé", "é"]);
        let to_ascii = line(Charset::Utf8, Charset::Ascii, DecodeErrorPolicy::Fail, 9);
        let (b, _) = read_all("é-x\n".as_bytes(), 0, to_ascii, 10);
        assert_eq!(strs(&b), ["?-x"]);
        let ignore = line(Charset::Utf8, Charset::Utf8, DecodeErrorPolicy::Ignore, 2);
        let (b, _) = read_all(b"ab\xff\n\xff\n", 0, ignore, 10);
        assert_eq!(strs(&b), ["ab", ""]);
    }

    #[test]
    fn fail_policy_returns_the_events_before_then_the_error() {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, b"ok\nb\xffd\n").unwrap();
        std::io::Seek::rewind(&mut f).unwrap();
        let mut r = FileReader::new(f, 0, 9, utf8(10));
        let b = r.read_batch(10, &Headers::new()).unwrap();
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.end_offset, 3);
        assert!(!b.at_end);
        assert!(matches!(
            r.read_batch(10, &Headers::new()),
            Err(ReadError::Decode { offset: 4 })
        ));
    }

    #[test]
    fn a_file_shorter_than_expected_is_reported() {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, b"ab").unwrap();
        std::io::Seek::rewind(&mut f).unwrap();
        let mut r = FileReader::new(f, 0, 10, utf8(10));
        assert!(matches!(
            r.read_batch(10, &Headers::new()),
            Err(ReadError::Shrank {
                expected: 10,
                found: 2
            })
        ));
    }

    #[test]
    fn charset_names() {
        for n in ["UTF-8", "utf8", "UTF_8"] {
            assert_eq!(Charset::parse(n), Some(Charset::Utf8), "{n}");
        }
        for n in ["ISO-8859-1", "iso8859_1", "Latin-1", "latin1", "ISO_8859-1"] {
            assert_eq!(Charset::parse(n), Some(Charset::Latin1), "{n}");
        }
        for n in ["US-ASCII", "ascii", "ASCII"] {
            assert_eq!(Charset::parse(n), Some(Charset::Ascii), "{n}");
        }
        assert_eq!(Charset::parse("UTF-16"), None);
    }
}
