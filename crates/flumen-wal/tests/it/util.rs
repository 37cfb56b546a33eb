//! Shared helpers: a temp-dir WAL harness.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flumen_wal::testing::{FaultyFs, ManualClock};
use flumen_wal::{RecoveryReport, Seq, Wal, WalConfig};

/// A WAL directory layout inside a temp dir.
pub struct Dirs {
    pub tmp: tempfile::TempDir,
}

impl Dirs {
    pub fn new() -> Self {
        Dirs {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    pub fn data(&self) -> PathBuf {
        self.tmp.path().join("data")
    }
    pub fn ckpt(&self) -> PathBuf {
        self.tmp.path().join("ckpt")
    }
    pub fn config(&self) -> WalConfig {
        let mut c = WalConfig::new(self.ckpt(), vec![self.data()]);
        c.checkpoint_interval = Duration::ZERO;
        c.minimum_required_space = 0;
        c
    }
    pub fn open(&self) -> (Arc<Wal>, RecoveryReport) {
        open_cfg(self.config())
    }
    /// Segment files, oldest first.
    pub fn segments(&self) -> Vec<PathBuf> {
        segments_in(&self.data())
    }
}

pub fn segments_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

pub fn open_cfg(c: WalConfig) -> (Arc<Wal>, RecoveryReport) {
    Wal::open_with(
        c,
        Arc::new(FaultyFs::default()),
        Arc::new(ManualClock::default()),
    )
    .unwrap()
}

/// `n` payloads named `tag-i`.
pub fn payloads(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{tag}-{i}").into_bytes()).collect()
}

/// Takes everything and returns the payloads (committing the take when `commit`).
pub fn drain(wal: &Wal, commit: bool) -> Vec<Vec<u8>> {
    let taken = wal.take(usize::MAX).unwrap();
    let seqs: Vec<Seq> = taken.iter().map(|t| t.seq).collect();
    if commit {
        wal.commit_blocking(vec![], seqs).unwrap();
    } else {
        wal.rollback(&seqs);
    }
    taken.into_iter().map(|t| t.payload).collect()
}
