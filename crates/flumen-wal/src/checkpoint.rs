//! Checkpoint files: writing one atomically (tmp + fdatasync + rename + directory sync), copying it
//! to the backup directory, and loading and validating one from untrusted bytes.
//!
//! ```text
//! checkpoint := magic "FLUMCKP1" | next_seq u64le | replay_segment u64le | replay_offset u64le
//!               | count u64le | (seq u64le | segment u64le | offset u64le | len u32le){count}
//!               | crc32 u32le (over every byte before it)
//! ```
//!
//! Entries are strictly increasing by seq. The file is streamed in slices so a checkpoint of
//! 1,000,000 entries never holds a second copy of the index in memory; the count is patched into
//! the header at the end and the crc is combined from the header's and the entries' crcs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::WalError;
use crate::fs::{Filesystem, WalFile};
use crate::queue::Entry;
use crate::record::{le_u32, le_u64};

/// Magic of format version 1.
const MAGIC: &[u8; 8] = b"FLUMCKP1";
/// Magic without the version digit.
const MAGIC_FAMILY: &[u8; 7] = b"FLUMCKP";
const HEADER_LEN: u64 = 40;
const ENTRY_LEN: u64 = 28;
const TRAILER_LEN: u64 = 4;
/// Entries encoded per write.
const ENTRIES_PER_WRITE: usize = 32 * 1024;
/// File name of the checkpoint inside its directory.
pub(crate) const FILE_NAME: &str = "checkpoint";
/// File name of the checkpoint being written.
pub(crate) const TMP_NAME: &str = "checkpoint.tmp";

/// A loaded checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// The next seq the writer would have assigned.
    pub(crate) next_seq: u64,
    /// Replay starts in this segment...
    pub(crate) replay_segment: u64,
    /// ...at this offset: every record before it is reflected in `entries`.
    pub(crate) replay_offset: u64,
    /// Live entries, strictly increasing by seq.
    pub(crate) entries: Vec<Entry>,
}

/// What [`write`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    /// Entries written.
    pub(crate) count: u64,
    /// Smallest segment id among them (`None` when empty): no segment below it and below the
    /// replay segment is needed by this checkpoint.
    pub(crate) min_segment: Option<u64>,
}

/// Writes `dir/checkpoint` atomically. `next_chunk(from, out)` appends live entries with seq
/// `>= from` in seq order and returns the next `from`; it is called until it returns `end`
/// (`next_seq`).
///
/// # Errors
/// `WalError::Io` naming the file when any step fails; the previous checkpoint stays intact and
/// `checkpoint.tmp` is removed (a full disk must not keep a half-written copy).
pub(crate) fn write(
    fs: &dyn Filesystem,
    dir: &Path,
    next_seq: u64,
    replay: (u64, u64),
    next_chunk: impl FnMut(u64, &mut Vec<Entry>) -> u64,
) -> Result<Written, WalError> {
    write_tmp(fs, dir, next_seq, replay, next_chunk).inspect_err(|_| remove_tmp(fs, dir))
}

/// Removes `dir/checkpoint.tmp` if it exists (best effort: a leftover is harmless, it is never
/// read and the next checkpoint truncates it).
pub(crate) fn remove_tmp(fs: &dyn Filesystem, dir: &Path) {
    let tmp = dir.join(TMP_NAME);
    match fs.remove(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(file = %tmp.display(), error = %e, "Could not remove a leftover checkpoint file.");
        }
    }
}

/// Removes `dir/checkpoint` durably (directory synced), so the next recovery replays the whole
/// log. Missing already is fine.
///
/// # Errors
/// `WalError::Io` naming the file or directory.
pub(crate) fn remove(fs: &dyn Filesystem, dir: &Path) -> Result<(), WalError> {
    let path = dir.join(FILE_NAME);
    match fs.remove(&path) {
        Ok(()) => fs
            .sync_dir(dir)
            .map_err(|e| WalError::io(dir, "sync directory", e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WalError::io(&path, "remove", e)),
    }
}

/// The body of [`write`].
fn write_tmp(
    fs: &dyn Filesystem,
    dir: &Path,
    next_seq: u64,
    replay: (u64, u64),
    mut next_chunk: impl FnMut(u64, &mut Vec<Entry>) -> u64,
) -> Result<Written, WalError> {
    let tmp = dir.join(TMP_NAME);
    let file = fs
        .create(&tmp)
        .map_err(|e| WalError::io(&tmp, "create", e))?;
    let mut entries_crc = crc32fast::Hasher::new();
    let mut entries_len = 0u64;
    let mut count = 0u64;
    let mut min_segment: Option<u64> = None;
    let mut from = 0u64;
    let mut chunk: Vec<Entry> = Vec::with_capacity(ENTRIES_PER_WRITE);
    let mut bytes: Vec<u8> = Vec::with_capacity(ENTRIES_PER_WRITE * ENTRY_LEN as usize);
    while from < next_seq {
        chunk.clear();
        from = next_chunk(from, &mut chunk);
        bytes.clear();
        for e in &chunk {
            bytes.extend_from_slice(&e.seq.to_le_bytes());
            bytes.extend_from_slice(&e.segment.to_le_bytes());
            bytes.extend_from_slice(&u64::from(e.offset).to_le_bytes());
            bytes.extend_from_slice(&e.len.to_le_bytes());
            min_segment = Some(min_segment.map_or(e.segment, |m| m.min(e.segment)));
        }
        count += chunk.len() as u64;
        entries_crc.update(&bytes);
        file.write_all_at(&bytes, HEADER_LEN + entries_len)
            .map_err(|e| WalError::io(&tmp, "write", e))?;
        entries_len += bytes.len() as u64;
    }
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    for v in [next_seq, replay.0, replay.1, count] {
        header.extend_from_slice(&v.to_le_bytes());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header);
    crc.combine(&entries_crc);
    let io = |op, e| WalError::io(&tmp, op, e);
    file.write_all_at(&header, 0).map_err(|e| io("write", e))?;
    file.write_all_at(&crc.finalize().to_le_bytes(), HEADER_LEN + entries_len)
        .map_err(|e| io("write", e))?;
    file.sync_data().map_err(|e| io("fdatasync", e))?;
    drop(file);
    publish(fs, dir)?;
    Ok(Written { count, min_segment })
}

/// Renames `dir/checkpoint.tmp` over `dir/checkpoint` and syncs the directory.
fn publish(fs: &dyn Filesystem, dir: &Path) -> Result<(), WalError> {
    let tmp = dir.join(TMP_NAME);
    let path = dir.join(FILE_NAME);
    fs.rename(&tmp, &path)
        .map_err(|e| WalError::io(&path, "rename", e))?;
    fs.sync_dir(dir)
        .map_err(|e| WalError::io(dir, "sync directory", e))
}

/// Copies `from_dir/checkpoint` to `to_dir/checkpoint` with the same atomic procedure.
///
/// # Errors
/// `WalError::Io` naming the file that failed; `to_dir/checkpoint.tmp` is then removed.
pub(crate) fn copy(fs: &dyn Filesystem, from_dir: &Path, to_dir: &Path) -> Result<(), WalError> {
    copy_tmp(fs, from_dir, to_dir).inspect_err(|_| remove_tmp(fs, to_dir))
}

/// The body of [`copy`].
fn copy_tmp(fs: &dyn Filesystem, from_dir: &Path, to_dir: &Path) -> Result<(), WalError> {
    let src_path = from_dir.join(FILE_NAME);
    let src = fs
        .open(&src_path, false)
        .map_err(|e| WalError::io(&src_path, "open", e))?;
    let len = src.len().map_err(|e| WalError::io(&src_path, "stat", e))?;
    let tmp = to_dir.join(TMP_NAME);
    let dst = fs
        .create(&tmp)
        .map_err(|e| WalError::io(&tmp, "create", e))?;
    let mut buf = vec![0u8; (1 << 20).min(len as usize)];
    let mut at = 0u64;
    while at < len {
        let n = buf.len().min((len - at) as usize);
        let b = buf.get_mut(..n).unwrap_or_default();
        src.read_exact_at(b, at)
            .map_err(|e| WalError::io(&src_path, "read", e))?;
        dst.write_all_at(b, at)
            .map_err(|e| WalError::io(&tmp, "write", e))?;
        at += n as u64;
    }
    dst.sync_data()
        .map_err(|e| WalError::io(&tmp, "fdatasync", e))?;
    drop(dst);
    publish(fs, to_dir)
}

/// Loads `dir/checkpoint`. `Ok(None)` when there is none.
///
/// # Errors
/// - `WalError::Corrupt` (file + offset) for any byte sequence that is not a valid checkpoint;
/// - `WalError::UnsupportedVersion` for a checkpoint of another format version;
/// - `WalError::Io` when it cannot be read.
pub(crate) fn load(fs: &dyn Filesystem, dir: &Path) -> Result<Option<Checkpoint>, WalError> {
    let path = dir.join(FILE_NAME);
    let file = match fs.open(&path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(WalError::io(&path, "open", e)),
    };
    let len = file.len().map_err(|e| WalError::io(&path, "stat", e))?;
    decode(&file, len, &path).map(Some)
}

/// Decodes a checkpoint file of `len` bytes.
fn decode(file: &Arc<dyn WalFile>, len: u64, path: &PathBuf) -> Result<Checkpoint, WalError> {
    let corrupt = |offset: u64, reason: String| WalError::Corrupt {
        file: path.clone(),
        offset,
        reason,
    };
    if len < HEADER_LEN + TRAILER_LEN {
        return Err(corrupt(0, format!("checkpoint is only {len} bytes long")));
    }
    let mut header = [0u8; HEADER_LEN as usize];
    file.read_exact_at(&mut header, 0)
        .map_err(|e| WalError::io(path, "read", e))?;
    let magic = header.get(..8).unwrap_or_default();
    if magic != MAGIC {
        if magic.starts_with(MAGIC_FAMILY) {
            return Err(WalError::UnsupportedVersion {
                file: path.clone(),
                found: String::from_utf8_lossy(magic).into_owned(),
            });
        }
        return Err(corrupt(0, "bad checkpoint magic".into()));
    }
    let field = |i: usize| le_u64(&header, 8 + 8 * i).unwrap_or(0);
    let (next_seq, replay_segment, replay_offset, count) = (field(0), field(1), field(2), field(3));
    let expected = count
        .checked_mul(ENTRY_LEN)
        .and_then(|n| n.checked_add(HEADER_LEN + TRAILER_LEN));
    if expected != Some(len) {
        return Err(corrupt(
            32,
            format!("entry count {count} does not match the file size {len}"),
        ));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header);
    // `count` is bounded by the file size, so is this allocation.
    let mut entries: Vec<Entry> = Vec::with_capacity(count as usize);
    let mut buf = vec![0u8; ENTRIES_PER_WRITE * ENTRY_LEN as usize];
    let mut at = HEADER_LEN;
    let end = len - TRAILER_LEN;
    while at < end {
        let n = (buf.len() as u64).min(end - at) as usize;
        let b = buf.get_mut(..n).unwrap_or_default();
        file.read_exact_at(b, at)
            .map_err(|e| WalError::io(path, "read", e))?;
        crc.update(b);
        for (i, c) in b.chunks_exact(ENTRY_LEN as usize).enumerate() {
            let off = at + i as u64 * ENTRY_LEN;
            let seq = le_u64(c, 0).unwrap_or(0);
            let segment = le_u64(c, 8).unwrap_or(0);
            let offset = le_u64(c, 16).unwrap_or(0);
            let len = le_u32(c, 24).unwrap_or(0);
            let Ok(offset) = u32::try_from(offset) else {
                return Err(corrupt(off, format!("entry offset {offset} beyond 4 GiB")));
            };
            if entries.last().is_some_and(|p| p.seq >= seq) || seq >= next_seq {
                return Err(corrupt(off, format!("entry seq {seq} out of order")));
            }
            entries.push(Entry {
                seq,
                segment,
                offset,
                len,
            });
        }
        at += n as u64;
    }
    let mut trailer = [0u8; 4];
    file.read_exact_at(&mut trailer, end)
        .map_err(|e| WalError::io(path, "read", e))?;
    let (stored, computed) = (u32::from_le_bytes(trailer), crc.finalize());
    if stored != computed {
        return Err(corrupt(
            end,
            format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
        ));
    }
    Ok(Checkpoint {
        next_seq,
        replay_segment,
        replay_offset,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::StdFilesystem;

    fn sample() -> Vec<Entry> {
        (0..6_000u64)
            .filter(|s| s % 3 != 0)
            .map(|seq| Entry {
                seq,
                segment: 4 + seq / 1000,
                offset: 16 + seq as u32,
                len: 7,
            })
            .collect()
    }

    fn write_sample(dir: &Path) -> Written {
        let all = sample();
        write(&StdFilesystem, dir, 6_000, (9, 1234), |from, out| {
            let start = all.partition_point(|e| e.seq < from);
            let slice = all
                .get(start..(start + 1500).min(all.len()))
                .unwrap_or_default();
            out.extend_from_slice(slice);
            slice.last().map_or(6_000, |e| e.seq + 1)
        })
        .unwrap()
    }

    #[test]
    fn round_trip_and_copy() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(load(&StdFilesystem, d.path()).unwrap(), None);
        let w = write_sample(d.path());
        assert_eq!(w.count, sample().len() as u64);
        assert_eq!(w.min_segment, Some(4));
        let c = load(&StdFilesystem, d.path()).unwrap().unwrap();
        assert_eq!(
            (c.next_seq, c.replay_segment, c.replay_offset),
            (6_000, 9, 1234)
        );
        assert_eq!(c.entries, sample());
        let b = tempfile::tempdir().unwrap();
        copy(&StdFilesystem, d.path(), b.path()).unwrap();
        assert_eq!(load(&StdFilesystem, b.path()).unwrap().unwrap(), c);
    }

    #[test]
    fn every_damage_is_reported_with_offset() {
        let d = tempfile::tempdir().unwrap();
        write_sample(d.path());
        let path = d.path().join(FILE_NAME);
        let good = std::fs::read(&path).unwrap();
        // A flipped byte anywhere (sampled) and a truncation anywhere (sampled) are detected.
        for i in (0..good.len())
            .step_by(997)
            .chain([0, 8, 32, good.len() - 1])
        {
            let mut b = good.clone();
            b[i] ^= 0x40;
            std::fs::write(&path, &b).unwrap();
            let err = load(&StdFilesystem, d.path()).unwrap_err();
            assert!(
                matches!(err, WalError::Corrupt { ref file, .. } if *file == path),
                "byte {i}: {err}"
            );
        }
        for cut in [0, 3, 43, 44, 100, good.len() - 1] {
            std::fs::write(&path, &good[..cut]).unwrap();
            assert!(matches!(
                load(&StdFilesystem, d.path()),
                Err(WalError::Corrupt { .. })
            ));
        }
        let mut b = good.clone();
        b[7] = b'9';
        std::fs::write(&path, &b).unwrap();
        assert!(matches!(
            load(&StdFilesystem, d.path()),
            Err(WalError::UnsupportedVersion { .. })
        ));
    }
}
