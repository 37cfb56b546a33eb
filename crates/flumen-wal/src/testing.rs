//! Test helpers (compiled for tests or with feature `testing`): a fault-injecting
//! [`FaultyFs`], a [`ManualClock`] and [`crash`].

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Wal;
use crate::fs::{Clock, Filesystem, StdFilesystem, WalFile};
use crate::wal::lock;

/// The faults a [`FaultyFs`] injects; change them at any time from the test.
#[derive(Debug, Default)]
pub struct Faults {
    /// Bytes that may still be written; a write crossing it writes what fits (a short write) and
    /// fails with ENOSPC. `None`: unlimited.
    pub write_budget: Mutex<Option<u64>>,
    /// The next this-many `sync_data` calls fail with EIO.
    pub failing_syncs: AtomicU32,
    /// The next this-many reads fail with EIO.
    pub failing_reads: AtomicU32,
    /// `set_len` fails with EIO while set.
    pub fail_set_len: AtomicBool,
    /// Reported free space (`None`: the real one).
    pub free_space: Mutex<Option<u64>>,
    /// `sync_data` calls made on files (successful or not).
    pub syncs: AtomicU64,
    /// A simulated disk: its free bytes (`None`: no simulation). While set, every byte a file
    /// grows by (writes past its allocated end, [`WalFile::allocate`]) comes out of it, a write
    /// that does not fit writes what fits and fails with ENOSPC, an allocation that does not fit
    /// fails with ENOSPC, and truncations, removals and renames over a file give space back.
    /// Writes into blocks already allocated (preallocated with `allocate`) always succeed, as on
    /// a real full disk. `free_space` reports it (unless [`Faults::free_space`] is set).
    pub disk: Mutex<Option<u64>>,
    /// Writes and allocations to files whose name contains this string fail with ENOSPC.
    pub no_space_for: Mutex<Option<String>>,
    /// `allocate` fails with EOPNOTSUPP while set (a filesystem without `fallocate`).
    pub allocate_unsupported: AtomicBool,
    /// `free_space` calls made.
    pub free_space_reads: AtomicU64,
    /// Allocated size of every file by path (a high-water mark: files are treated as allocated
    /// from offset 0).
    allocated: Mutex<HashMap<PathBuf, u64>>,
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

impl Faults {
    /// The allocated size of `path` (the file size when the file was opened, not created, here).
    pub fn allocated(&self, path: &Path) -> u64 {
        lock(&self.allocated).get(path).copied().unwrap_or(0)
    }

    /// True when writes to `path` must fail with ENOSPC ([`Faults::no_space_for`]).
    fn no_space_for(&self, path: &Path) -> bool {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        lock(&self.no_space_for)
            .as_deref()
            .is_some_and(|pat| name.is_some_and(|n| n.contains(pat)))
    }

    /// Grows the allocation of `path` to `end`, taking the growth from the simulated disk.
    /// Returns how far it could grow (== `end` unless the disk is short).
    fn grow(&self, path: &Path, end: u64) -> u64 {
        let mut allocated = lock(&self.allocated);
        let a = allocated.entry(path.to_path_buf()).or_insert(0);
        if end <= *a {
            return end;
        }
        let mut disk = lock(&self.disk);
        let grown = match disk.as_mut() {
            Some(free) => {
                let n = (end - *a).min(*free);
                *free -= n;
                *a + n
            }
            None => end,
        };
        *a = grown;
        grown
    }

    /// Releases the allocation of `path` beyond `len`.
    fn shrink(&self, path: &Path, len: u64) {
        let mut allocated = lock(&self.allocated);
        if let Some(a) = allocated.get_mut(path)
            && *a > len
        {
            if let Some(free) = lock(&self.disk).as_mut() {
                *free += *a - len;
            }
            *a = len;
        }
    }

    /// Forgets `path`, giving its allocation back.
    fn forget(&self, path: &Path) {
        if let Some(a) = lock(&self.allocated).remove(path)
            && let Some(free) = lock(&self.disk).as_mut()
        {
            *free += a;
        }
    }
}

/// A [`Filesystem`] over the real one that injects [`Faults`].
#[derive(Debug, Default, Clone)]
pub struct FaultyFs {
    /// The faults, shared with the test.
    pub faults: Arc<Faults>,
}

/// A file of a [`FaultyFs`].
#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn WalFile>,
    faults: Arc<Faults>,
    path: PathBuf,
}

/// Decrements `n` if positive; true when it was.
fn consume(n: &AtomicU32) -> bool {
    n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| v.checked_sub(1))
        .is_ok()
}

impl WalFile for FaultyFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if consume(&self.faults.failing_reads) {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.faults.no_space_for(&self.path) {
            return Err(enospc());
        }
        let end = offset + buf.len() as u64;
        let grown = self.faults.grow(&self.path, end);
        if grown < end {
            let fits = buf
                .get(..grown.saturating_sub(offset) as usize)
                .unwrap_or_default();
            self.inner.write_all_at(fits, offset)?;
            return Err(enospc());
        }
        let mut budget = lock(&self.faults.write_budget);
        if let Some(b) = budget.as_mut() {
            if (buf.len() as u64) > *b {
                let fits = buf.get(..*b as usize).unwrap_or_default();
                self.inner.write_all_at(fits, offset)?;
                *b = 0;
                return Err(io::Error::from_raw_os_error(28));
            }
            *b -= buf.len() as u64;
        }
        drop(budget);
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.faults.syncs.fetch_add(1, Ordering::AcqRel);
        if consume(&self.faults.failing_syncs) {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        if self.faults.fail_set_len.load(Ordering::Acquire) {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.inner.set_len(len)?;
        self.faults.shrink(&self.path, len);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        if self.faults.allocate_unsupported.load(Ordering::Acquire) {
            return Err(io::Error::from_raw_os_error(95));
        }
        if self.faults.no_space_for(&self.path) {
            return Err(enospc());
        }
        let end = offset + len;
        let before = self.faults.allocated(&self.path);
        if self.faults.grow(&self.path, end) < end {
            // All or nothing: give back what was taken.
            self.faults.shrink(&self.path, before);
            return Err(enospc());
        }
        self.inner.allocate(offset, len)
    }
}

impl FaultyFs {
    fn wrap(&self, f: Arc<dyn WalFile>, path: &Path) -> Arc<dyn WalFile> {
        Arc::new(FaultyFile {
            inner: f,
            faults: Arc::clone(&self.faults),
            path: path.to_path_buf(),
        })
    }
}

impl Filesystem for FaultyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFilesystem.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        let f = StdFilesystem.create(path)?;
        self.faults.shrink(path, 0);
        lock(&self.faults.allocated).insert(path.to_path_buf(), 0);
        Ok(self.wrap(f, path))
    }
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn WalFile>> {
        let f = StdFilesystem.open(path, writable)?;
        if !lock(&self.faults.allocated).contains_key(path) {
            let len = f.len()?;
            lock(&self.faults.allocated).insert(path.to_path_buf(), len);
        }
        Ok(self.wrap(f, path))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        StdFilesystem.remove(path)?;
        self.faults.forget(path);
        Ok(())
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFilesystem.rename(from, to)?;
        self.faults.forget(to);
        let moved = lock(&self.faults.allocated).remove(from);
        if let Some(a) = moved {
            lock(&self.faults.allocated).insert(to.to_path_buf(), a);
        }
        Ok(())
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdFilesystem.sync_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdFilesystem.list(dir)
    }
    fn free_space(&self, dir: &Path) -> io::Result<u64> {
        self.faults.free_space_reads.fetch_add(1, Ordering::AcqRel);
        if let Some(free) = *lock(&self.faults.free_space) {
            return Ok(free);
        }
        if let Some(free) = *lock(&self.faults.disk) {
            return Ok(free);
        }
        StdFilesystem.free_space(dir)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Arc<dyn WalFile>>> {
        StdFilesystem.try_lock(path)
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<Instant>);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(Mutex::new(Instant::now()))
    }
}

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.0);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *lock(&self.0)
    }
}

/// Stops `wal` the way a crash between two operations would leave it: requests already sent are
/// written, nothing else happens (no checkpoint), the lock is released.
pub fn crash(wal: &Wal) {
    // Without a checkpoint, shutdown has no error to report.
    let _nothing = wal.shutdown(false);
}
