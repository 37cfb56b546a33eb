//! Configuration of the `file` channel: Flume's `FileChannel` properties and defaults.

use std::path::PathBuf;
use std::time::Duration;

use flumen_config::{Diagnostic, Props};
use serde::Deserialize;

/// Flume's floor for `minimumRequiredSpace` (1 MiB).
const MIN_REQUIRED_SPACE_FLOOR: u64 = 1024 * 1024;

/// Configuration of the `file` channel.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct FileChannelConfig {
    /// Checkpoint directory. Flume key: `checkpointDir`. Default: `~/.flumen/file-channel/checkpoint`.
    #[serde(rename = "checkpointDir")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Keep a second checkpoint. Flume key: `useDualCheckpoints`. Default: false.
    #[serde(rename = "useDualCheckpoints")]
    pub use_dual_checkpoints: bool,
    /// Where the second checkpoint goes. Flume key: `backupCheckpointDir`.
    #[serde(rename = "backupCheckpointDir")]
    pub backup_checkpoint_dir: Option<PathBuf>,
    /// Comma-separated log directories. Flume key: `dataDirs`. Default: `~/.flumen/file-channel/data`.
    #[serde(rename = "dataDirs")]
    pub data_dirs: Option<String>,
    /// Most events per transaction. Flume key: `transactionCapacity`. Default: 10000.
    #[serde(rename = "transactionCapacity")]
    pub transaction_capacity: usize,
    /// Milliseconds between checkpoints. Flume key: `checkpointInterval`. Default: 30000.
    #[serde(rename = "checkpointInterval")]
    pub checkpoint_interval: u64,
    /// Most bytes per log file. Flume key: `maxFileSize`. Default: 2146435071.
    #[serde(rename = "maxFileSize")]
    pub max_file_size: u64,
    /// Puts fail below this many free bytes. Flume key: `minimumRequiredSpace`. Default: 524288000.
    #[serde(rename = "minimumRequiredSpace")]
    pub minimum_required_space: u64,
    /// Most events held. Flume key: `capacity`. Default: 1000000.
    pub capacity: usize,
    /// Seconds a put waits for room. Flume key: `keep-alive`. Default: 3.
    #[serde(rename = "keep-alive")]
    pub keep_alive: u64,
    /// Checkpoint at close so a restart skips replay. Flume key: `checkpointOnClose`. Default: true.
    #[serde(rename = "checkpointOnClose")]
    pub checkpoint_on_close: bool,
    /// fsync every commit. Flume key: `fsyncPerTransaction`. Default: true.
    #[serde(rename = "fsyncPerTransaction")]
    pub fsync_per_transaction: bool,
    /// Seconds between fsyncs when not per transaction. Flume key: `fsyncInterval`. Default: 5.
    #[serde(rename = "fsyncInterval")]
    pub fsync_interval: u64,
    /// Flume's replay algorithm switches; flumen has one replay. Flume keys:
    /// `use-log-replay-v1`, `use-fast-replay`. Accepted and ignored.
    #[serde(rename = "use-log-replay-v1")]
    pub use_log_replay_v1: bool,
    /// See `use_log_replay_v1`.
    #[serde(rename = "use-fast-replay")]
    pub use_fast_replay: bool,
    /// Accepted and ignored (the backup checkpoint is a plain copy). Flume key:
    /// `compressBackupCheckpoint`.
    #[serde(rename = "compressBackupCheckpoint")]
    pub compress_backup_checkpoint: bool,
    /// Flume's encryption settings; not supported (an error when set).
    pub encryption: std::collections::BTreeMap<String, String>,
}

impl Default for FileChannelConfig {
    fn default() -> Self {
        Self {
            checkpoint_dir: None,
            use_dual_checkpoints: false,
            backup_checkpoint_dir: None,
            data_dirs: None,
            transaction_capacity: 10_000,
            checkpoint_interval: 30_000,
            max_file_size: 2_146_435_071,
            minimum_required_space: 524_288_000,
            capacity: 1_000_000,
            keep_alive: 3,
            checkpoint_on_close: true,
            fsync_per_transaction: true,
            fsync_interval: 5,
            use_log_replay_v1: false,
            use_fast_replay: false,
            compress_backup_checkpoint: false,
            encryption: Default::default(),
        }
    }
}

fn default_root() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".flumen").join("file-channel"))
}

impl FileChannelConfig {
    /// The checkpoint directory, defaulted under `~/.flumen/file-channel/`.
    pub fn checkpoint_dir(&self) -> Option<PathBuf> {
        self.checkpoint_dir
            .clone()
            .or_else(|| default_root().map(|r| r.join("checkpoint")))
    }

    /// The data directories, defaulted under `~/.flumen/file-channel/`.
    pub fn data_dirs(&self) -> Vec<PathBuf> {
        match &self.data_dirs {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            None => default_root()
                .map(|r| vec![r.join("data")])
                .unwrap_or_default(),
        }
    }

    /// The storage engine's settings.
    pub fn wal_config(&self) -> Option<flumen_wal::WalConfig> {
        Some(flumen_wal::WalConfig {
            checkpoint_dir: self.checkpoint_dir()?,
            backup_checkpoint_dir: if self.use_dual_checkpoints {
                self.backup_checkpoint_dir.clone()
            } else {
                None
            },
            data_dirs: self.data_dirs(),
            max_file_size: self.max_file_size,
            minimum_required_space: self.minimum_required_space.max(MIN_REQUIRED_SPACE_FLOOR),
            checkpoint_interval: Duration::from_millis(self.checkpoint_interval.max(1)),
            checkpoint_on_close: self.checkpoint_on_close,
            fsync: self.fsync_per_transaction,
            fsync_interval: Duration::from_secs(self.fsync_interval.max(1)),
        })
    }

    /// Cross-field checks.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.capacity == 0 {
            errors.push(props.error("capacity", "capacity must be at least 1"));
        }
        if self.transaction_capacity == 0 {
            errors.push(props.error(
                "transactionCapacity",
                "transactionCapacity must be at least 1",
            ));
        }
        if self.transaction_capacity > self.capacity {
            errors.push(props.error(
                "transactionCapacity",
                format!(
                    "transactionCapacity ({}) must not exceed capacity ({})",
                    self.transaction_capacity, self.capacity
                ),
            ));
        }
        let Some(checkpoint) = self.checkpoint_dir() else {
            errors.push(props.error(
                "checkpointDir",
                "checkpointDir is not set and $HOME is unknown: set checkpointDir and dataDirs",
            ));
            return errors;
        };
        let data = self.data_dirs();
        if data.is_empty() {
            errors.push(props.error("dataDirs", "dataDirs names no directory"));
        }
        if data.contains(&checkpoint) {
            errors.push(props.error("dataDirs", "dataDirs must not include the checkpointDir"));
        }
        if self.use_dual_checkpoints {
            match &self.backup_checkpoint_dir {
                None => errors.push(
                    props
                        .error(
                            "useDualCheckpoints",
                            "useDualCheckpoints needs backupCheckpointDir",
                        )
                        .with_hint("set `backupCheckpointDir` to a directory on another disk"),
                ),
                Some(b) if *b == checkpoint || data.contains(b) => errors.push(props.error(
                    "backupCheckpointDir",
                    "backupCheckpointDir must differ from checkpointDir and dataDirs",
                )),
                Some(_) => {}
            }
        }
        if self.max_file_size < 1024 * 1024 {
            errors.push(props.error("maxFileSize", "maxFileSize must be at least 1048576 bytes"));
        }
        if !self.encryption.is_empty() {
            errors.push(props.error("encryption", "file channel encryption is not supported by flumen").with_hint(
                "use disk encryption (dm-crypt/LUKS) for the data and checkpoint directories",
            ));
        }
        errors
    }

    /// Keys Flume knows that flumen accepts without acting on them.
    pub fn ignored_warnings(&self, props: &Props) -> Vec<Diagnostic> {
        let mut w = Vec::new();
        for key in [
            "use-log-replay-v1",
            "use-fast-replay",
            "compressBackupCheckpoint",
        ] {
            if props.get(key).is_some() {
                w.push(props.warning(key, format!("`{key}` has no effect in flumen (one replay algorithm, plain backup copies)")));
            }
        }
        w
    }
}
