//! The record codec: encoding PUT and TAKE records, and decoding them from untrusted bytes.
//!
//! ```text
//! record   := len u32le | crc u32le | kind u8 | body          (len = 1 + body length)
//!             crc = crc32 (crc32fast) over kind + body
//! PUT  body := first_seq u64le | count u32le | (payload_len u32le | payload_crc u32le | payload){count}
//!             payload_crc = crc32 (crc32fast) of the payload bytes alone
//! TAKE body := range_count u32le | (start_seq u64le | n u32le){range_count}
//! ```
//!
//! Invariant: [`decode`] never panics and never allocates; it returns a [`RecordDefect`] for any
//! byte sequence that is not exactly one well-formed record. A record whose crc matches but whose
//! body is inconsistent is a defect too (it can only come from a bug or a crafted file).
//!
//! Why a per-payload crc when the record has one: an entry covered by a checkpoint is never
//! re-read as a record; `Wal::take` reads just its payload (and the 8 bytes before it) at the
//! checkpointed position, and [`check_payload`] is what catches damage done after the record was
//! written. Replay does not re-check payload crcs: the record crc already covers them.

use std::fmt;

/// Bytes before the kind byte: `len` and `crc`.
pub(crate) const RECORD_HEADER_LEN: usize = 8;
/// Kind byte of a PUT record.
pub(crate) const KIND_PUT: u8 = 1;
/// Kind byte of a TAKE record.
pub(crate) const KIND_TAKE: u8 = 2;
/// Largest `len` field accepted. Kept below `u32::MAX` so that every byte offset inside a segment
/// (header + one record at most, when the record is larger than `max_file_size`) fits in the `u32`
/// offset of an in-memory entry.
pub(crate) const MAX_RECORD_LEN: u32 = u32::MAX - 64;
/// Offset of the first payload length field inside a PUT record (header, kind, first_seq, count).
const PUT_PREFIX: usize = RECORD_HEADER_LEN + 1 + 8 + 4;
/// Bytes of one TAKE range.
const RANGE_LEN: usize = 12;
/// Bytes before each payload in a PUT body: `payload_len` and `payload_crc`.
pub(crate) const PAYLOAD_HEADER_LEN: usize = 8;

/// Why bytes are not a valid record. `Display` is the `reason` shown to operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordDefect {
    /// Fewer than 8 bytes left for the header.
    IncompleteHeader { available: u64 },
    /// `len` is 0 (a record has at least its kind byte).
    ZeroLength,
    /// `len` is larger than the format allows.
    LengthTooLarge { len: u32 },
    /// The record runs past the end of the file.
    PastEndOfFile { len: u32, available: u64 },
    /// The checksum does not match.
    CrcMismatch { stored: u32, computed: u32 },
    /// The kind byte is not PUT or TAKE.
    UnknownKind { kind: u8 },
    /// The crc matched but the PUT body is inconsistent.
    BadPut(&'static str),
    /// The crc matched but the TAKE body is inconsistent.
    BadTake(&'static str),
}

impl fmt::Display for RecordDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordDefect::IncompleteHeader { available } => {
                write!(f, "incomplete record header ({available} of 8 bytes)")
            }
            RecordDefect::ZeroLength => f.write_str("record length is 0"),
            RecordDefect::LengthTooLarge { len } => write!(f, "impossible record length {len}"),
            RecordDefect::PastEndOfFile { len, available } => write!(
                f,
                "record of {len} bytes runs past the end of the file ({available} bytes left)"
            ),
            RecordDefect::CrcMismatch { stored, computed } => {
                write!(
                    f,
                    "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            RecordDefect::UnknownKind { kind } => write!(f, "unknown record kind {kind}"),
            RecordDefect::BadPut(why) => write!(f, "malformed PUT record: {why}"),
            RecordDefect::BadTake(why) => write!(f, "malformed TAKE record: {why}"),
        }
    }
}

/// A decoded record, borrowing the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    /// Payloads with seqs `first_seq .. first_seq + count`.
    Put {
        /// Seq of the first payload.
        first_seq: u64,
        /// Number of payloads.
        count: u32,
        /// The `(payload_len | payload)*` part, already validated.
        payloads: &'a [u8],
    },
    /// Seq ranges removed for good.
    Take {
        /// The `(start | n)*` part, already validated.
        ranges: &'a [u8],
    },
}

impl<'a> Record<'a> {
    /// For a PUT: `(offset of the payload bytes from the record start, payload length)` of each
    /// payload, in seq order. Empty for a TAKE.
    pub(crate) fn payloads(&self) -> PayloadIter<'a> {
        match self {
            Record::Put { payloads, .. } => PayloadIter {
                bytes: payloads,
                pos: 0,
            },
            Record::Take { .. } => PayloadIter { bytes: &[], pos: 0 },
        }
    }

    /// For a TAKE: `(start_seq, n)` of each range. Empty for a PUT.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = (u64, u32)> + 'a {
        let bytes: &'a [u8] = match self {
            Record::Take { ranges } => ranges,
            Record::Put { .. } => &[],
        };
        bytes
            .chunks_exact(RANGE_LEN)
            .map(|c| (le_u64(c, 0).unwrap_or(0), le_u32(c, 8).unwrap_or(0)))
    }
}

/// Iterator over the payloads of a PUT record; see [`Record::payloads`].
#[derive(Debug)]
pub(crate) struct PayloadIter<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Iterator for PayloadIter<'_> {
    type Item = (usize, u32);
    fn next(&mut self) -> Option<(usize, u32)> {
        let len = le_u32(self.bytes, self.pos)?;
        let start = self.pos.checked_add(PAYLOAD_HEADER_LEN)?;
        let end = start.checked_add(len as usize)?;
        if end > self.bytes.len() {
            return None;
        }
        self.pos = end;
        Some((PUT_PREFIX + start, len))
    }
}

/// Reads a little-endian u32 at `at`, `None` when out of bounds.
pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

/// Reads a little-endian u64 at `at`, `None` when out of bounds.
pub(crate) fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

/// Encoded size of a PUT record holding `payloads`.
pub(crate) fn put_record_len<P: AsRef<[u8]>>(payloads: &[P]) -> u64 {
    payloads.iter().fold(PUT_PREFIX as u64, |acc, p| {
        acc + PAYLOAD_HEADER_LEN as u64 + p.as_ref().len() as u64
    })
}

/// Encoded size of a TAKE record for `ranges` ranges.
pub(crate) fn take_record_len(ranges: usize) -> u64 {
    (RECORD_HEADER_LEN + 1 + 4 + ranges * RANGE_LEN) as u64
}

/// Appends a PUT record to `buf`, pushing the position in `buf` of every payload's bytes to
/// `positions`.
///
/// The caller has checked with [`put_record_len`] that the record fits in [`MAX_RECORD_LEN`] and
/// that `payloads.len()` fits in a u32.
pub(crate) fn encode_put<P: AsRef<[u8]>>(
    buf: &mut Vec<u8>,
    first_seq: u64,
    payloads: &[P],
    positions: &mut Vec<usize>,
) {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER_LEN]);
    buf.push(KIND_PUT);
    buf.extend_from_slice(&first_seq.to_le_bytes());
    buf.extend_from_slice(&(payloads.len() as u32).to_le_bytes());
    for p in payloads {
        let p = p.as_ref();
        buf.extend_from_slice(&(p.len() as u32).to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(p).to_le_bytes());
        positions.push(buf.len());
        buf.extend_from_slice(p);
    }
    seal(buf, start);
}

/// Sorts and merges `seqs` into `(start, n)` ranges (duplicates dropped).
pub(crate) fn seq_ranges(seqs: &mut [u64]) -> Vec<(u64, u32)> {
    seqs.sort_unstable();
    let mut ranges: Vec<(u64, u32)> = Vec::new();
    // `u64::MAX` can never be a seq (a PUT's `first_seq + count` must not overflow), and keeping
    // it out means no range end overflows either.
    for &s in seqs.iter().filter(|&&s| s < u64::MAX) {
        match ranges.last_mut() {
            Some((start, n)) if *start + u64::from(*n) == s && *n < u32::MAX => *n += 1,
            Some((start, n)) if *start + u64::from(*n) > s => {} // duplicate
            _ => ranges.push((s, 1)),
        }
    }
    ranges
}

/// Appends a TAKE record for `ranges` to `buf`.
pub(crate) fn encode_take(buf: &mut Vec<u8>, ranges: &[(u64, u32)]) {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER_LEN]);
    buf.push(KIND_TAKE);
    buf.extend_from_slice(&(ranges.len() as u32).to_le_bytes());
    for (s, n) in ranges {
        buf.extend_from_slice(&s.to_le_bytes());
        buf.extend_from_slice(&n.to_le_bytes());
    }
    seal(buf, start);
}

/// Fills in `len` and `crc` of the record that starts at `start` and ends at the end of `buf`.
fn seal(buf: &mut [u8], start: usize) {
    let body = &buf[start + RECORD_HEADER_LEN..];
    let len = body.len() as u32;
    let crc = crc32fast::hash(body);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Why a payload read back by `take` is not what was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PayloadDefect {
    /// The `payload_len` field before it does not match the indexed length.
    Length { stored: u32, expected: u32 },
    /// The payload crc does not match.
    Crc { stored: u32, computed: u32 },
}

impl fmt::Display for PayloadDefect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadDefect::Length { stored, expected } => write!(
                f,
                "payload length field says {stored}, the index says {expected}"
            ),
            PayloadDefect::Crc { stored, computed } => write!(
                f,
                "payload checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
        }
    }
}

/// Checks one payload read back with the 8 bytes before it: `bytes` is
/// `payload_len u32le | payload_crc u32le | payload` and `len` the length the index expects.
/// Returns the payload bytes.
pub(crate) fn check_payload(bytes: &[u8], len: u32) -> Result<&[u8], PayloadDefect> {
    let stored_len = le_u32(bytes, 0).unwrap_or(u32::MAX);
    let payload = bytes
        .get(PAYLOAD_HEADER_LEN..PAYLOAD_HEADER_LEN + len as usize)
        .filter(|_| stored_len == len)
        .ok_or(PayloadDefect::Length {
            stored: stored_len,
            expected: len,
        })?;
    let stored = le_u32(bytes, 4).unwrap_or(0);
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(PayloadDefect::Crc { stored, computed });
    }
    Ok(payload)
}

/// Reads the header at the start of `bytes`, which are the `available` bytes left in the file from
/// the record start on (`bytes` may hold fewer). Returns the total record size (header included)
/// when the header is plausible.
pub(crate) fn check_header(bytes: &[u8], available: u64) -> Result<usize, RecordDefect> {
    if available < RECORD_HEADER_LEN as u64 {
        return Err(RecordDefect::IncompleteHeader { available });
    }
    let len = le_u32(bytes, 0).ok_or(RecordDefect::IncompleteHeader { available })?;
    if len == 0 {
        return Err(RecordDefect::ZeroLength);
    }
    if len > MAX_RECORD_LEN {
        return Err(RecordDefect::LengthTooLarge { len });
    }
    let total = RECORD_HEADER_LEN as u64 + u64::from(len);
    if total > available {
        return Err(RecordDefect::PastEndOfFile {
            len,
            available: available - RECORD_HEADER_LEN as u64,
        });
    }
    Ok(total as usize)
}

/// Decodes one complete record: `bytes` must be exactly the size [`check_header`] returned.
/// The checksum is checked first, so a damaged record reports "checksum mismatch".
pub(crate) fn decode(bytes: &[u8]) -> Result<Record<'_>, RecordDefect> {
    let stored = le_u32(bytes, 4).ok_or(RecordDefect::IncompleteHeader { available: 0 })?;
    let body = bytes.get(RECORD_HEADER_LEN..).unwrap_or(&[]);
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(RecordDefect::CrcMismatch { stored, computed });
    }
    structure(body)
}

/// Like [`decode`] but checks the cheap structural rules before the checksum: used while
/// resynchronising, where most candidate offsets are garbage.
pub(crate) fn decode_resync(bytes: &[u8]) -> Option<Record<'_>> {
    let body = bytes.get(RECORD_HEADER_LEN..)?;
    let record = structure(body).ok()?;
    let stored = le_u32(bytes, 4)?;
    (crc32fast::hash(body) == stored).then_some(record)
}

/// Validates kind + body.
fn structure(body: &[u8]) -> Result<Record<'_>, RecordDefect> {
    let (&kind, rest) = body.split_first().ok_or(RecordDefect::ZeroLength)?;
    match kind {
        KIND_PUT => {
            let first_seq = le_u64(rest, 0).ok_or(RecordDefect::BadPut("body too short"))?;
            let count = le_u32(rest, 8).ok_or(RecordDefect::BadPut("body too short"))?;
            let payloads = rest.get(12..).unwrap_or(&[]);
            if first_seq.checked_add(u64::from(count)).is_none() {
                return Err(RecordDefect::BadPut("sequence numbers overflow"));
            }
            if (count as usize).saturating_mul(PAYLOAD_HEADER_LEN) > payloads.len() {
                return Err(RecordDefect::BadPut("count larger than the record"));
            }
            let mut pos = 0usize;
            for _ in 0..count {
                let len = le_u32(payloads, pos).ok_or(RecordDefect::BadPut("truncated payload"))?;
                pos = pos
                    .saturating_add(PAYLOAD_HEADER_LEN)
                    .saturating_add(len as usize);
                if pos > payloads.len() {
                    return Err(RecordDefect::BadPut("payload runs past the record"));
                }
            }
            if pos != payloads.len() {
                return Err(RecordDefect::BadPut(
                    "trailing bytes after the last payload",
                ));
            }
            Ok(Record::Put {
                first_seq,
                count,
                payloads,
            })
        }
        KIND_TAKE => {
            let n = le_u32(rest, 0).ok_or(RecordDefect::BadTake("body too short"))?;
            let ranges = rest.get(4..).unwrap_or(&[]);
            if (n as usize).checked_mul(RANGE_LEN) != Some(ranges.len()) {
                return Err(RecordDefect::BadTake(
                    "range count does not match the length",
                ));
            }
            for c in ranges.chunks_exact(RANGE_LEN) {
                let start = le_u64(c, 0).unwrap_or(0);
                let len = le_u32(c, 8).unwrap_or(0);
                if start.checked_add(u64::from(len)).is_none() {
                    return Err(RecordDefect::BadTake("sequence range overflows"));
                }
            }
            Ok(Record::Take { ranges })
        }
        kind => Err(RecordDefect::UnknownKind { kind }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(first: u64, payloads: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut pos = Vec::new();
        encode_put(&mut buf, first, payloads, &mut pos);
        (buf, pos)
    }

    #[test]
    fn put_round_trip() {
        let payloads: [&[u8]; 3] = [b"a", b"", b"hello"];
        let (buf, pos) = put(7, &payloads);
        assert_eq!(buf.len() as u64, put_record_len(&payloads));
        assert_eq!(check_header(&buf, buf.len() as u64), Ok(buf.len()));
        let rec = decode(&buf).unwrap();
        assert!(matches!(
            rec,
            Record::Put {
                first_seq: 7,
                count: 3,
                ..
            }
        ));
        let got: Vec<(usize, u32)> = rec.payloads().collect();
        assert_eq!(got.len(), 3);
        for ((off, len), (p, want_pos)) in got.iter().zip(payloads.iter().zip(&pos)) {
            assert_eq!(*off, *want_pos);
            assert_eq!(&buf[*off..*off + *len as usize], *p);
        }
        assert_eq!(rec.ranges().count(), 0);
    }

    #[test]
    fn take_round_trip_and_ranges() {
        let mut seqs = vec![5, 3, 4, 9, 4, 10, 1];
        let ranges = seq_ranges(&mut seqs);
        assert_eq!(ranges, vec![(1, 1), (3, 3), (9, 2)]);
        let mut buf = Vec::new();
        encode_take(&mut buf, &ranges);
        assert_eq!(buf.len() as u64, take_record_len(3));
        let rec = decode(&buf).unwrap();
        assert_eq!(rec.ranges().collect::<Vec<_>>(), ranges);
        assert_eq!(rec.payloads().count(), 0);
    }

    #[test]
    fn header_defects() {
        let (buf, _) = put(1, &[b"xyz"]);
        assert_eq!(
            check_header(&buf[..3], 3),
            Err(RecordDefect::IncompleteHeader { available: 3 })
        );
        assert_eq!(check_header(&[0; 8], 100), Err(RecordDefect::ZeroLength));
        let mut big = [0u8; 8];
        big[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            check_header(&big, u64::MAX),
            Err(RecordDefect::LengthTooLarge { len: u32::MAX })
        );
        let short = buf.len() as u64 - 1;
        assert!(matches!(
            check_header(&buf, short),
            Err(RecordDefect::PastEndOfFile { .. })
        ));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let (buf, _) = put(1, &[b"payload one", b"two"]);
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[i] ^= 1 << bit;
                let ok = check_header(&b, b.len() as u64).and_then(|n| {
                    if n == b.len() {
                        decode(&b)
                    } else {
                        Err(RecordDefect::ZeroLength)
                    }
                });
                assert!(ok.is_err(), "flip of bit {bit} in byte {i} went unnoticed");
            }
        }
    }

    /// Builds a record with a valid crc around an arbitrary body.
    fn sealed(body: &[u8]) -> Vec<u8> {
        let mut buf = vec![0; RECORD_HEADER_LEN];
        buf.extend_from_slice(body);
        seal(&mut buf, 0);
        buf
    }

    #[test]
    fn body_defects_with_valid_crc() {
        assert_eq!(
            decode(&sealed(&[9])),
            Err(RecordDefect::UnknownKind { kind: 9 })
        );
        assert_eq!(
            decode(&sealed(&[KIND_PUT, 1, 2])),
            Err(RecordDefect::BadPut("body too short"))
        );
        let mut b = vec![KIND_PUT];
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        assert_eq!(
            decode(&sealed(&b)),
            Err(RecordDefect::BadPut("sequence numbers overflow"))
        );
        let mut b = vec![KIND_PUT];
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            decode(&sealed(&b)),
            Err(RecordDefect::BadPut("count larger than the record"))
        );
        let mut b = vec![KIND_PUT];
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&100u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            decode(&sealed(&b)),
            Err(RecordDefect::BadPut("payload runs past the record"))
        );
        let mut b = vec![KIND_PUT];
        b.extend_from_slice(&1u64.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&crc32fast::hash(&[]).to_le_bytes());
        b.push(0);
        assert_eq!(
            decode(&sealed(&b)),
            Err(RecordDefect::BadPut(
                "trailing bytes after the last payload"
            ))
        );
        assert_eq!(
            decode(&sealed(&[KIND_TAKE])),
            Err(RecordDefect::BadTake("body too short"))
        );
        let mut b = vec![KIND_TAKE];
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&[0; 12]);
        assert_eq!(
            decode(&sealed(&b)),
            Err(RecordDefect::BadTake(
                "range count does not match the length"
            ))
        );
        let mut b = vec![KIND_TAKE];
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        b.extend_from_slice(&5u32.to_le_bytes());
        assert_eq!(
            decode(&sealed(&b)),
            Err(RecordDefect::BadTake("sequence range overflows"))
        );
        // Every defect has a human-readable reason.
        assert!(
            RecordDefect::CrcMismatch {
                stored: 1,
                computed: 2
            }
            .to_string()
            .contains("checksum")
        );
    }

    #[test]
    fn payload_crc_catches_damage_under_a_valid_position() {
        let payloads: [&[u8]; 2] = [b"first payload", b"second"];
        let (buf, pos) = put(1, &payloads);
        for (p, at) in payloads.iter().zip(&pos) {
            let framed = &buf[at - PAYLOAD_HEADER_LEN..at + p.len()];
            assert_eq!(check_payload(framed, p.len() as u32), Ok(*p));
            // Every flipped bit of the length, the crc or the payload is caught.
            for i in 0..framed.len() {
                for bit in 0..8 {
                    let mut b = framed.to_vec();
                    b[i] ^= 1 << bit;
                    assert!(
                        check_payload(&b, p.len() as u32).is_err(),
                        "byte {i} bit {bit}"
                    );
                }
            }
            assert!(matches!(
                check_payload(framed, p.len() as u32 + 1),
                Err(PayloadDefect::Length { .. })
            ));
        }
        let mut b = buf[pos[1] - PAYLOAD_HEADER_LEN..].to_vec();
        *b.last_mut().unwrap() ^= 0x5A;
        let err = check_payload(&b, 6).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn resync_rejects_garbage_and_accepts_records() {
        let (buf, _) = put(3, &[b"abc"]);
        assert!(decode_resync(&buf).is_some());
        let mut bad = buf.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(decode_resync(&bad).is_none());
    }
}
