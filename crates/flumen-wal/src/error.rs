//! [`WalError`]: everything that can go wrong in the WAL, each variant naming the file or
//! directory involved so an operator can act on the message alone.

use std::io;
use std::path::PathBuf;

/// An error of the write-ahead log.
///
/// Every variant that is about a file carries its path (and the byte offset when it is about
/// bytes), so the error is actionable without a log line around it (house rule 8: context is added
/// where the error is created, not formatted into strings later).
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// What was being done ("write", "fdatasync", "read", ...).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Bytes on disk are not what the format allows.
    #[error("corrupt data in {file} at offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage inside `file`.
        offset: u64,
        /// What is wrong with the bytes.
        reason: String,
    },
    /// Free space in a data directory is below `minimum_required_space`: puts are refused (takes
    /// still work) until space returns.
    #[error("not enough free space in {dir}: {free} bytes free, {required} required")]
    Full {
        /// The data directory that is short of space.
        dir: PathBuf,
        /// Free bytes found.
        free: u64,
        /// `minimum_required_space`.
        required: u64,
    },
    /// Another process (or another `Wal` in this process) holds the directory lock.
    #[error("{path} is locked: another agent uses this directory")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A file was written by another version of the format; it is left untouched.
    #[error("{file} has unsupported format version {found:?}")]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// The magic bytes found, lossily decoded.
        found: String,
    },
    /// One transaction's records would exceed the largest record the format can hold.
    #[error("transaction of {size} bytes exceeds the maximum record size of {max} bytes")]
    TooLarge {
        /// Encoded size of the record that was refused.
        size: u64,
        /// The largest record size allowed.
        max: u64,
    },
    /// The configuration is unusable (no data directory, clashing directories).
    #[error("invalid WAL configuration: {0}")]
    InvalidConfig(String),
    /// The WAL was closed.
    #[error("the WAL is closed")]
    Closed,
}

impl WalError {
    /// Builds an [`WalError::Io`].
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        WalError::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// Makes an equal copy of this error.
    ///
    /// A failed group fails every request in it with the same error, and `io::Error` is not
    /// `Clone`: the copy keeps the OS error code (or the kind and the message).
    pub(crate) fn duplicate(&self) -> WalError {
        match self {
            WalError::Io { path, op, source } => WalError::Io {
                path: path.clone(),
                op,
                source: match source.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(source.kind(), source.to_string()),
                },
            },
            WalError::Corrupt {
                file,
                offset,
                reason,
            } => WalError::Corrupt {
                file: file.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            WalError::Full {
                dir,
                free,
                required,
            } => WalError::Full {
                dir: dir.clone(),
                free: *free,
                required: *required,
            },
            WalError::Locked { path } => WalError::Locked { path: path.clone() },
            WalError::UnsupportedVersion { file, found } => WalError::UnsupportedVersion {
                file: file.clone(),
                found: found.clone(),
            },
            WalError::TooLarge { size, max } => WalError::TooLarge {
                size: *size,
                max: *max,
            },
            WalError::InvalidConfig(s) => WalError::InvalidConfig(s.clone()),
            WalError::Closed => WalError::Closed,
        }
    }
}
