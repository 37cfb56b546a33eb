//! The writer thread: group commit.
//!
//! It blocks for one request, drains every request already waiting (up to [`GROUP_BYTES`] of
//! payload), serializes them into one buffer, writes it with one positional write, syncs once,
//! applies the whole group to the state under the state mutex and then runs the completions.
//!
//! Invariants:
//! - only this thread writes segments, assigns seqs and creates segments;
//! - the state is changed only after the group's bytes are written (and synced when
//!   `fsync`), in log order, so `State::applied` always marks a prefix of the log that memory
//!   reflects exactly;
//! - a failed group leaves no trace: the segment is truncated back (or abandoned when the
//!   truncation or the sync failed), seqs are reused, every request of the group fails;
//! - the current segment keeps [`TAKE_RESERVE`] bytes allocated past its write position
//!   (`fallocate(KEEP_SIZE)`, topped up after every group): TAKE-only groups land in blocks that
//!   are already allocated, so takes keep working on a disk another process filled. A sealed
//!   segment gives its unused reservation back. When a roll is due but no new segment can be
//!   created, TAKE-only groups keep going into the current segment past `max_file_size`;
//! - the free-space reading is cached for [`SPACE_CACHE`], minus every byte written or
//!   allocated since it was taken, and taken again as soon as that estimate nears the limit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::Completion;
use crate::error::WalError;
use crate::fs::WalFile;
use crate::queue::Entry;
use crate::record::{self, MAX_RECORD_LEN, RECORD_HEADER_LEN};
use crate::replay::SegmentInfo;
use crate::segment::{self, SEGMENT_HEADER_LEN};
use crate::wal::{Shared, lock};

/// Upper bound of payload bytes drained into one group.
const GROUP_BYTES: usize = 64 << 20;
/// How long a free-space reading is trusted (minus what was written since, see `check_space`).
const SPACE_CACHE: Duration = Duration::from_millis(100);
/// Bytes kept allocated past the write position of the current segment for TAKE records (less
/// when `max_file_size` is smaller). A TAKE record of one range is 25 bytes: this is room for
/// tens of thousands of take commits on a full disk.
pub(crate) const TAKE_RESERVE: u64 = 1 << 20;

/// A message to the writer.
pub(crate) enum Request {
    /// Append a transaction.
    Commit(CommitRequest),
    /// Sync the current segment now (the `fsync_interval` tick when `fsync = false`).
    Sync,
}

/// One transaction's commit.
pub(crate) struct CommitRequest {
    /// Payloads to put.
    pub(crate) puts: Vec<Vec<u8>>,
    /// Seqs taken for good.
    pub(crate) takes: Vec<u64>,
    /// Called once with the outcome.
    pub(crate) done: Completion,
}

impl Request {
    /// Payload bytes, for the group bound.
    fn size(&self) -> usize {
        match self {
            Request::Commit(c) => c.puts.iter().map(Vec::len).sum::<usize>() + 8 * c.takes.len(),
            Request::Sync => 0,
        }
    }
}

/// The segment being appended to.
struct Current {
    id: u64,
    path: PathBuf,
    file: Arc<dyn WalFile>,
    /// Bytes written and kept (the next write offset).
    size: u64,
    /// End of the blocks known to be allocated (written or reserved): `>= size`.
    allocated: u64,
    /// A failed reservation was already logged for this segment.
    reserve_warned: bool,
    /// Going past `max_file_size` (takes on a full disk) was already logged for this segment.
    overflow_warned: bool,
}

/// A commit serialized into the group buffer, waiting for the write.
struct Planned {
    done: Completion,
    first_seq: u64,
    lens: Vec<u32>,
    /// Index of its first payload in `Unit::positions`.
    first_position: usize,
    takes: Vec<(u64, u32)>,
}

/// The part of a group that goes into one segment.
#[derive(Default)]
struct Unit {
    buf: Vec<u8>,
    /// Position in `buf` of every payload.
    positions: Vec<usize>,
    planned: Vec<Planned>,
    /// `next_seq` before this unit (restored when it fails).
    first_seq: u64,
}

/// The cached free-space reading.
struct SpaceReading {
    at: Instant,
    dir: PathBuf,
    free: u64,
    /// Bytes written or allocated since the reading (in any directory: an over-estimate is
    /// harmless, it only makes the next reading come sooner).
    consumed: u64,
}

/// State owned by the writer thread.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    /// Commit requests from `Wal::commit` and sync ticks from the background thread; when every
    /// sender is gone the writer syncs and exits.
    rx: Receiver<Request>,
    current: Option<Current>,
    next_segment: u64,
    next_seq: u64,
    space: Option<SpaceReading>,
    last_sync: Instant,
    /// Bytes written since the last sync.
    unsynced: bool,
    /// False once the filesystem said it cannot `fallocate`: no take reserve then.
    reserve_supported: bool,
}

/// Runs a completion, containing a panic in it so the writer survives.
fn complete(done: Completion, result: Result<(), WalError>) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| done(result))).is_err() {
        tracing::error!("A WAL commit completion panicked.");
    }
}

impl Writer {
    /// A writer that will create segment `next_segment` first and assign seqs from `next_seq`.
    pub(crate) fn new(
        shared: Arc<Shared>,
        rx: Receiver<Request>,
        next_segment: u64,
        next_seq: u64,
    ) -> Self {
        let last_sync = shared.clock.now();
        Writer {
            shared,
            rx,
            current: None,
            next_segment,
            next_seq,
            space: None,
            last_sync,
            unsynced: false,
            reserve_supported: true,
        }
    }

    /// The thread body: runs until every sender is dropped.
    pub(crate) fn run(mut self) {
        while let Ok(first) = self.rx.recv() {
            let mut bytes = first.size();
            let mut batch = vec![first];
            while bytes < GROUP_BYTES {
                match self.rx.try_recv() {
                    Ok(r) => {
                        bytes += r.size();
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.process(batch);
        }
        self.sync_now();
    }

    /// Writes one group.
    fn process(&mut self, batch: Vec<Request>) {
        let mut commits = Vec::with_capacity(batch.len());
        let mut sync = false;
        for r in batch {
            match r {
                Request::Sync => sync = true,
                Request::Commit(c) => commits.push(c),
            }
        }
        if commits.iter().any(|c| !c.puts.is_empty())
            && let Err(full) = self.check_space()
        {
            let (refused, kept): (Vec<_>, Vec<_>) =
                commits.into_iter().partition(|c| !c.puts.is_empty());
            for c in refused {
                complete(c.done, Err(full.duplicate()));
            }
            commits = kept;
        }
        let mut unit = Unit {
            first_seq: self.next_seq,
            ..Unit::default()
        };
        for mut c in commits {
            let ranges = record::seq_ranges(&mut c.takes);
            let put_len = if c.puts.is_empty() {
                0
            } else {
                record::put_record_len(&c.puts)
            };
            let take_len = if ranges.is_empty() {
                0
            } else {
                record::take_record_len(ranges.len())
            };
            let max = u64::from(MAX_RECORD_LEN) + RECORD_HEADER_LEN as u64;
            if put_len > max || take_len > max || u32::try_from(c.puts.len()).is_err() {
                complete(
                    c.done,
                    Err(WalError::TooLarge {
                        size: put_len.max(take_len),
                        max,
                    }),
                );
                continue;
            }
            if self
                .next_seq
                .checked_add(c.puts.len() as u64)
                .is_none_or(|end| end == u64::MAX)
            {
                let file = self
                    .current
                    .as_ref()
                    .map(|s| s.path.clone())
                    .unwrap_or_default();
                let reason = "sequence numbers exhausted".to_string();
                complete(
                    c.done,
                    Err(WalError::Corrupt {
                        file,
                        offset: 0,
                        reason,
                    }),
                );
                continue;
            }
            let size = put_len + take_len;
            let used = self
                .current
                .as_ref()
                .map(|s| s.size + unit.buf.len() as u64);
            let roll = match used {
                None => true,
                Some(used) => {
                    used > SEGMENT_HEADER_LEN && used + size > self.shared.config.max_file_size
                }
            };
            if roll {
                self.flush(&mut unit);
                if let Err(e) = self.roll() {
                    match self.current.as_mut() {
                        // `max_file_size` is a soft limit for takes: a TAKE-only commit goes
                        // into the current segment (and its reserve) rather than failing, so a
                        // full disk still drains.
                        Some(cur) if c.puts.is_empty() => {
                            if !cur.overflow_warned {
                                cur.overflow_warned = true;
                                tracing::warn!(
                                    file = %cur.path.display(), size = cur.size, error = %e,
                                    "Cannot start a new WAL segment; takes continue in the current one past maxFileSize."
                                );
                            }
                        }
                        _ => {
                            complete(c.done, Err(e));
                            continue;
                        }
                    }
                }
            }
            let first_seq = self.next_seq;
            let first_position = unit.positions.len();
            if !c.puts.is_empty() {
                record::encode_put(&mut unit.buf, first_seq, &c.puts, &mut unit.positions);
                self.next_seq += c.puts.len() as u64;
            }
            if !ranges.is_empty() {
                record::encode_take(&mut unit.buf, &ranges);
            }
            let lens = c.puts.iter().map(|p| p.len() as u32).collect();
            unit.planned.push(Planned {
                done: c.done,
                first_seq,
                lens,
                first_position,
                takes: ranges,
            });
        }
        self.flush(&mut unit);
        if sync {
            self.sync_now();
        }
    }

    /// Writes, syncs and applies a unit, then completes its requests; leaves `unit` empty and
    /// ready for the next commits.
    fn flush(&mut self, unit: &mut Unit) {
        self.write_unit(unit);
        unit.first_seq = self.next_seq;
    }

    /// The body of [`Writer::flush`].
    fn write_unit(&mut self, unit: &mut Unit) {
        let planned = std::mem::take(&mut unit.planned);
        let buf = std::mem::take(&mut unit.buf);
        let positions = std::mem::take(&mut unit.positions);
        let first_seq = unit.first_seq;
        if planned.is_empty() {
            return;
        }
        let now = self.shared.clock.now();
        let config = &self.shared.config;
        let want_sync =
            config.fsync || now.saturating_duration_since(self.last_sync) >= config.fsync_interval;
        let Some(cur) = self.current.as_mut() else {
            // Unreachable: `process` rolls before planning into a unit.
            self.next_seq = first_seq;
            for p in planned {
                complete(p.done, Err(WalError::Closed));
            }
            return;
        };
        let at = cur.size;
        let mut failed_sync = false;
        let mut result = cur
            .file
            .write_all_at(&buf, at)
            .map_err(|e| WalError::io(&cur.path, "write", e));
        if result.is_ok() && want_sync {
            result = cur
                .file
                .sync_data()
                .map_err(|e| WalError::io(&cur.path, "fdatasync", e));
            failed_sync = result.is_err();
        }
        if let Err(e) = result {
            self.next_seq = first_seq;
            let truncated = cur.file.set_len(at);
            // The truncation also released the reservation past `at`.
            cur.allocated = at;
            tracing::error!(
                file = %cur.path.display(), offset = at, requests = planned.len(), error = %e,
                "WAL group write failed; its commits fail."
            );
            if failed_sync || truncated.is_err() {
                // After a failed fdatasync the page cache can no longer be trusted, and after a
                // failed truncation the tail holds a partial group: never append here again.
                tracing::error!(file = %cur.path.display(), "Abandoning WAL segment after a failure.");
                self.current = None;
                self.unsynced = false;
            }
            for p in planned {
                complete(p.done, Err(e.duplicate()));
            }
            self.ensure_reserve();
            return;
        }
        cur.size = at + buf.len() as u64;
        let grown = cur.size.saturating_sub(cur.allocated);
        cur.allocated = cur.allocated.max(cur.size);
        if want_sync {
            self.last_sync = now;
            self.unsynced = false;
        } else {
            self.unsynced = true;
        }
        let (id, size) = (cur.id, cur.size);
        {
            let mut st = lock(&self.shared.state);
            for p in &planned {
                let pos = positions.get(p.first_position..).unwrap_or_default();
                for ((len, pos), seq) in p.lens.iter().zip(pos).zip(p.first_seq..) {
                    let offset = (at + *pos as u64) as u32;
                    st.queue.push(Entry {
                        seq,
                        segment: id,
                        offset,
                        len: *len,
                    });
                }
                for &(start, n) in &p.takes {
                    for seq in start..start + u64::from(n) {
                        st.queue.remove(seq);
                    }
                }
            }
            st.next_seq = self.next_seq;
            st.applied = (id, size);
            if let Some(info) = st.segments.get_mut(&id) {
                info.size = size;
            }
        }
        self.consume(grown);
        // Before completing: once a commit returns, the take reserve behind it is in place.
        self.ensure_reserve();
        for p in planned {
            complete(p.done, Ok(()));
        }
    }

    /// Syncs the current segment if it has unsynced bytes.
    fn sync_now(&mut self) {
        if !self.unsynced {
            return;
        }
        if let Some(cur) = &self.current
            && let Err(e) = cur.file.sync_data()
        {
            tracing::error!(
                file = %cur.path.display(), error = %e,
                "WAL fdatasync failed; commits acknowledged since the last sync may be lost."
            );
            self.current = None;
        }
        self.unsynced = false;
        self.last_sync = self.shared.clock.now();
    }

    /// Starts a new segment (header written, file and directory synced, registered in the
    /// state, take reserve allocated) and seals the current one (synced, its unused reserve given
    /// back).
    ///
    /// # Errors
    /// `WalError::Io` naming the new segment. The current segment, if any, is then kept (with its
    /// reserve) and the next group tries again.
    pub(crate) fn roll(&mut self) -> Result<(), WalError> {
        self.sync_now();
        let id = self.next_segment;
        let path = segment::path_for(&self.shared.config.data_dirs, id);
        let fs = &self.shared.fs;
        let file = fs
            .create(&path)
            .map_err(|e| WalError::io(&path, "create", e))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let setup = file
            .write_all_at(&segment::encode_header(id), 0)
            .map_err(|e| WalError::io(&path, "write", e))
            .and_then(|()| {
                file.sync_data()
                    .map_err(|e| WalError::io(&path, "fdatasync", e))
            })
            .and_then(|()| {
                fs.sync_dir(dir)
                    .map_err(|e| WalError::io(dir, "sync directory", e))
            });
        if let Err(e) = setup {
            if let Err(rm) = fs.remove(&path) {
                tracing::warn!(file = %path.display(), error = %rm, "Could not remove a failed WAL segment.");
            }
            return Err(e);
        }
        // Seal the old segment: its data is synced; give back the blocks reserved past its end
        // (truncating to the same size releases them) so the new segment can reserve them.
        if let Some(old) = self.current.take()
            && old.allocated > old.size
            && let Err(e) = old.file.set_len(old.size)
        {
            tracing::warn!(file = %old.path.display(), error = %e, "Could not release the reserve of a sealed WAL segment.");
        }
        self.consume(SEGMENT_HEADER_LEN);
        self.next_segment += 1;
        lock(&self.shared.state).segments.insert(
            id,
            SegmentInfo {
                path: path.clone(),
                size: SEGMENT_HEADER_LEN,
            },
        );
        self.current = Some(Current {
            id,
            path,
            file,
            size: SEGMENT_HEADER_LEN,
            allocated: SEGMENT_HEADER_LEN,
            reserve_warned: false,
            overflow_warned: false,
        });
        self.ensure_reserve();
        Ok(())
    }

    /// Makes sure at least the take reserve is allocated past the write position of the current
    /// segment (best effort: a failure is logged once per segment; a filesystem without
    /// `fallocate` turns reservations off).
    fn ensure_reserve(&mut self) {
        if !self.reserve_supported {
            return;
        }
        let want = TAKE_RESERVE.min(self.shared.config.max_file_size);
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if cur.allocated >= cur.size + want {
            return;
        }
        // Top up with some slack, so the reserve is not re-allocated after every group.
        let mut result = Ok(());
        for target in [cur.size + want + want / 8, cur.size + want] {
            result = cur.file.allocate(cur.allocated, target - cur.allocated);
            if result.is_ok() {
                let grown = target - cur.allocated;
                cur.allocated = target;
                self.consume(grown);
                return;
            }
        }
        let Err(e) = result else { return };
        if e.kind() == std::io::ErrorKind::Unsupported || e.raw_os_error() == Some(95) {
            tracing::info!(
                file = %cur.path.display(), error = %e,
                "The filesystem cannot preallocate; WAL takes get no reserved space on a full disk."
            );
            self.reserve_supported = false;
        } else if !cur.reserve_warned {
            cur.reserve_warned = true;
            tracing::warn!(
                file = %cur.path.display(), error = %e,
                "Could not reserve space for takes in the WAL segment."
            );
        }
    }

    /// Counts bytes written or allocated against the cached free-space reading.
    fn consume(&mut self, bytes: u64) {
        if let Some(s) = self.space.as_mut() {
            s.consumed = s.consumed.saturating_add(bytes);
        }
    }

    /// Checks free space in the current data directory (cached for [`SPACE_CACHE`]).
    fn check_space(&mut self) -> Result<(), WalError> {
        let dir = match &self.current {
            Some(c) => c.path.parent().map(Path::to_path_buf),
            None => segment::path_for(&self.shared.config.data_dirs, self.next_segment)
                .parent()
                .map(Path::to_path_buf),
        }
        .unwrap_or_default();
        let now = self.shared.clock.now();
        let required = self.shared.config.minimum_required_space;
        // The cached reading minus what was written and allocated since; trusted while fresh and
        // well above the limit (within `required` of it, every group reads again: a statvfs is
        // cheap next to the fsync, and a burst of writes must not run past the limit).
        let cached = match &self.space {
            Some(s) if s.dir == dir && now.saturating_duration_since(s.at) < SPACE_CACHE => {
                Some(s.free.saturating_sub(s.consumed)).filter(|f| *f >= required.saturating_mul(2))
            }
            _ => None,
        };
        let free = match cached {
            Some(free) => free,
            None => match self.shared.fs.free_space(&dir) {
                Ok(free) => {
                    self.space = Some(SpaceReading {
                        at: now,
                        dir: dir.clone(),
                        free,
                        consumed: 0,
                    });
                    free
                }
                Err(e) => {
                    // Not knowing the free space must not stop the channel: the write itself
                    // will fail with ENOSPC if the disk is really full.
                    tracing::warn!(dir = %dir.display(), error = %e, "Could not read free space.");
                    return Ok(());
                }
            },
        };
        if free < required {
            return Err(WalError::Full {
                dir,
                free,
                required,
            });
        }
        Ok(())
    }
}
