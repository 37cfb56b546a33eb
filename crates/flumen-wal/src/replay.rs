//! Recovery: rebuilds the in-memory index from the checkpoint and the segments, reporting every
//! anomaly (see "Recovery" in the crate docs for the procedure).
//!
//! Invariants: never panics on any bytes; reads segments in large windows; memory is bounded by
//! the file sizes (the rebuild index holds 24 bytes per PUT payload, tombstones are compacted as
//! soon as they outnumber live entries).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::checkpoint::{self, Checkpoint};
use crate::error::WalError;
use crate::fs::{Clock, Filesystem};
use crate::queue::Entry;
use crate::record::{self, Record};
use crate::segment::{self, HeaderCheck, MAX_SEGMENT_ID, SEGMENT_HEADER_LEN, WindowReader};
use crate::{CheckpointStatus, Problem, RecoveryReport, WalConfig};

/// Marks a removed entry in the rebuild index (segment ids never reach it).
const TOMBSTONE: u64 = u64::MAX;

/// One segment file known to the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    /// Where it is.
    pub(crate) path: PathBuf,
    /// Its size in bytes.
    pub(crate) size: u64,
}

/// The result of recovery.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Live entries, strictly increasing by seq.
    pub(crate) entries: VecDeque<Entry>,
    /// The next seq to assign.
    pub(crate) next_seq: u64,
    /// Every segment on disk, by id.
    pub(crate) segments: BTreeMap<u64, SegmentInfo>,
    /// The id the new write segment must have (larger than anything seen).
    pub(crate) next_segment: u64,
    /// What was found.
    pub(crate) report: RecoveryReport,
}

/// Runs recovery (the caller holds the directory lock).
///
/// # Errors
/// `WalError::Io` when a directory or segment cannot be read (data is never skipped silently
/// because of an I/O error), `WalError::UnsupportedVersion` for files of another format version.
pub(crate) fn recover(
    fs: &dyn Filesystem,
    config: &WalConfig,
    clock: &dyn Clock,
) -> Result<Recovered, WalError> {
    let started = clock.now();
    let mut problems = Vec::new();
    let mut segments = list_segments(fs, config, &mut problems)?;
    let (ckpt, status) = load_checkpoint(fs, config, &segments, &mut problems)?;

    let mut rebuild = Rebuild::default();
    let (mut start_segment, mut start_offset) = (0, SEGMENT_HEADER_LEN);
    let mut next_segment = segments.keys().next_back().map_or(1, |id| id + 1);
    if let Some(c) = ckpt {
        rebuild.max_seq_end = c.next_seq;
        rebuild.live = c.entries.len();
        rebuild.entries = c.entries;
        (start_segment, start_offset) = (c.replay_segment, c.replay_offset);
        next_segment = next_segment.max(c.replay_segment.saturating_add(1));
    }

    let newest = segments.keys().next_back().copied();
    let ids: Vec<u64> = segments.range(start_segment..).map(|(id, _)| *id).collect();
    let mut replayed = 0u64;
    for id in ids {
        let Some(info) = segments.get(&id).cloned() else {
            continue;
        };
        let from = if id == start_segment {
            start_offset
        } else {
            SEGMENT_HEADER_LEN
        };
        let outcome = replay_segment(
            fs,
            id,
            &info,
            from,
            Some(id) == newest,
            &mut rebuild,
            &mut problems,
            &mut replayed,
        )?;
        match outcome {
            SegmentOutcome::Kept(size) => {
                if let Some(s) = segments.get_mut(&id) {
                    s.size = size;
                }
            }
            SegmentOutcome::Removed => {
                segments.remove(&id);
            }
        }
    }

    // The newest segment may still hold its take reserve (blocks allocated past its end by
    // `fallocate(KEEP_SIZE)`): writing goes on in a new segment, so give them back. Truncating
    // to its own size changes no byte.
    if let Some(info) = newest.and_then(|id| segments.get(&id)) {
        let released = fs.open(&info.path, true).and_then(|f| f.set_len(info.size));
        if let Err(e) = released {
            tracing::warn!(file = %info.path.display(), error = %e, "Could not release the reserved space of a WAL segment.");
        }
    }

    let entries = rebuild.finish();
    let report = RecoveryReport {
        checkpoint: status,
        replayed_records: replayed,
        recovered_entries: entries.len() as u64,
        problems,
        elapsed: clock.now().saturating_duration_since(started),
    };
    tracing::info!(
        checkpoint = ?report.checkpoint,
        replayed_records = report.replayed_records,
        recovered_entries = report.recovered_entries,
        problems = report.problems.len(),
        elapsed_ms = report.elapsed.as_millis() as u64,
        "WAL recovered."
    );
    Ok(Recovered {
        entries,
        next_seq: rebuild.max_seq_end,
        segments,
        next_segment: next_segment.min(MAX_SEGMENT_ID),
        report,
    })
}

/// Finds every segment file in the data directories.
fn list_segments(
    fs: &dyn Filesystem,
    config: &WalConfig,
    problems: &mut Vec<Problem>,
) -> Result<BTreeMap<u64, SegmentInfo>, WalError> {
    let mut segments: BTreeMap<u64, SegmentInfo> = BTreeMap::new();
    for dir in &config.data_dirs {
        let mut names = fs
            .list(dir)
            .map_err(|e| WalError::io(dir, "list directory", e))?;
        names.sort();
        for name in names {
            let Some(id) = segment::parse_file_name(&name) else {
                continue;
            };
            let path = dir.join(&name);
            if id > MAX_SEGMENT_ID || id == 0 {
                report(
                    problems,
                    &path,
                    0,
                    "segment id out of range; file ignored".into(),
                    0,
                );
                continue;
            }
            if let Some(first) = segments.get(&id) {
                let reason = format!(
                    "duplicate of segment {}; file ignored",
                    first.path.display()
                );
                report(problems, &path, 0, reason, 0);
                continue;
            }
            let file = fs
                .open(&path, false)
                .map_err(|e| WalError::io(&path, "open", e))?;
            let size = file.len().map_err(|e| WalError::io(&path, "stat", e))?;
            segments.insert(id, SegmentInfo { path, size });
        }
    }
    Ok(segments)
}

/// Loads the primary checkpoint, else the backup; reports damage.
fn load_checkpoint(
    fs: &dyn Filesystem,
    config: &WalConfig,
    segments: &BTreeMap<u64, SegmentInfo>,
    problems: &mut Vec<Problem>,
) -> Result<(Option<Checkpoint>, CheckpointStatus), WalError> {
    let mut damage: Option<String> = None;
    let mut dirs = vec![(config.checkpoint_dir.as_path(), false)];
    if let Some(b) = &config.backup_checkpoint_dir {
        dirs.push((b.as_path(), true));
    }
    for (dir, is_backup) in dirs {
        let path = dir.join(checkpoint::FILE_NAME);
        let result = checkpoint::load(fs, dir).and_then(|c| match c {
            Some(c) => {
                validate(&c, segments)
                    .map(|()| Some(c))
                    .map_err(|reason| WalError::Corrupt {
                        file: path.clone(),
                        offset: 0,
                        reason,
                    })
            }
            None => Ok(None),
        });
        match result {
            Ok(Some(c)) => {
                let status = if is_backup {
                    CheckpointStatus::Backup
                } else {
                    CheckpointStatus::Loaded
                };
                return Ok((Some(c), status));
            }
            Ok(None) => {}
            Err(e @ WalError::UnsupportedVersion { .. }) => return Err(e),
            Err(e) => {
                let offset = match &e {
                    WalError::Corrupt { offset, .. } => *offset,
                    _ => 0,
                };
                report(
                    problems,
                    &path,
                    offset,
                    format!("checkpoint unusable: {e}"),
                    0,
                );
                damage.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Ok((
        None,
        damage.map_or(CheckpointStatus::Missing, CheckpointStatus::Damaged),
    ))
}

/// Checks that a checkpoint is consistent with the segments on disk.
fn validate(c: &Checkpoint, segments: &BTreeMap<u64, SegmentInfo>) -> Result<(), String> {
    if c.replay_offset < SEGMENT_HEADER_LEN {
        return Err(format!(
            "replay offset {} inside the segment header",
            c.replay_offset
        ));
    }
    match segments.get(&c.replay_segment) {
        Some(s) if c.replay_offset > s.size => {
            return Err(format!(
                "replay position {} is past the end of {} ({} bytes)",
                c.replay_offset,
                s.path.display(),
                s.size
            ));
        }
        Some(_) => {}
        None if segments.range(c.replay_segment..).next().is_some() => {
            return Err(format!("replay segment {} is missing", c.replay_segment));
        }
        None => {}
    }
    let mut cached: Option<(u64, u64)> = None; // (segment id, size)
    for e in &c.entries {
        let size = match cached {
            Some((id, size)) if id == e.segment => size,
            _ => {
                let Some(s) = segments.get(&e.segment) else {
                    return Err(format!(
                        "entry {} points into missing segment {}",
                        e.seq, e.segment
                    ));
                };
                cached = Some((e.segment, s.size));
                s.size
            }
        };
        let end = u64::from(e.offset) + u64::from(e.len);
        let limit = match e.segment.cmp(&c.replay_segment) {
            std::cmp::Ordering::Less => size,
            std::cmp::Ordering::Equal => c.replay_offset,
            std::cmp::Ordering::Greater => 0,
        };
        if u64::from(e.offset) < SEGMENT_HEADER_LEN || end > limit {
            return Err(format!(
                "entry {} points outside its segment {}",
                e.seq, e.segment
            ));
        }
    }
    Ok(())
}

/// What happened to one segment during replay.
enum SegmentOutcome {
    /// Kept, with this size (smaller than before when a torn tail was truncated).
    Kept(u64),
    /// Removed (an empty newest segment: a crash during a roll).
    Removed,
}

/// Replays one segment from `from`.
#[allow(clippy::too_many_arguments)]
fn replay_segment(
    fs: &dyn Filesystem,
    id: u64,
    info: &SegmentInfo,
    from: u64,
    newest: bool,
    rebuild: &mut Rebuild,
    problems: &mut Vec<Problem>,
    replayed: &mut u64,
) -> Result<SegmentOutcome, WalError> {
    let path = &info.path;
    let io = |op: &'static str| move |e| WalError::io(path, op, e);
    let file = fs.open(path, false).map_err(io("open"))?;
    let len = file.len().map_err(io("stat"))?;
    let mut r = WindowReader::new(file, len);
    match segment::check_header(r.get(0, SEGMENT_HEADER_LEN).map_err(io("read"))?) {
        HeaderCheck::Valid(hid) if hid != id => {
            let reason = format!("header names segment {hid} but the file name says {id}");
            report(problems, path, 8, reason, 0);
        }
        HeaderCheck::Valid(_) => {}
        HeaderCheck::OtherVersion(found) => {
            return Err(WalError::UnsupportedVersion {
                file: path.clone(),
                found,
            });
        }
        HeaderCheck::Bad(reason) if newest && len < SEGMENT_HEADER_LEN => {
            // A crash between creating a segment and syncing its header: it holds no records.
            fs.remove(path).map_err(io("remove"))?;
            if let Some(dir) = path.parent() {
                fs.sync_dir(dir)
                    .map_err(|e| WalError::io(dir, "sync directory", e))?;
            }
            let reason = format!("{reason} (newest segment, removed: a crash during a roll)");
            report(problems, path, 0, reason, len);
            return Ok(SegmentOutcome::Removed);
        }
        HeaderCheck::Bad(reason) => {
            let reason = format!("{reason}; segment skipped");
            tracing::error!(file = %path.display(), reason = %reason, "WAL segment skipped.");
            report(problems, path, 0, reason, len);
            return Ok(SegmentOutcome::Kept(len));
        }
    }
    let mut at = from;
    while at < len {
        let avail = len - at;
        let head = r
            .get(at, record::RECORD_HEADER_LEN as u64)
            .map_err(io("read"))?;
        let defect = match record::check_header(head, avail) {
            Err(d) => d,
            Ok(total) => {
                let bytes = r.get(at, total as u64).map_err(io("read"))?;
                match record::decode(bytes) {
                    Ok(rec) => {
                        rebuild.apply(rec, id, at, path, problems);
                        *replayed += 1;
                        at += total as u64;
                        continue;
                    }
                    Err(d) => d,
                }
            }
        };
        match resync(&mut r, at + 1, len).map_err(io("read"))? {
            Some(next) => {
                tracing::error!(
                    file = %path.display(), offset = at, reason = %defect, skipped_bytes = next - at,
                    "Corrupt WAL record: resynchronised at the next valid record."
                );
                report(problems, path, at, defect.to_string(), next - at);
                at = next;
            }
            None if newest => {
                tracing::warn!(
                    file = %path.display(), offset = at, reason = %defect,
                    "Torn write at the end of the newest WAL segment: truncating."
                );
                let reason =
                    format!("torn write at the end of the newest segment ({defect}); truncated");
                report(problems, path, at, reason, len - at);
                let w = fs.open(path, true).map_err(io("open"))?;
                w.set_len(at).map_err(io("truncate"))?;
                w.sync_data().map_err(io("fdatasync"))?;
                return Ok(SegmentOutcome::Kept(at));
            }
            None => {
                tracing::error!(
                    file = %path.display(), offset = at, reason = %defect, skipped_bytes = len - at,
                    "Corrupt WAL record: no valid record follows in this segment."
                );
                report(problems, path, at, defect.to_string(), len - at);
                break;
            }
        }
    }
    Ok(SegmentOutcome::Kept(len))
}

/// Searches `[from, len)` for the next offset where a complete valid record starts.
fn resync(r: &mut WindowReader, from: u64, len: u64) -> std::io::Result<Option<u64>> {
    const PREFIX: u64 = record::RECORD_HEADER_LEN as u64 + 13;
    for cand in from..len {
        let avail = len - cand;
        let head = r.get(cand, PREFIX)?;
        let Ok(total) = record::check_header(head, avail) else {
            continue;
        };
        // Cheap filters before reading and checksumming the whole candidate.
        let kind = head.get(8).copied();
        let plausible = match kind {
            Some(record::KIND_PUT) => record::le_u32(head, 17)
                .is_some_and(|count| u64::from(count) * 8 + 21 <= total as u64),
            Some(record::KIND_TAKE) => {
                record::le_u32(head, 9).is_some_and(|n| u64::from(n) * 12 + 13 == total as u64)
            }
            _ => false,
        };
        if plausible && record::decode_resync(r.get(cand, total as u64)?).is_some() {
            return Ok(Some(cand));
        }
    }
    Ok(None)
}

/// Appends a problem.
fn report(problems: &mut Vec<Problem>, file: &Path, offset: u64, reason: String, skipped: u64) {
    problems.push(Problem {
        file: file.to_path_buf(),
        offset,
        reason,
        skipped_bytes: skipped,
    });
}

/// The index being rebuilt: a vector sorted by seq (PUTs arrive in increasing seq order, so this
/// is an append) with tombstones, plus a side map for the out-of-order seqs only a damaged or
/// crafted log can produce.
#[derive(Debug, Default)]
struct Rebuild {
    entries: Vec<Entry>,
    side: BTreeMap<u64, Entry>,
    /// Entries not tombstoned (in `entries` and `side`).
    live: usize,
    /// One past the largest seq seen (and at least the checkpoint's `next_seq`).
    max_seq_end: u64,
}

impl Rebuild {
    /// Applies one record found at `at` in segment `segment`.
    fn apply(
        &mut self,
        rec: Record<'_>,
        segment: u64,
        at: u64,
        path: &Path,
        problems: &mut Vec<Problem>,
    ) {
        match rec {
            Record::Put {
                first_seq, count, ..
            } => {
                self.max_seq_end = self
                    .max_seq_end
                    .max(first_seq.saturating_add(u64::from(count)));
                let mut duplicates = 0u64;
                // Payloads first: the seq counter is then never advanced past `first_seq + count`.
                for ((rel, len), seq) in rec.payloads().zip(first_seq..) {
                    let Ok(offset) = u32::try_from(at + rel as u64) else {
                        let reason = "payload beyond 4 GiB into the segment; dropped".to_string();
                        report(problems, path, at, reason, u64::from(len));
                        continue;
                    };
                    if !self.insert(Entry {
                        seq,
                        segment,
                        offset,
                        len,
                    }) {
                        duplicates += 1;
                    }
                }
                if duplicates > 0 {
                    let reason =
                        format!("{duplicates} sequence numbers already present; kept the first");
                    report(problems, path, at, reason, 0);
                }
            }
            Record::Take { .. } => {
                for (start, n) in rec.ranges() {
                    let end = start.saturating_add(u64::from(n));
                    self.max_seq_end = self.max_seq_end.max(end);
                    self.remove(start, end);
                }
                let dead = self.entries.len() - self.live.min(self.entries.len());
                if dead > 65_536 && dead > self.live {
                    self.entries.retain(|e| e.segment != TOMBSTONE);
                }
            }
        }
    }

    /// Inserts an entry; false when its seq is already live.
    fn insert(&mut self, e: Entry) -> bool {
        let after_last = self.entries.last().is_none_or(|l| e.seq > l.seq);
        if after_last && !self.side.contains_key(&e.seq) {
            self.entries.push(e);
            self.live += 1;
            return true;
        }
        if !after_last
            && let Ok(i) = self.entries.binary_search_by_key(&e.seq, |x| x.seq)
            && self.entries.get(i).is_some_and(|x| x.segment != TOMBSTONE)
        {
            return false;
        }
        if self.side.contains_key(&e.seq) {
            return false;
        }
        self.side.insert(e.seq, e);
        self.live += 1;
        true
    }

    /// Removes every live seq in `[start, end)`; unknown seqs are ignored.
    fn remove(&mut self, start: u64, end: u64) {
        let lo = self.entries.partition_point(|x| x.seq < start);
        if let Some(tail) = self.entries.get_mut(lo..) {
            for e in tail.iter_mut().take_while(|x| x.seq < end) {
                if e.segment != TOMBSTONE {
                    e.segment = TOMBSTONE;
                    self.live -= 1;
                }
            }
        }
        if !self.side.is_empty() {
            let keys: Vec<u64> = self.side.range(start..end).map(|(k, _)| *k).collect();
            for k in keys {
                self.side.remove(&k);
                self.live -= 1;
            }
        }
    }

    /// The live entries sorted by seq.
    fn finish(&mut self) -> VecDeque<Entry> {
        let mut entries = std::mem::take(&mut self.entries);
        entries.retain(|e| e.segment != TOMBSTONE);
        if !self.side.is_empty() {
            entries.extend(std::mem::take(&mut self.side).into_values());
            entries.sort_unstable_by_key(|e| e.seq);
        }
        VecDeque::from(entries)
    }
}
