//! Progress metadata of the `spooldir` source, kept in `trackerDir`.
//!
//! One small text file, [`PROGRESS_FILE`], records the file being read and the byte offset
//! after its last committed batch:
//!
//! ```text
//! flumen-spooldir-progress 1
//! inode <decimal>
//! offset <decimal>
//! path <bytes of the absolute path, to the end of the file minus one trailing \n>
//! ```
//!
//! The path comes last so that any byte but the final newline may appear in it. The file is
//! replaced atomically (write a temporary file, then rename), so a crash leaves the old
//! record or the new one, never a mix. It is written by the source after
//! committed batches (at most once a second, and on shutdown) and removed once the file is
//! finished. Blocking I/O: call from `spawn_blocking`.
//!
//! With `trackingPolicy = tracker_dir`, finished files are recorded as empty marker files
//! `<trackerDir>/<path relative to spoolDir><fileSuffix>`, as Flume does.

use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Name of the progress record in `trackerDir` (hidden, so never taken for a spooled file).
pub const PROGRESS_FILE: &str = ".flumen-spooldir-main.meta";
/// First line of the progress record: format name and version.
const MAGIC: &str = "flumen-spooldir-progress 1";

/// Where reading of one file stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Its inode, so that a different file under the same name is not resumed.
    pub inode: u64,
    /// Byte offset after the last committed event.
    pub offset: u64,
}

impl Progress {
    /// The record's bytes.
    fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "{MAGIC}\ninode {}\noffset {}\npath ",
            self.inode, self.offset
        )
        .into_bytes();
        out.extend_from_slice(self.path.as_os_str().as_bytes());
        out.push(b'\n');
        out
    }

    /// Parses a record; `None` when it is not one.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut rest = bytes;
        let mut line = || -> Option<&[u8]> {
            let nl = memchr::memchr(b'\n', rest)?;
            let l = &rest[..nl];
            rest = &rest[nl + 1..];
            Some(l)
        };
        if line()? != MAGIC.as_bytes() {
            return None;
        }
        let number = |l: &[u8], key: &str| -> Option<u64> {
            std::str::from_utf8(l.strip_prefix(key.as_bytes())?)
                .ok()?
                .parse()
                .ok()
        };
        let inode = number(line()?, "inode ")?;
        let offset = number(line()?, "offset ")?;
        let path = rest.strip_prefix(b"path ")?.strip_suffix(b"\n")?;
        if path.is_empty() {
            return None;
        }
        Some(Self {
            path: PathBuf::from(std::ffi::OsString::from_vec(path.to_vec())),
            inode,
            offset,
        })
    }
}

/// The tracker directory: progress record and done markers.
#[derive(Debug, Clone)]
pub struct Tracker {
    dir: PathBuf,
    spool_dir: PathBuf,
    suffix: String,
}

impl Tracker {
    /// The tracker in `dir` for files under `spool_dir`, done markers ending in `suffix`.
    pub fn new(dir: PathBuf, spool_dir: PathBuf, suffix: String) -> Self {
        Self {
            dir,
            spool_dir,
            suffix,
        }
    }

    /// The tracker directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory if missing.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)
    }

    fn progress_path(&self) -> PathBuf {
        self.dir.join(PROGRESS_FILE)
    }

    /// The recorded progress, if any. A record that cannot be parsed is reported as
    /// `Ok(None)` after a warning, since the only consequence is reading a file again.
    ///
    /// # Errors
    /// The record exists but cannot be read.
    pub fn load(&self) -> std::io::Result<Option<Progress>> {
        let path = self.progress_path();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let p = Progress::decode(&bytes);
                if p.is_none() {
                    tracing::warn!(file = %path.display(), "Ignoring an unreadable progress record.");
                }
                Ok(p)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the record with `p`, atomically.
    ///
    /// # Errors
    /// The record cannot be written.
    pub fn save(&self, p: &Progress) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{PROGRESS_FILE}.tmp"));
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&p.encode())?;
        }
        std::fs::rename(&tmp, self.progress_path())
    }

    /// Removes the record.
    ///
    /// # Errors
    /// It exists and cannot be removed.
    pub fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.progress_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The done marker of `file` (tracker_dir policy).
    pub fn marker(&self, file: &Path) -> PathBuf {
        let rel = file.strip_prefix(&self.spool_dir).unwrap_or(file);
        let mut name = self.dir.join(rel).into_os_string();
        name.push(&self.suffix);
        PathBuf::from(name)
    }

    /// Whether `file` is recorded as done (tracker_dir policy).
    pub fn is_done(&self, file: &Path) -> bool {
        self.marker(file).exists()
    }

    /// Records `file` as done (tracker_dir policy).
    ///
    /// # Errors
    /// The marker cannot be created.
    pub fn mark_done(&self, file: &Path) -> std::io::Result<()> {
        let marker = self.marker(file);
        if let Some(parent) = marker.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::File::create(&marker).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tracker::new(dir.path().join("t"), dir.path().into(), ".DONE".into());
        t.create().unwrap();
        assert_eq!(t.load().unwrap(), None);
        let p = Progress {
            path: PathBuf::from("/spool/we ird\nname"),
            inode: 42,
            offset: 1234,
        };
        t.save(&p).unwrap();
        assert_eq!(t.load().unwrap(), Some(p));
        std::fs::write(dir.path().join("t").join(PROGRESS_FILE), b"garbage").unwrap();
        assert_eq!(t.load().unwrap(), None);
        t.clear().unwrap();
        t.clear().unwrap();
        assert_eq!(t.load().unwrap(), None);
    }

    #[test]
    fn markers_mirror_the_relative_path() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tracker::new(dir.path().join("t"), dir.path().into(), ".DONE".into());
        let f = dir.path().join("sub").join("a.log");
        assert!(!t.is_done(&f));
        t.mark_done(&f).unwrap();
        assert!(t.is_done(&f));
        assert_eq!(t.marker(&f), dir.path().join("t/sub/a.log.DONE"));
    }
}
