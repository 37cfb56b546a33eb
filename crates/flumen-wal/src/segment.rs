//! Log segments: file naming, the 16-byte header, and a windowed reader for replay.
//!
//! ```text
//! <data_dir>/log-<id, 20 digits>.wal
//! header := magic "FLUMWAL1" (8 bytes) | segment_id u64le      then records to the end of file
//! ```
//!
//! Segment `id` lives in `data_dirs[id % data_dirs.len()]`; ids only grow, so id order is log
//! order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs::WalFile;
use crate::record::le_u64;

/// Magic of format version 1.
pub(crate) const SEGMENT_MAGIC: &[u8; 8] = b"FLUMWAL1";
/// The magic without its version digit: a file that matches this but not [`SEGMENT_MAGIC`] is
/// ours, from another format version, and must not be touched.
const SEGMENT_MAGIC_FAMILY: &[u8; 7] = b"FLUMWAL";
/// Header size.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 16;
/// Segment ids at or above this are ignored: keeps `id + 1` from overflowing and leaves
/// `u64::MAX` free as the replay tombstone marker.
pub(crate) const MAX_SEGMENT_ID: u64 = u64::MAX - 2;
/// Replay reads segments in windows of this size (large sequential reads, not a syscall per record).
const READ_WINDOW: usize = 4 << 20;

/// The file name of segment `id`.
pub(crate) fn file_name(id: u64) -> String {
    format!("log-{id:020}.wal")
}

/// The path of segment `id` for the given data directories (non-empty).
pub(crate) fn path_for(data_dirs: &[PathBuf], id: u64) -> PathBuf {
    let n = data_dirs.len().max(1) as u64;
    let dir = data_dirs
        .get((id % n) as usize)
        .map(PathBuf::as_path)
        .unwrap_or(Path::new("."));
    dir.join(file_name(id))
}

/// Parses a segment file name; `None` for any other file.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("log-")?.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The header of segment `id`.
pub(crate) fn encode_header(id: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..].copy_from_slice(&id.to_le_bytes());
    h
}

/// What a segment header says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeaderCheck {
    /// Version 1 header with this segment id.
    Valid(u64),
    /// Our magic, another version.
    OtherVersion(String),
    /// Not a segment header.
    Bad(&'static str),
}

/// Checks the first bytes of a segment (fewer than 16 is a bad header).
pub(crate) fn check_header(bytes: &[u8]) -> HeaderCheck {
    let Some(magic) = bytes.get(..8) else {
        return HeaderCheck::Bad("file shorter than the 16-byte segment header");
    };
    if magic != SEGMENT_MAGIC {
        if magic.starts_with(SEGMENT_MAGIC_FAMILY) {
            return HeaderCheck::OtherVersion(String::from_utf8_lossy(magic).into_owned());
        }
        return HeaderCheck::Bad("bad segment magic");
    }
    match le_u64(bytes, 8) {
        Some(id) => HeaderCheck::Valid(id),
        None => HeaderCheck::Bad("file shorter than the 16-byte segment header"),
    }
}

/// Reads a file through a sliding window: sequential decoding costs one large `pread` per window.
#[derive(Debug)]
pub(crate) struct WindowReader {
    file: Arc<dyn WalFile>,
    /// File size; no read goes past it, so the window never grows beyond the file.
    len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    start: u64,
}

impl WindowReader {
    /// A reader over the first `len` bytes of `file`.
    pub(crate) fn new(file: Arc<dyn WalFile>, len: u64) -> Self {
        WindowReader {
            file,
            len,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The bytes `[offset, offset + n)`, clipped to the end of the file.
    pub(crate) fn get(&mut self, offset: u64, n: u64) -> std::io::Result<&[u8]> {
        let n = n.min(self.len.saturating_sub(offset));
        let end = offset + n;
        let buf_end = self.start + self.buf.len() as u64;
        if offset < self.start || end > buf_end {
            // `n` is bounded by the file size, so this allocation is too.
            let want = n.max(READ_WINDOW as u64).min(self.len - offset);
            self.buf.resize(want as usize, 0);
            self.file.read_exact_at(&mut self.buf, offset)?;
            self.start = offset;
        }
        let from = (offset - self.start) as usize;
        Ok(self.buf.get(from..from + n as usize).unwrap_or(&[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(file_name(42), "log-00000000000000000042.wal");
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        for bad in [
            "log-42.wal",
            "log-0000000000000000004x.wal",
            "checkpoint",
            "log-99999999999999999999.wal",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
        let dirs = [PathBuf::from("/a"), PathBuf::from("/b")];
        assert!(path_for(&dirs, 3).starts_with("/b"));
        assert!(path_for(&dirs, 4).starts_with("/a"));
    }

    #[test]
    fn header_checks() {
        assert_eq!(check_header(&encode_header(9)), HeaderCheck::Valid(9));
        assert!(matches!(check_header(b"FLUMWAL1"), HeaderCheck::Bad(_)));
        assert!(matches!(
            check_header(b"FLUMWAL2\0\0\0\0\0\0\0\0"),
            HeaderCheck::OtherVersion(_)
        ));
        assert!(matches!(
            check_header(&[0; 16]),
            HeaderCheck::Bad("bad segment magic")
        ));
    }
}
