//! The [`Filesystem`] and [`Clock`] seams: every byte the WAL reads or writes and every time it
//! looks at goes through these traits, so tests can inject faults (ENOSPC, short writes, fsync and
//! read errors) and control time without processes or sleeps (house rule 10).
//!
//! The traits are deliberately minimal: exactly the calls the WAL makes. Files are accessed with
//! positional reads and writes only, so there is no cursor state to get wrong after a truncation.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// An open file. Implementations must be safe to use from several threads at once (positional
/// I/O has no shared cursor).
pub trait WalFile: Send + Sync + fmt::Debug {
    /// Reads exactly `buf.len()` bytes at `offset`; a short file is an `UnexpectedEof` error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset` (a partial write followed by an error is possible, as with
    /// a real disk: callers truncate back).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// `fdatasync`: makes the written data (and the file size) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The current file size.
    fn len(&self) -> io::Result<u64>;
    /// Allocates disk blocks for `[offset, offset + len)` without changing the file size
    /// (`fallocate(FALLOC_FL_KEEP_SIZE)`), so later writes there cannot fail for lack of space.
    /// Blocks allocated past the end of the file are released by [`WalFile::set_len`].
    /// The default is [`io::ErrorKind::Unsupported`] (callers then go without a reservation).
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        let _unused = (offset, len);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
    /// True when the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// The filesystem operations the WAL uses. `StdFilesystem` is the real one; `testing::FaultyFs`
/// wraps it to inject failures.
pub trait Filesystem: Send + Sync + 'static {
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates (or truncates) `path` for reading and writing.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WalFile>>;
    /// Opens an existing file, read-only or read-write.
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn WalFile>>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames `from` to `to` (same directory).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory entries of `dir` durable (after a create, rename or remove).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// The names of the regular files in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Bytes available to an unprivileged user on the filesystem holding `dir`.
    fn free_space(&self, dir: &Path) -> io::Result<u64>;
    /// Takes an exclusive lock on `path` (created if missing) without waiting. `Ok(None)` means
    /// somebody else holds it. The lock lasts as long as the returned handle.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Arc<dyn WalFile>>>;
}

/// The real filesystem (std + `statvfs`).
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFilesystem;

/// A `std::fs::File` behind [`WalFile`].
#[derive(Debug)]
struct StdFile(File);

impl WalFile for StdFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn allocate(&self, offset: u64, len: u64) -> io::Result<()> {
        rustix::fs::fallocate(&self.0, rustix::fs::FallocateFlags::KEEP_SIZE, offset, len)
            .map_err(io::Error::from)
    }
}

impl Filesystem for StdFilesystem {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WalFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Arc::new(StdFile(f)))
    }
    fn open(&self, path: &Path, writable: bool) -> io::Result<Arc<dyn WalFile>> {
        let f = OpenOptions::new().read(true).write(writable).open(path)?;
        Ok(Arc::new(StdFile(f)))
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
    fn free_space(&self, dir: &Path) -> io::Result<u64> {
        let st = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Arc<dyn WalFile>>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(Arc::new(StdFile(f)))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

/// A source of monotonic time, injectable so tests control the free-space cache and intervals.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}
