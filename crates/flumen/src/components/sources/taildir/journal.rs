//! The position journal: every committed position, written right after its commit, so that a
//! process crash (SIGKILL, OOM kill, panic) re-reads at most the batch in flight instead of
//! everything committed since the last position-file write (`writePosInterval`, 3 s).
//!
//! The JSON position file stays the durable, Flume-readable record: written atomically (fsync,
//! rename) every `writePosInterval` and at shutdown. The journal (`<positionFile>.journal`)
//! only bridges the gap between two JSON writes:
//!
//! - It is an array of fixed 64-byte slots, one per followed file (a file keeps its slot while
//!   it is followed; a slot is zeroed when its file is let go and then reused). A slot holds
//!   the file's device, inode, committed position and a hash of its path, and a checksum.
//! - A dedicated thread `pwrite`s each changed slot in place, coalescing the changes that arrive
//!   while it writes or within [`ROUND_GAP`] of its last round; the source's loop only stores
//!   the new record under a mutex (and wakes the thread if it sleeps), so reading is never held
//!   up by file I/O. Nothing is fsynced: the
//!   page cache survives a process crash, and a completed `write(2)` of 64 bytes cannot be torn
//!   by one. A machine crash can lose or tear slots; the checksum rejects torn ones, and the
//!   JSON file (fsynced) is then used, as without a journal.
//! - At start the source prefers a valid journal record over the JSON entry of the same file
//!   (same device, inode and path hash, position not beyond the file's size): the journal is
//!   written after every change, the JSON only every few seconds. It then writes the JSON file
//!   with the merged positions and starts a fresh (truncated) journal; a graceful stop writes
//!   the JSON file and removes the journal. So records never outlive the run that wrote them.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Size of one slot. A power of two, so a slot never straddles a page.
pub const RECORD: usize = 64;

/// Shortest time between two write rounds. A commit after a quiet moment is written at once;
/// under a high commit rate, the changes of up to this long are written together, so the
/// thread wakes at most 1,000 times a second and costs the reading loop nothing measurable.
/// A crash can then re-read the batches committed in the last millisecond too.
pub const ROUND_GAP: Duration = Duration::from_millis(1);

/// Mixed into the checksum so that an all-zero (cleared) slot is never valid.
const CHECK_SEED: u64 = 0x7461_696c_6469_7231; // "taildir1"

/// One file's committed position, as a journal slot holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The file's device.
    pub dev: u64,
    /// The file's inode.
    pub inode: u64,
    /// Byte offset of the first byte not yet committed.
    pub pos: u64,
    /// [`path_hash`] of the file's path when the position was committed.
    pub path_hash: u64,
}

/// FNV-1a (64 bit) of `bytes`, starting from `seed`.
fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A stable hash of a path, so a slot can say which path its position belongs to without
/// holding the path (which may be long).
pub fn path_hash(path: &Path) -> u64 {
    fnv1a(0, path.as_os_str().as_bytes())
}

impl Record {
    /// The slot's bytes: four little-endian u64 fields, zero padding, then the checksum.
    pub fn encode(&self) -> [u8; RECORD] {
        let mut b = [0u8; RECORD];
        for (i, v) in [self.dev, self.inode, self.pos, self.path_hash]
            .into_iter()
            .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        let check = fnv1a(CHECK_SEED, &b[..RECORD - 8]);
        b[RECORD - 8..].copy_from_slice(&check.to_le_bytes());
        b
    }

    /// The record in a slot, or `None` for a cleared, torn or foreign slot.
    pub fn decode(b: &[u8]) -> Option<Record> {
        let b: &[u8; RECORD] = b.try_into().ok()?;
        let u = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(w)
        };
        if u(RECORD - 8) != fnv1a(CHECK_SEED, &b[..RECORD - 8]) {
            return None;
        }
        Some(Record {
            dev: u(0),
            inode: u(8),
            pos: u(16),
            path_hash: u(24),
        })
    }
}

/// Where the journal of `position_file` lives: beside it, `.journal` appended.
pub fn journal_path(position_file: &Path) -> PathBuf {
    let mut p = position_file.as_os_str().to_os_string();
    p.push(".journal");
    PathBuf::from(p)
}

/// The valid records of a journal (none when it does not exist). Blocking.
///
/// # Errors
/// The I/O error reading an existing journal.
pub fn load_blocking(path: &Path) -> std::io::Result<Vec<Record>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes
            .chunks_exact(RECORD)
            .filter_map(Record::decode)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Removes the journal after a graceful stop wrote the JSON file. Blocking.
///
/// # Errors
/// The I/O error, except "not found".
pub fn remove_blocking(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Slot changes waiting for the writer thread.
#[derive(Debug, Default)]
struct State {
    /// Slot → its new bytes; a later change of the same slot replaces an unwritten one.
    pending: HashMap<u32, [u8; RECORD]>,
    /// The writer sleeps on the condvar: a change must wake it.
    sleeping: bool,
    /// No more changes: write what is pending, then exit.
    closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The journal of a running source: records slot changes; a thread writes them.
#[derive(Debug)]
pub struct Journal {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Journal {
    /// Starts a fresh journal at `path` (an existing one is truncated by the writer thread).
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(path: PathBuf, source: Arc<str>) -> std::io::Result<Journal> {
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("taildir-journal".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || write_loop(&path, &shared, &source)
            })?;
        Ok(Journal {
            shared,
            thread: Some(thread),
        })
    }

    /// Records `slot`'s new content (`None` clears it). Cheap: no I/O, no allocation once the
    /// pending map has grown to the number of files.
    pub fn note(&self, slot: u32, record: Option<Record>) {
        let bytes = record.map_or([0u8; RECORD], |r| r.encode());
        let mut st = self.shared.lock();
        st.pending.insert(slot, bytes);
        if st.sleeping {
            st.sleeping = false;
            drop(st);
            self.shared.wake.notify_one();
        }
    }

    /// Records several slots' new contents at once: one lock, and at most one wake of the
    /// writer thread (so a round of commits costs the writer one write round).
    pub fn note_many(&self, records: impl IntoIterator<Item = (u32, Option<Record>)>) {
        let mut st = self.shared.lock();
        for (slot, record) in records {
            st.pending
                .insert(slot, record.map_or([0u8; RECORD], |r| r.encode()));
        }
        if st.sleeping && !st.pending.is_empty() {
            st.sleeping = false;
            drop(st);
            self.shared.wake.notify_one();
        }
    }

    fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
    }

    /// Writes what is pending and stops the thread. Blocking.
    pub fn close_blocking(mut self) {
        self.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Not joined: a drop may happen on the runtime. The thread writes what is pending
        // and exits by itself.
        self.close();
    }
}

/// The writer thread: waits for changes, writes each changed slot in place.
fn write_loop(path: &Path, shared: &Shared, source: &str) {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path);
    let file: Option<File> = match file {
        Ok(f) => Some(f),
        Err(error) => {
            tracing::warn!(source, file = %path.display(), %error,
                "Cannot create the position journal; a crash will re-read up to writePosInterval of lines.");
            None
        }
    };
    let mut warned = false;
    let mut batch: HashMap<u32, [u8; RECORD]> = HashMap::new();
    let mut last_round: Option<Instant> = None;
    loop {
        {
            let mut st = shared.lock();
            loop {
                if st.pending.is_empty() {
                    if st.closed {
                        return; // Everything written.
                    }
                    st.sleeping = true;
                    st = shared.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                st.sleeping = false;
                let early =
                    last_round.and_then(|t| (t + ROUND_GAP).checked_duration_since(Instant::now()));
                match early {
                    // Changes keep coming: gather them for the rest of the gap (notes do not
                    // wake the thread meanwhile).
                    Some(rest) if !st.closed => {
                        st = shared
                            .wake
                            .wait_timeout(st, rest)
                            .map_or_else(|e| e.into_inner().0, |r| r.0);
                    }
                    _ => break,
                }
            }
            std::mem::swap(&mut st.pending, &mut batch);
        }
        let Some(f) = &file else {
            batch.clear();
            continue;
        };
        for (slot, bytes) in batch.drain() {
            if let Err(error) = f.write_all_at(&bytes, u64::from(slot) * RECORD as u64)
                && !warned
            {
                warned = true;
                tracing::warn!(source, file = %path.display(), %error,
                    "Writing the position journal failed; a crash will re-read up to writePosInterval of lines.");
            }
        }
        last_round = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(inode: u64, pos: u64) -> Record {
        Record {
            dev: 2049,
            inode,
            pos,
            path_hash: path_hash(Path::new("/var/log/a.log")),
        }
    }

    #[test]
    fn records_round_trip_and_damage_is_rejected() {
        let r = rec(7, 12345);
        let b = r.encode();
        assert_eq!(Record::decode(&b), Some(r));
        assert_eq!(Record::decode(&[0u8; RECORD]), None, "a cleared slot");
        for i in [0, 17, 40, RECORD - 1] {
            let mut torn = b;
            torn[i] ^= 0x10;
            assert_eq!(Record::decode(&torn), None, "byte {i} flipped");
        }
        // Half old, half new, as a torn sector would leave it.
        let mut torn = rec(7, 1).encode();
        torn[..32].copy_from_slice(&rec(7, 99999).encode()[..32]);
        assert_eq!(Record::decode(&torn), None);
        assert_eq!(Record::decode(&b[..10]), None);
        assert_ne!(
            path_hash(Path::new("/a/b.log")),
            path_hash(Path::new("/a/b.log.1"))
        );
        assert_eq!(
            journal_path(Path::new("/s/pos.json")),
            PathBuf::from("/s/pos.json.journal")
        );
    }

    #[test]
    fn the_writer_keeps_the_last_record_of_each_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pos.json.journal");
        std::fs::write(&path, [0xAAu8; 5 * RECORD]).unwrap();
        let j = Journal::start(path.clone(), Arc::from("r1")).unwrap();
        for pos in 0..1000 {
            j.note(0, Some(rec(1, pos)));
            j.note(2, Some(rec(3, pos * 2)));
        }
        j.note(1, Some(rec(2, 5)));
        j.note(1, None);
        j.close_blocking();
        // The old content was truncated away; slot 1 is cleared.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * RECORD as u64);
        assert_eq!(
            load_blocking(&path).unwrap(),
            vec![rec(1, 999), rec(3, 1998)]
        );
        remove_blocking(&path).unwrap();
        remove_blocking(&path).unwrap();
        assert_eq!(load_blocking(&path).unwrap(), vec![]);
    }

    #[test]
    fn a_dropped_journal_still_writes_what_was_noted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let j = Journal::start(path.clone(), Arc::from("r1")).unwrap();
        j.note(0, Some(rec(1, 42)));
        drop(j);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while load_blocking(&path).unwrap() != vec![rec(1, 42)] {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}
