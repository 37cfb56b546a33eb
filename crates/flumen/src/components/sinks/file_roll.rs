//! The `file_roll` sink: writes events to local files, starting a new file on a timer
//! (Flume's `RollingFileSink`).
//!
//! # Files
//! Files are created in `sink.directory`, which flumen creates if it is missing (Flume requires
//! it to exist). Names follow Flume's path managers:
//! - `DEFAULT`: `<prefix><seriesMillis>-<n>[.<extension>]`, where `seriesMillis` is the epoch
//!   milliseconds of the sink's first start and `n` counts files from 1, so names of one run
//!   sort in creation order by `n`;
//! - `ROLLTIME`: `<prefix><yyyyMMddHHmmss>-<n>[.<extension>]` in local time, `n` restarting at 1
//!   whenever the timestamp changes.
//!
//! Files are created with `create_new`: if a name already exists (a restart within the same
//! second under `ROLLTIME`), `n` is bumped instead of truncating the old file as Flume would.
//!
//! # Rolling
//! With `sink.rollInterval = N > 0` the current file is closed and a new one opened every N
//! seconds, at a fixed rate from the start, as Flume's scheduled roller does. The roll happens
//! at the next delivery or idle tick after the deadline (the driver calls `idle` at least once
//! a second), so, like Flume, a new (possibly empty) file appears every interval even without
//! traffic. `N <= 0` never rolls.
//!
//! # Serializers
//! - `TEXT`: the body, then `\n` if `sink.serializer.appendNewline` (default true);
//! - `HEADER_AND_TEXT`: the headers as Java's `Map.toString()` (`{k1=v1, k2=v2}`, `{}` when
//!   empty), a space, the body, then `\n` if `appendNewline`.
//!
//! # Durability and failures
//! A batch is serialized into one reused buffer and written with a single `write_all` on a
//! blocking thread; `deliver` returns `Ok` once the whole batch is in the OS (page cache). There
//! is no fsync, as in Flume: a machine crash can lose the last seconds of data, a process crash
//! cannot. If a write fails, the file is cut back (`set_len`) to its length before the batch,
//! so a retried batch is not preceded by a partial copy of itself; if even that fails, the file
//! is abandoned and the retry goes to a new file. Either way the batch is rolled back into the
//! channel (`DeliveryError::Transient`) and offered again.
//!
//! Counters: `ConnectionCreatedCount` per file opened, `ConnectionClosedCount` per file closed
//! or abandoned, `ConnectionFailedCount` per failed open or write.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use flumen_config::{Diagnostic, Props};
use flumen_core::{DeliveryError, Event, Sink, SinkCounters};
use serde::Deserialize;
use tokio::time::Instant;

use super::push_java_map;
use crate::components::{BuildResult, SinkBuildContext, SinkDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: SinkDescriptor = SinkDescriptor {
    name: "file_roll",
    classes: &["org.apache.flume.sink.RollingFileSink"],
    description: "Writes events to local files, starting a new file every rollInterval seconds",
    batch_size_key: Some("sink.batchSize"),
    build,
};

/// Most names tried when created files collide with existing ones.
const MAX_NAME_ATTEMPTS: u32 = 1000;

/// A staging buffer grown past this by one huge batch is given back after the write.
const MAX_RETAINED_BUFFER: usize = 16 << 20;

/// How files are named. Flume key: `sink.pathManager`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum PathManagerType {
    /// `<prefix><startMillis>-<n>[.<extension>]`.
    #[serde(
        rename = "DEFAULT",
        alias = "org.apache.flume.formatter.output.DefaultPathManager$Builder"
    )]
    Default,
    /// `<prefix><yyyyMMddHHmmss>-<n>[.<extension>]`.
    #[serde(
        rename = "ROLLTIME",
        alias = "org.apache.flume.formatter.output.RollTimePathManager$Builder"
    )]
    RollTime,
}

/// How events are written. Flume key: `sink.serializer`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum SerializerType {
    /// Body, then a newline.
    #[serde(
        rename = "TEXT",
        alias = "org.apache.flume.serialization.BodyTextEventSerializer$Builder"
    )]
    Text,
    /// `{k=v, ...}`, a space, the body, then a newline.
    #[serde(
        rename = "HEADER_AND_TEXT",
        alias = "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder"
    )]
    HeaderAndText,
    /// Avro container files; recognised so the error can say it is not supported yet.
    #[serde(
        rename = "AVRO_EVENT",
        alias = "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder"
    )]
    AvroEvent,
}

/// Configuration of the `file_roll` sink.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct FileRollSinkConfig {
    /// Output directory; created if missing. Flume key: `sink.directory`. Required.
    #[serde(rename = "sink.directory")]
    pub directory: Option<PathBuf>,
    /// Seconds per file; 0 or less never rolls. Flume key: `sink.rollInterval`. Default: 30.
    #[serde(rename = "sink.rollInterval")]
    pub roll_interval: i64,
    /// File naming scheme. Flume key: `sink.pathManager`. Default: `DEFAULT`.
    #[serde(rename = "sink.pathManager")]
    pub path_manager: PathManagerType,
    /// File-name prefix. Flume key: `sink.pathManager.prefix`. Default: empty.
    #[serde(rename = "sink.pathManager.prefix")]
    pub prefix: String,
    /// File-name extension, without the dot. Flume key: `sink.pathManager.extension`.
    /// Default: empty (no extension).
    #[serde(rename = "sink.pathManager.extension")]
    pub extension: String,
    /// Event format. Flume key: `sink.serializer`. Default: `TEXT`.
    #[serde(rename = "sink.serializer")]
    pub serializer: SerializerType,
    /// Write `\n` after each event. Flume key: `sink.serializer.appendNewline`. Default: true.
    #[serde(rename = "sink.serializer.appendNewline")]
    pub append_newline: bool,
    /// Events per transaction. Flume key: `sink.batchSize`. Default: 100.
    #[serde(rename = "sink.batchSize")]
    pub batch_size: usize,
}

impl Default for FileRollSinkConfig {
    fn default() -> Self {
        Self {
            directory: None,
            roll_interval: 30,
            path_manager: PathManagerType::Default,
            prefix: String::new(),
            extension: String::new(),
            serializer: SerializerType::Text,
            append_newline: true,
            batch_size: 100,
        }
    }
}

impl FileRollSinkConfig {
    fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        match &self.directory {
            None => errors.push(props.error(
                "sink.directory",
                "missing required property `sink.directory`",
            )),
            Some(d) if d.as_os_str().is_empty() => {
                errors.push(props.error("sink.directory", "sink.directory must not be empty"));
            }
            Some(_) => {}
        }
        if self.batch_size == 0 {
            errors.push(props.error("sink.batchSize", "sink.batchSize must be at least 1"));
        }
        if self.serializer == SerializerType::AvroEvent {
            errors.push(
                props
                    .error(
                        "sink.serializer",
                        "the AVRO_EVENT serializer is not supported by flumen yet",
                    )
                    .with_hint("use TEXT or HEADER_AND_TEXT"),
            );
        }
        // Both end up inside a file name: a separator would write outside `sink.directory`.
        for (key, value) in [
            ("sink.pathManager.prefix", &self.prefix),
            ("sink.pathManager.extension", &self.extension),
        ] {
            if value.contains(['/', '\\']) {
                errors.push(props.error(key, format!("{key} must not contain a path separator")));
            }
        }
        errors
    }
}

fn build(props: &Props, cx: &SinkBuildContext) -> BuildResult<Box<dyn Sink>> {
    build_with(
        props,
        FileRollSinkConfig::validate,
        |config: FileRollSinkConfig| {
            let sink: Box<dyn Sink> =
                Box::new(FileRollSink::new(&cx.name, config, cx.counters.clone()));
            Ok(sink)
        },
    )
}

/// Why the sink could not write.
#[derive(Debug, thiserror::Error)]
pub enum FileRollError {
    /// The output directory could not be created.
    #[error("cannot create directory {}: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A new file could not be created.
    #[error("cannot create file {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Writing a batch failed; see `truncated` for what became of the file.
    #[error(
        "cannot write to {}: {source} ({})",
        path.display(),
        if *truncated { "cut back to before the batch" } else { "file abandoned; the retry goes to a new file" }
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Whether the file was cut back to its length before the batch and stays in use.
        truncated: bool,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The blocking task doing the file I/O died (runtime shutting down).
    #[error("file I/O task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<FileRollError> for DeliveryError {
    fn from(e: FileRollError) -> Self {
        DeliveryError::transient(e)
    }
}

/// Names files as Flume's `DefaultPathManager` / `RollTimePathManager` do.
#[derive(Debug)]
struct FileNamer {
    kind: PathManagerType,
    prefix: String,
    /// `.ext`, or empty.
    suffix: String,
    /// Epoch ms of the first start (Flume: of `configure`); set once.
    series_ms: Option<u128>,
    /// Number of the last file named (in this second, for `ROLLTIME`).
    index: u64,
    /// `ROLLTIME`: the timestamp of the last name.
    last_stamp: String,
}

impl FileNamer {
    fn new(kind: PathManagerType, prefix: String, extension: &str) -> Self {
        let suffix = if extension.is_empty() {
            String::new()
        } else {
            format!(".{extension}")
        };
        Self {
            kind,
            prefix,
            suffix,
            series_ms: None,
            index: 0,
            last_stamp: String::new(),
        }
    }

    fn start_series(&mut self) {
        if self.series_ms.is_none() {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            self.series_ms = Some(ms);
        }
    }

    fn next_name(&mut self) -> String {
        let stamp = match self.kind {
            PathManagerType::Default => self.series_ms.unwrap_or(0).to_string(),
            PathManagerType::RollTime => {
                let stamp = chrono::Local::now().format("%Y%m%d%H%M%S").to_string();
                if stamp != self.last_stamp {
                    self.index = 0;
                    self.last_stamp.clone_from(&stamp);
                }
                stamp
            }
        };
        self.index += 1;
        format!("{}{stamp}-{}{}", self.prefix, self.index, self.suffix)
    }
}

/// The file being written.
#[derive(Debug)]
struct OpenFile {
    file: File,
    path: PathBuf,
    /// Bytes written by successful batches: where a failed batch is cut back to.
    len: u64,
}

/// A failed batch write, from the blocking thread.
#[derive(Debug)]
struct WriteFailure {
    source: io::Error,
    truncated: bool,
}

/// Blocking: writes `buf` at the end of `out`; on failure cuts the file back to `out.len`.
fn write_blocking(out: &mut OpenFile, buf: &[u8]) -> Result<(), WriteFailure> {
    match out.file.write_all(buf) {
        Ok(()) => {
            out.len += buf.len() as u64;
            Ok(())
        }
        Err(source) => Err(WriteFailure {
            source,
            truncated: cut_back(out),
        }),
    }
}

/// Blocking: cuts `out` back to its last good length and moves the cursor there; false if the
/// file cannot be cut (then it must not be written to again).
fn cut_back(out: &mut OpenFile) -> bool {
    let len = out.len;
    out.file
        .set_len(len)
        .and_then(|()| out.file.seek(SeekFrom::Start(len)))
        .is_ok()
}

/// The `file_roll` sink. Called by a single task (its driver); all file I/O runs on the
/// blocking pool, one task per batch.
#[derive(Debug)]
pub struct FileRollSink {
    name: String,
    directory: PathBuf,
    /// `None`: never roll.
    roll_every: Option<Duration>,
    serializer: SerializerType,
    append_newline: bool,
    batch_size: usize,
    counters: Arc<SinkCounters>,
    namer: FileNamer,
    /// `None` before start, after stop, and after a failed open or abandoned file (the next
    /// delivery or idle tick opens a new one).
    current: Option<OpenFile>,
    /// When the current file is due to be closed; advanced at a fixed rate.
    next_roll: Option<Instant>,
    /// Reused staging buffer: one batch, serialized, written with one `write_all`.
    buf: Vec<u8>,
}

impl FileRollSink {
    /// A sink writing as `config` says; nothing is touched on disk until [`Sink::start`].
    pub fn new(name: &str, config: FileRollSinkConfig, counters: Arc<SinkCounters>) -> Self {
        let roll_every = u64::try_from(config.roll_interval)
            .ok()
            .filter(|&s| s > 0)
            .map(Duration::from_secs);
        Self {
            name: name.to_owned(),
            directory: config.directory.unwrap_or_default(),
            roll_every,
            serializer: config.serializer,
            append_newline: config.append_newline,
            batch_size: config.batch_size,
            counters,
            namer: FileNamer::new(config.path_manager, config.prefix, &config.extension),
            current: None,
            next_roll: None,
            buf: Vec::new(),
        }
    }

    /// Creates the next file (a fresh name if one exists already). Counts nothing.
    async fn open_next(&mut self) -> Result<(), FileRollError> {
        let mut attempts = 0;
        loop {
            let path = self.directory.join(self.namer.next_name());
            let p = path.clone();
            let opened = tokio::task::spawn_blocking(move || {
                OpenOptions::new().write(true).create_new(true).open(&p)
            })
            .await?;
            match opened {
                Ok(file) => {
                    tracing::debug!(sink = %self.name, path = %path.display(), "Opened file.");
                    self.current = Some(OpenFile { file, path, len: 0 });
                    return Ok(());
                }
                Err(e)
                    if e.kind() == io::ErrorKind::AlreadyExists && attempts < MAX_NAME_ATTEMPTS =>
                {
                    attempts += 1;
                }
                Err(source) => return Err(FileRollError::Open { path, source }),
            }
        }
    }

    /// Closes the current file, if any. Batches are written whole, so nothing is buffered.
    async fn close_current(&mut self) {
        if let Some(out) = self.current.take() {
            let path = out.path.clone();
            // close(2) can block on network file systems.
            let _closed = tokio::task::spawn_blocking(move || drop(out)).await;
            self.counters.connection_closed.inc();
            tracing::debug!(sink = %self.name, path = %path.display(), "Closed file.");
        }
    }

    /// Rolls if the interval has elapsed, then makes sure a file is open.
    async fn ensure_open(&mut self) -> Result<(), FileRollError> {
        if let (Some(due), Some(every)) = (self.next_roll, self.roll_every) {
            let now = Instant::now();
            if now >= due {
                // Fixed rate, like Flume's `scheduleAtFixedRate`; missed ticks are skipped.
                let mut next = due + every;
                while next <= now {
                    next += every;
                }
                self.next_roll = Some(next);
                self.close_current().await;
            }
        }
        if self.current.is_none() {
            if let Err(e) = self.open_next().await {
                self.counters.connection_failed.inc();
                return Err(e);
            }
            self.counters.connection_created.inc();
        }
        Ok(())
    }

    /// Serializes `batch` into the staging buffer.
    fn serialize(&mut self, batch: &[Event]) {
        self.buf.clear();
        let nl = usize::from(self.append_newline);
        let bodies: usize = batch.iter().map(|e| e.body.len() + nl).sum();
        self.buf.reserve(bodies);
        for event in batch {
            if self.serializer == SerializerType::HeaderAndText {
                push_java_map(&mut self.buf, &event.headers);
                self.buf.push(b' ');
            }
            self.buf.extend_from_slice(&event.body);
            if self.append_newline {
                self.buf.push(b'\n');
            }
        }
    }

    /// Writes the staging buffer to the current file on the blocking pool.
    async fn write_buffer(&mut self) -> Result<(), FileRollError> {
        let Some(mut out) = self.current.take() else {
            // `ensure_open` just succeeded; nothing to write to means nothing was opened.
            return Err(FileRollError::Open {
                path: self.directory.clone(),
                source: io::Error::other("no open file"),
            });
        };
        let buf = std::mem::take(&mut self.buf);
        let joined = tokio::task::spawn_blocking(move || {
            let result = write_blocking(&mut out, &buf);
            (out, buf, result)
        })
        .await;
        let (out, mut buf, result) = match joined {
            Ok(done) => done,
            Err(e) => {
                // The file went down with the task.
                self.counters.connection_failed.inc();
                self.counters.connection_closed.inc();
                return Err(e.into());
            }
        };
        if buf.capacity() > MAX_RETAINED_BUFFER {
            buf = Vec::new();
        }
        self.buf = buf;
        match result {
            Ok(()) => {
                self.current = Some(out);
                Ok(())
            }
            Err(WriteFailure { source, truncated }) => {
                self.counters.connection_failed.inc();
                let path = out.path.clone();
                self.current = Some(out);
                if !truncated {
                    self.close_current().await;
                }
                Err(FileRollError::Write {
                    path,
                    truncated,
                    source,
                })
            }
        }
    }
}

#[async_trait]
impl Sink for FileRollSink {
    fn batch_size(&self) -> usize {
        self.batch_size
    }

    async fn start(&mut self) -> Result<(), DeliveryError> {
        self.namer.start_series();
        tokio::fs::create_dir_all(&self.directory)
            .await
            .map_err(|source| FileRollError::CreateDir {
                dir: self.directory.clone(),
                source,
            })?;
        if self.current.is_none() {
            // A failed start is counted by the driver.
            self.open_next().await?;
            self.counters.connection_created.inc();
        }
        self.next_roll = self.roll_every.map(|every| Instant::now() + every);
        Ok(())
    }

    async fn deliver(&mut self, batch: &[Event]) -> Result<(), DeliveryError> {
        self.ensure_open().await?;
        if batch.is_empty() {
            return Ok(());
        }
        self.serialize(batch);
        self.write_buffer().await?;
        Ok(())
    }

    async fn idle(&mut self) -> Result<(), DeliveryError> {
        self.ensure_open().await?;
        Ok(())
    }

    async fn stop(&mut self) {
        self.close_current().await;
        self.next_roll = None;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use flumen_core::Headers;

    use super::*;

    fn props(keys: &[(&str, &str)]) -> Props {
        let mut props = Props::new("a1.sinks.k1.", "sink k1");
        for (i, (k, v)) in keys.iter().enumerate() {
            props.insert(*k, *v, i as u32 + 1);
        }
        props
    }

    fn build_sink(keys: &[(&str, &str)]) -> (Box<dyn Sink>, Arc<SinkCounters>) {
        let counters = Arc::new(SinkCounters::default());
        let cx = SinkBuildContext {
            name: "k1".into(),
            counters: counters.clone(),
        };
        let (sink, warnings) = (DESCRIPTOR.build)(&props(keys), &cx).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        (sink, counters)
    }

    fn config_errors(keys: &[(&str, &str)]) -> Vec<String> {
        let cx = SinkBuildContext {
            name: "k1".into(),
            counters: Arc::default(),
        };
        match (DESCRIPTOR.build)(&props(keys), &cx) {
            Ok(_) => Vec::new(),
            Err(diags) => diags
                .into_iter()
                .filter(|d| d.is_error())
                .map(|d| d.message)
                .collect(),
        }
    }

    /// Files in `dir` as (name, contents), ordered by their counter `n`.
    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&path).unwrap())
            })
            .collect();
        out.sort_by_key(|(name, _)| counter_of(name));
        out
    }

    fn counter_of(name: &str) -> u64 {
        let tail = name.rsplit('-').next().unwrap();
        tail.split('.').next().unwrap().parse().unwrap()
    }

    fn events(bodies: &[&str]) -> Vec<Event> {
        bodies
            .iter()
            .map(|b| Event::new(b.as_bytes().to_vec()))
            .collect()
    }

    #[tokio::test]
    async fn writes_lines_in_order_into_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let (mut sink, counters) = build_sink(&[("sink.directory", d)]);
        assert_eq!(sink.batch_size(), 100);
        sink.start().await.unwrap();
        sink.deliver(&events(&["one", "two"])).await.unwrap();
        sink.deliver(&[]).await.unwrap();
        sink.deliver(&events(&["three"])).await.unwrap();
        // Delivered means readable by others, before any close.
        let got = files(dir.path());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, "one\ntwo\nthree\n");
        let (ms, n) = got[0].0.split_once('-').unwrap();
        assert_eq!(ms.len(), 13, "{}", got[0].0);
        assert!(ms.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(n, "1");
        sink.stop().await;
        assert_eq!(counters.connection_created.get(), 1);
        assert_eq!(counters.connection_closed.get(), 1);
        assert_eq!(counters.connection_failed.get(), 0);
    }

    #[tokio::test]
    async fn header_and_text_format() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let (mut sink, _) = build_sink(&[
            ("sink.directory", d),
            ("sink.serializer", "header_and_text"),
        ]);
        sink.start().await.unwrap();
        let h: Headers = [("b", "2"), ("a", "1")].into_iter().collect();
        sink.deliver(&[
            Event::with_headers(h, &b"body"[..]),
            Event::new(&b"plain"[..]),
        ])
        .await
        .unwrap();
        sink.stop().await;
        assert_eq!(files(dir.path())[0].1, "{a=1, b=2} body\n{} plain\n");
    }

    #[tokio::test]
    async fn append_newline_false_and_class_names() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let (mut sink, _) = build_sink(&[
            ("sink.directory", d),
            (
                "sink.serializer",
                "org.apache.flume.serialization.BodyTextEventSerializer$Builder",
            ),
            ("sink.serializer.appendNewline", "false"),
            (
                "sink.pathManager",
                "org.apache.flume.formatter.output.DefaultPathManager$Builder",
            ),
        ]);
        sink.start().await.unwrap();
        sink.deliver(&events(&["a", "b"])).await.unwrap();
        sink.stop().await;
        assert_eq!(files(dir.path())[0].1, "ab");
    }

    #[tokio::test]
    async fn prefix_and_extension_naming() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("default");
        let (mut sink, _) = build_sink(&[
            ("sink.directory", d.to_str().unwrap()),
            ("sink.pathManager.prefix", "app-"),
            ("sink.pathManager.extension", "log"),
        ]);
        sink.start().await.unwrap();
        sink.stop().await;
        let name = files(&d).remove(0).0;
        let ms = name
            .strip_prefix("app-")
            .unwrap()
            .strip_suffix("-1.log")
            .unwrap();
        assert!(
            ms.len() == 13 && ms.bytes().all(|b| b.is_ascii_digit()),
            "{name}"
        );

        let d = dir.path().join("rolltime");
        let (mut sink, _) = build_sink(&[
            ("sink.directory", d.to_str().unwrap()),
            ("sink.pathManager", "rolltime"),
            ("sink.pathManager.prefix", "x"),
            ("sink.pathManager.extension", "txt"),
        ]);
        sink.start().await.unwrap();
        sink.stop().await;
        let name = files(&d).remove(0).0;
        let stamp = name
            .strip_prefix('x')
            .unwrap()
            .strip_suffix("-1.txt")
            .unwrap();
        assert!(
            stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit()),
            "{name}"
        );
    }

    #[tokio::test]
    async fn existing_names_are_never_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let config = FileRollSinkConfig {
            directory: Some(dir.path().to_owned()),
            ..FileRollSinkConfig::default()
        };
        let counters = Arc::new(SinkCounters::default());
        let mut sink = FileRollSink::new("k1", config, counters);
        sink.namer.series_ms = Some(42);
        std::fs::write(dir.path().join("42-1"), "old\n").unwrap();
        sink.start().await.unwrap();
        sink.deliver(&events(&["new"])).await.unwrap();
        sink.stop().await;
        assert_eq!(
            files(dir.path()),
            [
                ("42-1".into(), "old\n".into()),
                ("42-2".into(), "new\n".into())
            ]
        );
    }

    #[tokio::test]
    async fn rolls_every_interval_even_without_traffic() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let (mut sink, counters) = build_sink(&[("sink.directory", d), ("sink.rollInterval", "1")]);
        sink.start().await.unwrap();
        sink.deliver(&events(&["first"])).await.unwrap();
        // Wall-clock roll: poll `idle` (as the runner does) until a second file appears.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while files(dir.path()).len() < 2 {
            assert!(std::time::Instant::now() < deadline, "no roll within 10 s");
            sink.idle().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sink.deliver(&events(&["second"])).await.unwrap();
        sink.stop().await;
        let got = files(dir.path());
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1, "first\n");
        assert_eq!(got[1].1, "second\n");
        assert_eq!(counters.connection_created.get(), 2);
        assert_eq!(counters.connection_closed.get(), 2);
    }

    #[tokio::test]
    async fn roll_interval_zero_or_negative_never_rolls() {
        for interval in ["0", "-1"] {
            let dir = tempfile::tempdir().unwrap();
            let config = FileRollSinkConfig {
                directory: Some(dir.path().to_owned()),
                roll_interval: interval.parse().unwrap(),
                ..FileRollSinkConfig::default()
            };
            let mut sink = FileRollSink::new("k1", config, Arc::default());
            assert_eq!(sink.roll_every, None);
            sink.start().await.unwrap();
            assert_eq!(sink.next_roll, None);
            sink.deliver(&events(&["a"])).await.unwrap();
            sink.idle().await.unwrap();
            sink.deliver(&events(&["b"])).await.unwrap();
            sink.stop().await;
            assert_eq!(files(dir.path()).len(), 1);
        }
        // Through the config too.
        let dir = tempfile::tempdir().unwrap();
        let (mut sink, _) = build_sink(&[
            ("sink.directory", dir.path().to_str().unwrap()),
            ("sink.rollInterval", "0"),
        ]);
        sink.start().await.unwrap();
        sink.stop().await;
    }

    #[tokio::test]
    async fn stop_leaves_complete_files_and_restart_opens_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let (mut sink, counters) = build_sink(&[("sink.directory", d)]);
        sink.start().await.unwrap();
        let batch: Vec<Event> = (0..1000)
            .map(|i| Event::new(format!("line {i:04}")))
            .collect();
        sink.deliver(&batch).await.unwrap();
        sink.stop().await;
        let expected: String = (0..1000).map(|i| format!("line {i:04}\n")).collect();
        assert_eq!(files(dir.path())[0].1, expected);
        sink.start().await.unwrap();
        sink.stop().await;
        assert_eq!(files(dir.path()).len(), 2);
        assert_eq!(
            counters.connection_created.get(),
            counters.connection_closed.get()
        );
    }

    #[tokio::test]
    async fn directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a/b/c");
        let (mut sink, _) = build_sink(&[("sink.directory", d.to_str().unwrap())]);
        sink.start().await.unwrap();
        sink.deliver(&events(&["x"])).await.unwrap();
        sink.stop().await;
        assert_eq!(files(&d)[0].1, "x\n");
    }

    #[tokio::test]
    async fn unusable_directory_fails_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        let (mut sink, counters) = build_sink(&[("sink.directory", file.to_str().unwrap())]);
        let err = sink.start().await.unwrap_err();
        assert!(matches!(err, DeliveryError::Transient(_)));
        assert!(err.to_string().contains("not-a-dir"), "{err}");
        // The driver counts a failed start, not the sink.
        assert_eq!(counters.connection_failed.get(), 0);
    }

    #[tokio::test]
    async fn failed_open_is_counted_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let config = FileRollSinkConfig {
            directory: Some(out.clone()),
            ..FileRollSinkConfig::default()
        };
        let counters = Arc::new(SinkCounters::default());
        let mut sink = FileRollSink::new("k1", config, counters.clone());
        sink.start().await.unwrap();
        // Force a roll into a directory that no longer exists.
        std::fs::remove_dir_all(&out).unwrap();
        sink.next_roll = Some(Instant::now());
        let err = sink.deliver(&events(&["lost?"])).await.unwrap_err();
        assert!(err.to_string().contains("cannot create file"), "{err}");
        assert_eq!(counters.connection_failed.get(), 1);
        assert_eq!(counters.connection_closed.get(), 1);
        std::fs::create_dir(&out).unwrap();
        sink.idle().await.unwrap();
        sink.deliver(&events(&["kept"])).await.unwrap();
        sink.stop().await;
        let got = files(&out);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, "kept\n");
        assert_eq!(counters.connection_created.get(), 2);
    }

    #[tokio::test]
    async fn failed_write_abandons_an_untruncatable_file() {
        let Ok(full) = OpenOptions::new().write(true).open("/dev/full") else {
            return; // Not Linux: nothing to inject with.
        };
        let dir = tempfile::tempdir().unwrap();
        let config = FileRollSinkConfig {
            directory: Some(dir.path().to_owned()),
            ..FileRollSinkConfig::default()
        };
        let counters = Arc::new(SinkCounters::default());
        let mut sink = FileRollSink::new("k1", config, counters.clone());
        sink.start().await.unwrap();
        sink.close_current().await;
        sink.current = Some(OpenFile {
            file: full,
            path: "/dev/full".into(),
            len: 0,
        });
        let err = sink.deliver(&events(&["retry me"])).await.unwrap_err();
        assert!(matches!(err, DeliveryError::Transient(_)));
        assert!(err.to_string().contains("file abandoned"), "{err}");
        assert!(sink.current.is_none());
        assert_eq!(counters.connection_failed.get(), 1);
        // The retry goes to a new regular file.
        sink.deliver(&events(&["retry me"])).await.unwrap();
        sink.stop().await;
        let got = files(dir.path());
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1, "retry me\n");
    }

    #[tokio::test]
    async fn failed_write_is_cut_back_when_possible() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let mut out = OpenFile {
            file,
            path: path.clone(),
            len: 0,
        };
        write_blocking(&mut out, b"good\n").unwrap();
        // The part of a failed batch the kernel accepted before the error.
        out.file.write_all(b"par").unwrap();
        assert!(cut_back(&mut out));
        write_blocking(&mut out, b"next\n").unwrap();
        drop(out);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "good\nnext\n");
    }

    #[test]
    fn config_errors_and_defaults() {
        let errors = config_errors(&[]);
        assert!(
            errors
                .iter()
                .any(|m| m.contains("missing required property `sink.directory`")),
            "{errors:?}"
        );
        assert!(
            !config_errors(&[("sink.directory", "/tmp/x"), ("sink.batchSize", "0")]).is_empty()
        );
        assert!(
            !config_errors(&[
                ("sink.directory", "/tmp/x"),
                ("sink.serializer", "avro_event")
            ])
            .is_empty()
        );
        assert!(
            !config_errors(&[("sink.directory", "/tmp/x"), ("sink.serializer", "json")]).is_empty()
        );
        assert!(
            !config_errors(&[
                ("sink.directory", "/tmp/x"),
                ("sink.pathManager.prefix", "a/b")
            ])
            .is_empty()
        );
        let (c, w) = props(&[
            ("sink.directory", "/tmp/x"),
            (
                "sink.serializer",
                "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder",
            ),
            ("sink.pathManager", "ROLLTIME"),
            ("sink.batchSize", "500"),
        ])
        .deserialize::<FileRollSinkConfig>()
        .unwrap();
        assert!(w.is_empty());
        assert_eq!(c.serializer, SerializerType::HeaderAndText);
        assert_eq!(c.path_manager, PathManagerType::RollTime);
        assert_eq!(c.batch_size, 500);
        assert_eq!(c.roll_interval, 30);
        assert!(c.append_newline);
    }
}
