//! `flumen-wal`: the storage engine of flumen's durable file channel.
//!
//! A [`Wal`] is a durable FIFO queue of opaque payloads with transactional takes. It is
//! synchronous and std-only: one writer thread does group commit, callers read payloads
//! themselves, and every file operation goes through the injectable [`Filesystem`] (time through
//! [`Clock`]) so crash and fault tests need no processes. The flumen file channel encodes events
//! to payloads and wraps this crate in its async adapter.
//!
//! Principal types: [`Wal`], [`WalConfig`], [`Seq`], [`Taken`], [`RecoveryReport`], [`WalError`],
//! [`Filesystem`].
//!
//! # Model and invariants
//!
//! - Every committed payload gets a sequence number ([`Seq`]), increasing in commit order; seq
//!   order is log order (the writer assigns seqs while serializing).
//! - Live state = committed puts − committed takes. The queue is the live entries not in flight,
//!   sorted by seq. [`Wal::take`] moves entries from the head into flight; [`Wal::rollback`]
//!   returns them at their sorted place; a committed take removes them for good.
//! - **Sorted-queue argument.** Takes pop the head and new puts get larger seqs than anything
//!   that exists, so an entry that was never taken is larger than every entry taken before it.
//!   A rolled-back entry is therefore smaller than every never-taken entry: it belongs at the
//!   head, among (at most) the other rolled-back entries there. With one taker that is a plain
//!   prepend; with several takers rolling back in the opposite order of their takes it is a
//!   binary search and an insert a few places from the front. (The brief's sketch said "always at
//!   the head"; that is only true for one taker, see `queue.rs`.)
//! - Records are appended **only at commit**: a put commit writes one PUT record holding all its
//!   payloads, a take commit one TAKE record holding the taken seqs as ranges. A record is its
//!   own commit: a torn record is a commit that never returned, and an uncommitted transaction
//!   has nothing on disk to undo.
//! - The in-memory index holds 24 bytes per entry (seq, segment, offset, len), never payloads:
//!   1,000,000 queued entries cost 24 MB.
//!
//! # On-disk layout (format version 1, frozen)
//!
//! ```text
//! <data_dir>/log-<segment id, 20 digits>.wal   segments; ids increase; segment i lives in
//!                                             data_dirs[i % data_dirs.len()]
//! <checkpoint_dir>/checkpoint                 last complete checkpoint (written as
//!                                             checkpoint.tmp, fdatasync, rename, dir sync)
//! <checkpoint_dir>/in_use.lock                exclusive lock (File::try_lock) while open
//! <backup_checkpoint_dir>/checkpoint          copy of the checkpoint (useDualCheckpoints)
//!
//! segment:
//! +----------------------+----------------+----------+----------+-----
//! | magic "FLUMWAL1" (8) | segment_id u64 | record 1 | record 2 | ...
//! +----------------------+----------------+----------+----------+-----
//!
//! record:
//! +-------------+-------------+---------+------------------------+
//! | len u32le   | crc u32le   | kind u8 | body (len - 1 bytes)   |
//! +-------------+-------------+---------+------------------------+
//!   len = length of kind + body; crc = crc32 (crc32fast) of kind + body
//!
//! kind 1 PUT  body: first_seq u64le | count u32le
//!                   | (payload_len u32le | payload_crc u32le | payload){count}
//!                   payload_crc = crc32 (crc32fast) of the payload bytes alone
//! kind 2 TAKE body: range_count u32le | (start_seq u64le | n u32le){range_count}
//!
//! checkpoint:
//! +-------------------+--------------+--------------------+-------------------+-------------+
//! | magic "FLUMCKP1"  | next_seq u64 | replay_segment u64 | replay_offset u64 | count u64   |
//! +-------------------+--------------+--------------------+-------------------+-------------+
//! | (seq u64 | segment u64 | offset u64 | len u32){count}, strictly increasing seq          |
//! +------------------------------------------------------------------------------------------+
//! | crc32 u32 over every byte before it                                                      |
//! +------------------------------------------------------------------------------------------+
//! ```
//!
//! All integers are little-endian. An entry's (segment, offset, len) points at its payload bytes
//! inside a PUT record; the 8 bytes before them are its `payload_len` and `payload_crc`. Offsets inside a segment always fit in 32 bits: `max_file_size` is
//! clamped to `u32::MAX` and a record is at most `u32::MAX - 64` bytes (a record larger than
//! `max_file_size` gets a segment of its own).
//!
//! # Writing and fsync policy
//!
//! One writer thread (`flumen-wal-writer`) receives commit requests over a channel. It blocks for
//! one, drains every request already waiting (up to 64 MiB of records), serializes them into one
//! buffer, does one positional write and **one `fdatasync` for the whole group**, applies the group
//! to the in-memory state under the state mutex and then runs every request's completion. So
//! concurrent transactions share fsyncs and throughput grows with concurrency and batch size.
//! - `fsync = true` (Flume `fsyncPerTransaction`, default): a commit completes Ok only after its
//!   group is on disk.
//! - `fsync = false`: groups are synced at most every `fsync_interval` (and at every segment roll,
//!   checkpoint and close); a machine crash may lose up to that interval of acknowledged commits.
//! - A new segment: header written, file synced, directory synced before any record goes in.
//! - A failed write or sync truncates the segment back to the group's start and fails every
//!   request of the group (state untouched, seqs reused). After a failed sync or a failed
//!   truncation the segment is abandoned and the next group starts a new one, so a partial
//!   record is never followed by good records in the same segment.
//! - Before each group the free space of the data directory is checked: below
//!   `minimum_required_space`, PUT-carrying requests fail with [`WalError::Full`] while TAKE-only
//!   requests are still written (takes drain the disk). The check repeats every group, so puts
//!   resume by themselves. The statvfs reading is cached for ~100 ms, but every byte written or
//!   allocated since the reading is subtracted from it, and the reading is taken again whenever
//!   that estimate is within `minimum_required_space` of the limit: a burst of fast writes
//!   inside the cache window cannot run past the limit.
//! - **Take reserve.** The current segment keeps at least `TAKE_RESERVE` (1 MiB, or
//!   `max_file_size` when smaller) allocated past its write position with
//!   `fallocate(FALLOC_FL_KEEP_SIZE)`, set up when the segment is created and topped up after
//!   every group that leaves less than that (with 1/8 slack, so `fallocate` runs about once per
//!   128 KiB written; a larger slack would let a PUT that passed the space check eat further
//!   into the free space). Free space as statvfs reports it excludes the reserve, so the space
//!   check refuses PUTs before the reserve is needed, and
//!   when another process fills the disk to the last byte, TAKE-only groups still land in
//!   allocated blocks: takes (and so the drain) keep working. When a roll is due but the new
//!   segment cannot be created (ENOSPC), TAKE-only groups keep going into the current segment
//!   past `max_file_size` (a soft limit for takes); PUTs fail. A sealed segment gives its unused
//!   reserve back (truncating to its own size releases blocks past the end of file), and so does
//!   recovery for the newest segment it finds. `KEEP_SIZE` never changes the file size, so
//!   replay sees exactly the bytes written. A filesystem without `fallocate` (EOPNOTSUPP) simply
//!   runs without a reserve.
//!
//! # Checkpoint and segment deletion
//!
//! A checkpoint (every `checkpoint_interval` on a background thread, at close when
//! `checkpoint_on_close`, or on demand) records `next_seq`, the writer's *applied* position
//! (segment, offset: every record before it is reflected in memory) and every live entry (queue ∪
//! in flight: an uncommitted take must come back after a crash). It reads the index in slices,
//! releasing the state lock between them: any entry live at the snapshot instant and still live
//! when its slice is copied is included; one whose take is committed in between is left out,
//! which is harmless because that TAKE record lies after the replay position and replay would
//! remove it anyway; entries put after the snapshot are filtered by `seq < next_seq`. With
//! `fsync = false` the segment holding the applied position is synced first, so the checkpoint
//! never points past durable data.
//!
//! After a successful checkpoint (and backup copy), segments are deleted **in prefix order only**:
//! segment S goes when S is below both the checkpoint's replay segment and the smallest segment
//! any checkpointed entry lives in. Why prefix order: a TAKE record for seq s is always written
//! after the PUT of s, i.e. in the same or a later segment; deleting only a prefix guarantees
//! that every TAKE record referring to an existing segment is itself in an existing segment, so
//! a full replay without any checkpoint still reproduces the exact state. Disk use stays bounded
//! by what is queued (plus the segment being written).
//!
//! **When the checkpoint cannot be written** (the disk is full: deletion waits for a checkpoint,
//! and the checkpoint needs space, so a drained channel would stay full forever), the attempt
//! removes its `checkpoint.tmp` and then, if consumed prefix segments exist (segments that,
//! together with every older segment, hold no live entry, queued or in flight, and lie before
//! the applied position), it
//! 1. unlinks `checkpoint` (and the backup copy) and syncs the directory;
//! 2. deletes those segments, oldest first (unlinking needs no space);
//! 3. tries the checkpoint again.
//!
//! Why this is exact: without a checkpoint, recovery replays every remaining segment, and the
//! remaining segments are a suffix of the log that holds the PUT of every live entry and, by the
//! prefix argument above, every TAKE record that could refer to one of them; TAKE records of
//! seqs whose PUT was deleted are ignored as unknown, and `next_seq` is still above every seq
//! that any remaining record names. The checkpoint must go first: an old checkpoint names a
//! replay position and entries in segments about to disappear (recovery would find it damaged
//! and replay everything anyway, but only by luck of validation, not by design). A crash at any
//! point of the three steps leaves either the old checkpoint with all segments, or no checkpoint
//! with a suffix of them; both recover exactly. If the retry fails too, there is no checkpoint
//! until the next one succeeds: restarts replay the whole (bounded) log meanwhile.
//!
//! # Recovery ([`Wal::open`])
//!
//! 1. Take `in_use.lock`; failure is [`WalError::Locked`] ("another agent uses this directory").
//! 2. Load `checkpoint` (or the backup when the primary is damaged); validate magic, crc, entry
//!    order, that the replay segment exists (or is the next one) and that every entry lies inside
//!    an existing segment. Missing or damaged: report it and replay everything.
//! 3. Scan segments from the replay position in id order with 4 MiB reads, record by record:
//!    PUT adds entries, TAKE removes seqs (unknown seqs are ignored: they were removed before the
//!    checkpoint).
//! 4. Corruption (incomplete header, impossible length, crc mismatch, unknown kind, malformed
//!    body): if no valid record follows in the **newest** segment, it is a torn write: reported
//!    (file, offset, reason) and the segment truncated there. Anywhere else it is reported at
//!    ERROR and replay **resynchronises**: it searches forward byte by byte for the next offset
//!    where a complete record with a valid crc and a known kind starts, reporting the bytes
//!    skipped. A segment with a bad header is reported and skipped (an empty or header-less
//!    newest segment, a crash during a roll, is removed). A file of another format version stops
//!    the open with [`WalError::UnsupportedVersion`]: it is never modified.
//! 5. The queue is rebuilt sorted by seq, `next_seq` = max seen + 1 (never below the
//!    checkpoint's), and writing starts in a **new** segment (recovered ones are never appended).
//! 6. Everything found is returned in a [`RecoveryReport`].
//!
//! # Reads and payload checksums
//!
//! [`Wal::take`] reads each payload with the 8 bytes before it and checks `payload_len` and
//! `payload_crc`: an entry covered by a checkpoint is never replayed, so this is the only check
//! between the disk and the sink. A mismatch is logged at ERROR (file, offset, seq), counted
//! ([`Wal::corrupt_entries`]) and the entry is removed for good with an internal TAKE commit
//! instead of being returned; the other entries of the take are returned normally.
//!
//! Replay never panics on any bytes: lengths are checked before use and allocations are bounded
//! by file sizes (a fuzz target and a proptest enforce it).
//!
//! # Layout
//!
//! - `error.rs`: [`WalError`].
//! - `fs.rs`: [`Filesystem`], [`WalFile`], [`StdFilesystem`], [`Clock`], [`SystemClock`].
//! - `record.rs`: record codec. `segment.rs`: segment naming, header, windowed reader.
//! - `queue.rs`: the in-memory index (queue + in flight).
//! - `checkpoint.rs`: checkpoint write, copy, load.
//! - `replay.rs`: recovery. `writer.rs`: the group-commit writer thread.
//! - `wal.rs`: [`Wal`] itself, the background checkpoint/fsync thread, deletion.
//! - `testing.rs` (tests or feature `testing`): `FaultyFs`, `ManualClock`, crash helper.

#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod checkpoint;
mod error;
mod fs;
mod queue;
mod record;
mod replay;
mod segment;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod wal;
mod writer;

use std::path::PathBuf;
use std::time::Duration;

pub use error::WalError;
pub use fs::{Clock, Filesystem, StdFilesystem, SystemClock, WalFile};
pub use wal::Wal;

/// Floor of `minimum_required_space` (Flume enforces the same).
pub const MIN_REQUIRED_SPACE_FLOOR: u64 = 1 << 20;

/// Configuration of a [`Wal`]. Field defaults are Flume's file-channel defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalConfig {
    /// Checkpoint directory (holds `checkpoint` and `in_use.lock`). Flume: `checkpointDir`.
    pub checkpoint_dir: PathBuf,
    /// Backup checkpoint directory. Flume: `backupCheckpointDir` with `useDualCheckpoints`.
    pub backup_checkpoint_dir: Option<PathBuf>,
    /// Segment directories, at least one; segment `i` goes to `data_dirs[i % n]`. Flume:
    /// `dataDirs`.
    pub data_dirs: Vec<PathBuf>,
    /// Segment roll size in bytes. Flume: `maxFileSize`, default 2146435071. Clamped to
    /// `u32::MAX` (in-memory offsets are 32 bits).
    pub max_file_size: u64,
    /// Puts are refused while a data directory has less free space than this. Flume:
    /// `minimumRequiredSpace`, default 524288000, floor 1 MiB (enforced).
    pub minimum_required_space: u64,
    /// Time between background checkpoints; zero disables them. Flume: `checkpointInterval`,
    /// default 30 s.
    pub checkpoint_interval: Duration,
    /// Write a checkpoint at close so the next start skips replay. Flume: `checkpointOnClose`,
    /// default true.
    pub checkpoint_on_close: bool,
    /// fdatasync every group before completing its commits. Flume: `fsyncPerTransaction`,
    /// default true.
    pub fsync: bool,
    /// With `fsync = false`, the longest time written data stays unsynced. Flume:
    /// `fsyncInterval`, default 5 s.
    pub fsync_interval: Duration,
}

impl WalConfig {
    /// A configuration with Flume's defaults for everything but the directories.
    pub fn new(checkpoint_dir: impl Into<PathBuf>, data_dirs: Vec<PathBuf>) -> Self {
        WalConfig {
            checkpoint_dir: checkpoint_dir.into(),
            backup_checkpoint_dir: None,
            data_dirs,
            max_file_size: 2_146_435_071,
            minimum_required_space: 524_288_000,
            checkpoint_interval: Duration::from_secs(30),
            checkpoint_on_close: true,
            fsync: true,
            fsync_interval: Duration::from_secs(5),
        }
    }
}

/// The sequence number of a committed payload: increasing in commit order, never reused while the
/// payload is live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

/// A payload moved into flight by [`Wal::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Its sequence number: pass it to [`Wal::commit`] (takes) or [`Wal::rollback`].
    pub seq: Seq,
    /// The payload bytes as committed.
    pub payload: Vec<u8>,
}

/// Completion of a [`Wal::commit`]. Runs on the writer thread, after the group's sync: it must be
/// quick (the next group waits for it) and must not call `commit_blocking` (it would wait for
/// itself). A panic in it is caught and logged.
pub type Completion = Box<dyn FnOnce(Result<(), WalError>) + Send + 'static>;

/// What [`Wal::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    /// How the checkpoint was used.
    pub checkpoint: CheckpointStatus,
    /// Records replayed from the segments.
    pub replayed_records: u64,
    /// Live entries after recovery (all queued; nothing is in flight after a restart).
    pub recovered_entries: u64,
    /// Every corruption or anomaly found, in the order found.
    pub problems: Vec<Problem>,
    /// Wall time of the recovery.
    pub elapsed: Duration,
}

/// How recovery used the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointStatus {
    /// The primary checkpoint was valid and used.
    Loaded,
    /// There was no checkpoint: full replay.
    Missing,
    /// The checkpoint(s) were unusable (the reason): full replay.
    Damaged(String),
    /// The primary was unusable and the backup was used.
    Backup,
}

/// One anomaly found during recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file concerned.
    pub file: PathBuf,
    /// Byte offset of the problem in `file`.
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
    /// Bytes not replayed because of it (skipped while resynchronising, truncated, or a whole
    /// skipped segment).
    pub skipped_bytes: u64,
}
