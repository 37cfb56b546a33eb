//! Test helpers (compiled for tests or with feature `testing`): a fault-injecting
//! [`FaultyFs`], a [`ManualClock`] and [`crash`].

use std::io;
use std::path::Path;
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
        self.inner.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
}

impl FaultyFs {
    fn wrap(&self, f: Arc<dyn WalFile>) -> Arc<dyn WalFile> {
        Arc::new(FaultyFile {
            inner: f,
            faults: Arc::clone(&self.faults),
        })
    }
}

impl Filesystem for FaultyFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFilesystem.create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        Ok(self.wrap(StdFilesystem.create(path)?))
    }
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn WalFile>> {
        Ok(self.wrap(StdFilesystem.open(path, writable)?))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        StdFilesystem.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFilesystem.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdFilesystem.sync_dir(dir)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdFilesystem.list(dir)
    }
    fn free_space(&self, dir: &Path) -> io::Result<u64> {
        match *lock(&self.faults.free_space) {
            Some(free) => Ok(free),
            None => StdFilesystem.free_space(dir),
        }
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
