//! The typed configuration of the `spooldir` source: Flume's keys, defaults and checks.
//!
//! Everything that can be wrong with a configuration is found here, at build time: the
//! patterns compile, the charsets are ones the reader implements, the deserializer is one
//! flumen has. The source itself then only sees checked values ([`Settings`]).

use std::path::{Path, PathBuf};

use flumen_config::{Diagnostic, Props};
use regex::Regex;
use serde::Deserialize;

use super::reader::{Charset, DecodeErrorPolicy, DeserializerKind};

/// What happens to a file once it is fully delivered. Flume key: `deletePolicy`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DeletePolicy {
    /// Keep it, marked as done per `trackingPolicy`.
    Never,
    /// Delete it.
    Immediate,
}

/// How a finished file is marked when it is kept. Flume key: `trackingPolicy`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum TrackingPolicy {
    /// Rename it to `name + fileSuffix`.
    #[serde(rename = "rename")]
    Rename,
    /// Leave it alone and create an empty marker `<trackerDir>/<relative path><fileSuffix>`.
    #[serde(rename = "tracker_dir")]
    TrackerDir,
}

/// Which eligible file is read next, by modification time. Flume key: `consumeOrder`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConsumeOrder {
    /// Oldest first (ties: smallest path first).
    Oldest,
    /// Youngest first (ties: smallest path first).
    Youngest,
    /// Any order.
    Random,
}

/// The event deserializer. Flume key: `deserializer`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum DeserializerType {
    /// One event per line.
    #[serde(
        rename = "LINE",
        alias = "org.apache.flume.serialization.LineDeserializer$Builder"
    )]
    Line,
    /// The whole file (up to `maxBlobLength` bytes) as one event.
    #[serde(
        rename = "BLOB",
        alias = "org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder"
    )]
    Blob,
    /// Avro container files; recognised so the error can say it is not supported.
    #[serde(
        rename = "AVRO",
        alias = "org.apache.flume.serialization.AvroEventDeserializer$Builder"
    )]
    Avro,
}

/// Configuration of the `spooldir` source, keys and defaults as Flume 1.11's.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SpoolDirSourceConfig {
    /// The directory to read files from. Flume key: `spoolDir`. Required.
    #[serde(rename = "spoolDir")]
    pub spool_dir: Option<PathBuf>,
    /// Suffix appended to a finished file's name (rename policy) or marker (tracker_dir
    /// policy). Flume key: `fileSuffix`. Default: `.COMPLETED`.
    #[serde(rename = "fileSuffix")]
    pub file_suffix: String,
    /// `never` or `immediate`. Flume key: `deletePolicy`. Default: `never`.
    #[serde(rename = "deletePolicy")]
    pub delete_policy: DeletePolicy,
    /// Add the file's absolute path as a header. Flume key: `fileHeader`. Default: false.
    #[serde(rename = "fileHeader")]
    pub file_header: bool,
    /// Name of that header. Flume key: `fileHeaderKey`. Default: `file`.
    #[serde(rename = "fileHeaderKey")]
    pub file_header_key: String,
    /// Add the file's base name as a header. Flume key: `basenameHeader`. Default: false.
    #[serde(rename = "basenameHeader")]
    pub basename_header: bool,
    /// Name of that header. Flume key: `basenameHeaderKey`. Default: `basename`.
    #[serde(rename = "basenameHeaderKey")]
    pub basename_header_key: String,
    /// Regex a file name must match entirely to be read. Flume key: `includePattern`.
    /// Default: `^.*$`.
    #[serde(rename = "includePattern")]
    pub include_pattern: String,
    /// Regex of file names (entire match) to skip; wins over `includePattern`. Flume key:
    /// `ignorePattern`. Default: `^$`.
    #[serde(rename = "ignorePattern")]
    pub ignore_pattern: String,
    /// Directory for progress metadata (and done markers); relative paths are under
    /// `spoolDir`. Flume key: `trackerDir`. Default: `.flumespool`.
    #[serde(rename = "trackerDir")]
    pub tracker_dir: PathBuf,
    /// `rename` or `tracker_dir`; only used with `deletePolicy = never`. Flume key:
    /// `trackingPolicy`. Default: `rename`.
    #[serde(rename = "trackingPolicy")]
    pub tracking_policy: TrackingPolicy,
    /// `oldest`, `youngest` or `random`, by modification time. Flume key: `consumeOrder`.
    /// Default: `oldest`.
    #[serde(rename = "consumeOrder")]
    pub consume_order: ConsumeOrder,
    /// Also read files in subdirectories. Flume key: `recursiveDirectorySearch`. Default:
    /// false.
    #[serde(rename = "recursiveDirectorySearch")]
    pub recursive_directory_search: bool,
    /// Milliseconds between directory scans when there is nothing to read. Flume key:
    /// `pollDelay`. Default: 500.
    #[serde(rename = "pollDelay")]
    pub poll_delay: u64,
    /// Upper bound in milliseconds of the wait between attempts while the channel is full.
    /// Flume key: `maxBackoff`. Default: 4000.
    #[serde(rename = "maxBackoff")]
    pub max_backoff: u64,
    /// Events per channel transaction. Flume key: `batchSize`. Default: 100.
    #[serde(rename = "batchSize")]
    pub batch_size: usize,
    /// Charset of the files: UTF-8, ISO-8859-1 or US-ASCII. Flume key: `inputCharset`.
    /// Default: `UTF-8`.
    #[serde(rename = "inputCharset")]
    pub input_charset: String,
    /// `FAIL`, `REPLACE` (U+FFFD) or `IGNORE` for undecodable input. Flume key:
    /// `decodeErrorPolicy`. Default: `FAIL`.
    #[serde(rename = "decodeErrorPolicy")]
    pub decode_error_policy: DecodeErrorPolicy,
    /// `LINE` or `BLOB` (alias or builder class). Flume key: `deserializer`. Default: `LINE`.
    pub deserializer: DeserializerType,
    /// LINE: most characters per event; the rest of a longer line becomes further events.
    /// Flume key: `deserializer.maxLineLength`. Default: 2048.
    #[serde(rename = "deserializer.maxLineLength")]
    pub max_line_length: Option<usize>,
    /// LINE: charset of the event bodies. Flume key: `deserializer.outputCharset`. Default:
    /// `UTF-8`.
    #[serde(rename = "deserializer.outputCharset")]
    pub output_charset: String,
    /// BLOB: most bytes per event. Flume key: `deserializer.maxBlobLength`. Default:
    /// 100000000.
    #[serde(rename = "deserializer.maxBlobLength")]
    pub max_blob_length: usize,
    /// AVRO: schema header kind; accepted so that the key is not mistaken for a typo (the
    /// AVRO deserializer itself is refused). Flume key: `deserializer.schemaType`.
    #[serde(rename = "deserializer.schemaType")]
    pub schema_type: Option<String>,
    /// Obsolete and ignored, as in Flume. Flume key: `bufferMaxLines`.
    #[serde(rename = "bufferMaxLines")]
    pub buffer_max_lines: Option<String>,
    /// Deprecated alias of `deserializer.maxLineLength` (which wins when both are set).
    /// Flume key: `bufferMaxLineLength`.
    #[serde(rename = "bufferMaxLineLength")]
    pub buffer_max_line_length: Option<usize>,
}

/// Flume's `deserializer.maxLineLength` default.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 2048;

impl Default for SpoolDirSourceConfig {
    fn default() -> Self {
        Self {
            spool_dir: None,
            file_suffix: ".COMPLETED".into(),
            delete_policy: DeletePolicy::Never,
            file_header: false,
            file_header_key: "file".into(),
            basename_header: false,
            basename_header_key: "basename".into(),
            include_pattern: "^.*$".into(),
            ignore_pattern: "^$".into(),
            tracker_dir: PathBuf::from(".flumespool"),
            tracking_policy: TrackingPolicy::Rename,
            consume_order: ConsumeOrder::Oldest,
            recursive_directory_search: false,
            poll_delay: 500,
            max_backoff: 4000,
            batch_size: 100,
            input_charset: "UTF-8".into(),
            decode_error_policy: DecodeErrorPolicy::Fail,
            deserializer: DeserializerType::Line,
            max_line_length: None,
            output_charset: "UTF-8".into(),
            max_blob_length: 100_000_000,
            schema_type: None,
            buffer_max_lines: None,
            buffer_max_line_length: None,
        }
    }
}

/// The checked configuration the source runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `spoolDir`, made absolute (the file header holds absolute paths, as Flume's).
    pub spool_dir: PathBuf,
    /// `trackerDir`, resolved against `spoolDir`.
    pub tracker_dir: PathBuf,
    /// `fileSuffix`.
    pub file_suffix: String,
    /// `deletePolicy`.
    pub delete_policy: DeletePolicy,
    /// `trackingPolicy`.
    pub tracking_policy: TrackingPolicy,
    /// `fileHeaderKey` when `fileHeader` is set.
    pub file_header_key: Option<String>,
    /// `basenameHeaderKey` when `basenameHeader` is set.
    pub basename_header_key: Option<String>,
    /// `includePattern`, anchored at both ends (Java's `matches()`).
    pub include: Regex,
    /// `ignorePattern`, anchored at both ends.
    pub ignore: Regex,
    /// `consumeOrder`.
    pub consume_order: ConsumeOrder,
    /// `recursiveDirectorySearch`.
    pub recursive: bool,
    /// `pollDelay` in milliseconds.
    pub poll_delay: u64,
    /// `maxBackoff` in milliseconds.
    pub max_backoff: u64,
    /// `batchSize`.
    pub batch_size: usize,
    /// The deserializer with its options and charsets.
    pub deserializer: DeserializerKind,
}

/// Java's `Matcher.matches()`: the pattern must match the whole name.
fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

impl SpoolDirSourceConfig {
    /// Required keys, ranges, patterns and charsets; every problem found, located at its key.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self
            .spool_dir
            .as_deref()
            .is_none_or(|d| d.as_os_str().is_empty())
        {
            errors.push(props.error("spoolDir", "missing required property `spoolDir`"));
        }
        if self.batch_size == 0 {
            errors.push(props.error("batchSize", "`batchSize` must be at least 1"));
        }
        if self.max_line_length() == 0 {
            errors.push(props.error(
                "deserializer.maxLineLength",
                "`deserializer.maxLineLength` must be at least 1",
            ));
        }
        if self.max_blob_length == 0 {
            errors.push(props.error(
                "deserializer.maxBlobLength",
                "`deserializer.maxBlobLength` must be at least 1",
            ));
        }
        if self.delete_policy == DeletePolicy::Never && self.file_suffix.is_empty() {
            errors.push(props.error(
                "fileSuffix",
                "`fileSuffix` must not be empty unless `deletePolicy = immediate`",
            ));
        }
        for (key, pattern) in [
            ("includePattern", &self.include_pattern),
            ("ignorePattern", &self.ignore_pattern),
        ] {
            if let Err(e) = anchored(pattern) {
                errors.push(props.error(key, format!("invalid regular expression: {e}")));
            }
        }
        for (key, name) in [
            ("inputCharset", &self.input_charset),
            ("deserializer.outputCharset", &self.output_charset),
        ] {
            if Charset::parse(name).is_none() {
                errors.push(props.error(
                    key,
                    format!(
                        "unsupported charset `{name}`: supported are UTF-8, ISO-8859-1 and US-ASCII"
                    ),
                ));
            }
        }
        if self.deserializer == DeserializerType::Avro {
            errors.push(props.error(
                "deserializer",
                "the AVRO deserializer is not supported; use LINE or BLOB",
            ));
        }
        errors
    }

    /// Warnings for keys that are accepted but deprecated (`bufferMaxLines` is silently
    /// ignored, as in Flume).
    pub fn warnings(&self, props: &Props) -> Vec<Diagnostic> {
        let mut warnings = Vec::new();
        if self.buffer_max_line_length.is_some() {
            warnings.push(props.warning(
                "bufferMaxLineLength",
                "`bufferMaxLineLength` is deprecated; use `deserializer.maxLineLength`",
            ));
        }
        warnings
    }

    /// `deserializer.maxLineLength`, else the deprecated `bufferMaxLineLength`, else 2048.
    pub fn max_line_length(&self) -> usize {
        self.max_line_length
            .or(self.buffer_max_line_length)
            .unwrap_or(DEFAULT_MAX_LINE_LENGTH)
    }

    /// The checked settings.
    ///
    /// # Errors
    /// What [`validate`](Self::validate) reports; never fails on a validated configuration.
    pub fn settings(&self) -> Result<Settings, Vec<Diagnostic>> {
        self.checked().map_err(|m| vec![Diagnostic::error(m)])
    }

    fn checked(&self) -> Result<Settings, String> {
        let spool = self
            .spool_dir
            .clone()
            .ok_or("missing required property `spoolDir`")?;
        let spool_dir = std::path::absolute(&spool).unwrap_or(spool);
        let tracker_dir = resolve(&spool_dir, &self.tracker_dir);
        let regex = |p: &str| anchored(p).map_err(|e| e.to_string());
        let charset = |name: &str| {
            Charset::parse(name).ok_or_else(|| format!("unsupported charset `{name}`"))
        };
        let deserializer = match self.deserializer {
            DeserializerType::Line => DeserializerKind::Line {
                input: charset(&self.input_charset)?,
                output: charset(&self.output_charset)?,
                policy: self.decode_error_policy,
                max_chars: self.max_line_length().max(1),
            },
            DeserializerType::Blob => DeserializerKind::Blob {
                max_bytes: self.max_blob_length.max(1),
            },
            DeserializerType::Avro => {
                return Err("the AVRO deserializer is not supported".into());
            }
        };
        Ok(Settings {
            spool_dir,
            tracker_dir,
            file_suffix: self.file_suffix.clone(),
            delete_policy: self.delete_policy,
            tracking_policy: self.tracking_policy,
            file_header_key: self.file_header.then(|| self.file_header_key.clone()),
            basename_header_key: self
                .basename_header
                .then(|| self.basename_header_key.clone()),
            include: regex(&self.include_pattern)?,
            ignore: regex(&self.ignore_pattern)?,
            consume_order: self.consume_order,
            recursive: self.recursive_directory_search,
            poll_delay: self.poll_delay,
            max_backoff: self.max_backoff,
            batch_size: self.batch_size.max(1),
            deserializer,
        })
    }
}

/// `dir` joined to `base` when relative, as Flume resolves `trackerDir`.
fn resolve(base: &Path, dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        base.join(dir)
    }
}
