//! The `spooldir` source (Flume's `SpoolDirectorySource`): reads complete, immutable files
//! dropped into a directory, one at a time, and marks or deletes each once it is delivered.
//!
//! Data path: an async loop owns the delivery; everything that touches the file system runs
//! in an [`Engine`] moved into `spawn_blocking` for one step at a time (persist the progress of
//! the last committed batch, finish or pick a file, read the next batch). The loop then
//! delivers the batch with back-off while the channel is full (up to `maxBackoff`) and only
//! after the commit tells the engine the new offset.
//!
//! Invariants:
//! - At-least-once and resumable: the progress record in `trackerDir` (see [`tracker`]) never
//!   runs ahead of what the channel committed; a restart resumes mid-file at that offset, so
//!   committed lines are neither lost nor sent again. The record is written at most once a
//!   second while reading (and always on shutdown and when a file fails), so a crash (not a
//!   shutdown) repeats at most the last second of batches.
//! - A file is finished (renamed to `name + fileSuffix`, recorded in `trackerDir`, or deleted)
//!   only after all its events were committed; the progress record is removed after that.
//! - Files are immutable once dropped. A file whose size, modification time or inode changes
//!   after it was picked up, one that cannot be read or decoded (`FAIL`), or one whose
//!   completed name already exists is an error for that file only: logged once, counted in
//!   `GenericProcessingFail`, and skipped from then on (until it is replaced by another
//!   file). Flume stops the whole source instead.
//! - A batch never spans two files (as Flume's reader).
//!
//! Candidate files are the regular files (and symlinks to them) of `spoolDir` (and of its
//! subdirectories with `recursiveDirectorySearch`) whose name does not start with `.`, does
//! not end with `fileSuffix`, matches `includePattern` and does not match `ignorePattern`,
//! ordered by `consumeOrder`. One directory scan yields a queue that is consumed before the
//! next scan; a record of progress moves its file to the front after a restart.

mod config;
mod reader;
mod tracker;

#[cfg(test)]
mod tests;

use std::collections::{HashSet, VecDeque};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flumen_config::Props;
use flumen_core::{Event, Headers, Source, SourceContext, SourceCounters, SourceError};

use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

pub use config::{
    ConsumeOrder, DeletePolicy, DeserializerType, Settings, SpoolDirSourceConfig, TrackingPolicy,
};
pub use reader::{Charset, DecodeErrorPolicy, DeserializerKind};

use reader::{FileReader, ReadError};
use tracker::{Progress, Tracker};

/// Registry entry of the `spooldir` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "spooldir",
    classes: &["org.apache.flume.source.SpoolDirectorySource"],
    description: "Reads complete files dropped into a directory; marks or deletes each when done",
    batch_size_key: Some("batchSize"),
    build,
};

/// Least time between two writes of the progress record while a file is read. Writing it
/// after every batch costs more than reading the batch; a crash repeats at most this much.
const PERSIST_INTERVAL: Duration = Duration::from_secs(1);

/// First wait after the channel refused a batch (Flume's initial `backoffInterval`).
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    let mut extra = Vec::new();
    let built = build_with(
        props,
        |c: &SpoolDirSourceConfig, p: &Props| {
            extra = c.warnings(p);
            c.validate(p)
        },
        |c| {
            let settings = c.settings()?;
            Ok(Box::new(SpoolDirSource::new(settings)) as Box<dyn Source>)
        },
    );
    built.map(|(source, mut warnings)| {
        warnings.extend(extra);
        (source, warnings)
    })
}

/// The spooling directory source.
#[derive(Debug)]
pub struct SpoolDirSource {
    settings: Arc<Settings>,
}

impl SpoolDirSource {
    /// A source running with checked `settings`.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }
}

/// What one engine step produced.
enum Step {
    /// Nothing to read: wait `pollDelay`.
    Idle,
    /// A batch to deliver; `end_offset` is the progress once it is committed.
    Batch { events: Vec<Event>, end_offset: u64 },
}

/// Runs `f` with the engine on a blocking thread and gives the engine back.
async fn blocking<T: Send + 'static>(
    mut engine: Engine,
    f: impl FnOnce(&mut Engine) -> T + Send + 'static,
) -> Result<(Engine, T), SourceError> {
    tokio::task::spawn_blocking(move || {
        let out = f(&mut engine);
        (engine, out)
    })
    .await
    .map_err(|e| SourceError::Other(Box::new(e)))
}

/// Delivers `events`, retrying with back-off from 250 ms doubling up to `max` while the
/// channel refuses them (Flume's `maxBackoff`); `Err` when shutdown came first.
async fn deliver(cx: &SourceContext, events: Vec<Event>, max: Duration) -> Result<(), ()> {
    let mut delay = FIRST_BACKOFF.min(max);
    let mut warned = false;
    loop {
        match cx.deliver(events.clone()).await {
            Ok(()) => {
                if warned {
                    tracing::info!(source = %cx.name, "Channel accepts events again.");
                }
                return Ok(());
            }
            Err(error) => {
                if !warned {
                    tracing::warn!(source = %cx.name, %error, "Channel refused a batch; retrying until it is accepted.");
                    warned = true;
                }
            }
        }
        tokio::select! {
            () = cx.shutdown.cancelled() => return Err(()),
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(max);
    }
}

#[async_trait::async_trait]
impl Source for SpoolDirSource {
    fn batch_size(&self) -> Option<usize> {
        Some(self.settings.batch_size)
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let s = Arc::clone(&self.settings);
        let batch_size = s.batch_size.clamp(1, cx.processor.max_batch().max(1));
        let poll = Duration::from_millis(s.poll_delay);
        let max_backoff = Duration::from_millis(s.max_backoff.max(1));
        let engine = Engine::new(
            Arc::clone(&s),
            Arc::clone(&cx.counters),
            Arc::clone(&cx.name),
        );
        let (mut engine, started) = blocking(engine, Engine::start).await?;
        started?;
        tracing::info!(source = %cx.name, dir = %s.spool_dir.display(), "Spooling directory source started.");
        while !cx.shutdown.is_cancelled() {
            let (e, step) = blocking(engine, move |e| e.step(batch_size)).await?;
            engine = e;
            match step {
                Step::Idle => {
                    tokio::select! {
                        () = cx.shutdown.cancelled() => break,
                        () = tokio::time::sleep(poll) => {}
                    }
                }
                Step::Batch { events, end_offset } => {
                    if deliver(&cx, events, max_backoff).await.is_err() {
                        break;
                    }
                    engine.committed(end_offset);
                }
            }
        }
        // Record the last commit so that a restart resumes exactly there.
        let _ = blocking(engine, |e| e.persist(true)).await?;
        Ok(())
    }
}

/// The file being read.
#[derive(Debug)]
struct Current {
    path: PathBuf,
    inode: u64,
    size: u64,
    mtime: (i64, i64),
    reader: FileReader,
    /// Headers every event of this file gets (`fileHeader`, `basenameHeader`).
    headers: Headers,
    /// Offset after the last committed batch.
    committed: u64,
    /// Offset in the progress record.
    persisted: u64,
    /// Whether the reader reached the end; the file is finished at the next step (which
    /// only comes after the last batch was committed).
    read_all: bool,
}

/// The blocking half of the source: scanning, opening, reading, finishing files.
#[derive(Debug)]
struct Engine {
    s: Arc<Settings>,
    tracker: Tracker,
    counters: Arc<SourceCounters>,
    name: Arc<str>,
    /// Candidates of the last scan, in consume order.
    queue: VecDeque<PathBuf>,
    current: Option<Current>,
    /// Files that failed, by path and inode; skipped until replaced by another file.
    failed: HashSet<(PathBuf, u64)>,
    /// Progress found at start, used when its file is opened.
    resume: Option<Progress>,
    /// Whether a scan or progress write failure is already logged (logged once per outage).
    scan_error_logged: bool,
    progress_error_logged: bool,
    /// When the progress record was last written (it is rate-limited).
    last_persist: Instant,
}

impl Engine {
    fn new(s: Arc<Settings>, counters: Arc<SourceCounters>, name: Arc<str>) -> Self {
        let tracker = Tracker::new(
            s.tracker_dir.clone(),
            s.spool_dir.clone(),
            s.file_suffix.clone(),
        );
        Self {
            s,
            tracker,
            counters,
            name,
            queue: VecDeque::new(),
            current: None,
            failed: HashSet::new(),
            resume: None,
            scan_error_logged: false,
            progress_error_logged: false,
            last_persist: Instant::now(),
        }
    }

    /// Checks the directory, creates the tracker directory, loads the progress record.
    fn start(&mut self) -> Result<(), SourceError> {
        let io = |context: String| move |source| SourceError::Io { context, source };
        let dir = &self.s.spool_dir;
        let meta = std::fs::metadata(dir).map_err(io(format!(
            "cannot read spooling directory {}",
            dir.display()
        )))?;
        if !meta.is_dir() {
            return Err(SourceError::Io {
                context: format!("spooling directory {}", dir.display()),
                source: std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory"),
            });
        }
        self.tracker.create().map_err(io(format!(
            "cannot create tracker directory {}",
            self.tracker.dir().display()
        )))?;
        let progress = self.tracker.load().map_err(io(format!(
            "cannot read the progress record in {}",
            self.tracker.dir().display()
        )))?;
        if let Some(p) = progress {
            match std::fs::metadata(&p.path) {
                Ok(m) if m.ino() == p.inode => {
                    tracing::info!(source = %self.name, file = %p.path.display(), offset = p.offset, "Resuming a spooled file.");
                    self.queue.push_front(p.path.clone());
                    self.resume = Some(p);
                }
                // Its file is gone or replaced: the record is stale.
                _ => {
                    let _ = self.tracker.clear();
                }
            }
        }
        Ok(())
    }

    /// Records the committed offset of the current file if the record lags behind, at most
    /// every [`PERSIST_INTERVAL`] unless `force`.
    fn persist(&mut self, force: bool) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if cur.committed == cur.persisted
            || (!force && self.last_persist.elapsed() < PERSIST_INTERVAL)
        {
            return;
        }
        self.last_persist = Instant::now();
        let p = Progress {
            path: cur.path.clone(),
            inode: cur.inode,
            offset: cur.committed,
        };
        match self.tracker.save(&p) {
            Ok(()) => {
                cur.persisted = cur.committed;
                if self.progress_error_logged {
                    self.progress_error_logged = false;
                    tracing::info!(source = %self.name, "Progress is recorded again.");
                }
            }
            Err(error) => {
                if !self.progress_error_logged {
                    self.progress_error_logged = true;
                    tracing::warn!(source = %self.name, %error, dir = %self.tracker.dir().display(), "Cannot record progress; a restart would read some lines again.");
                }
            }
        }
    }

    /// The channel committed everything up to `offset` of the current file.
    fn committed(&mut self, offset: u64) {
        if let Some(cur) = self.current.as_mut() {
            cur.committed = offset;
        }
    }

    /// One step: persist progress, finish a fully delivered file, read the next batch.
    fn step(&mut self, batch_size: usize) -> Step {
        self.persist(false);
        loop {
            let cur = match self.current.as_mut() {
                Some(cur) => cur,
                None => match self.open_next() {
                    Some(cur) => self.current.insert(cur),
                    None => return Step::Idle,
                },
            };
            if cur.read_all {
                if let Some(cur) = self.current.take() {
                    self.finish(cur);
                }
                continue;
            }
            if let Err(msg) = unchanged(cur) {
                self.fail_current(msg);
                continue;
            }
            match cur.reader.read_batch(batch_size, &cur.headers) {
                Ok(batch) => {
                    self.counters.event_read_fail.add(batch.malformed);
                    cur.read_all = batch.at_end;
                    if batch.events.is_empty() {
                        if !batch.at_end {
                            self.fail_current("the reader made no progress".into());
                        }
                        continue;
                    }
                    return Step::Batch {
                        events: batch.events,
                        end_offset: batch.end_offset,
                    };
                }
                Err(error) => {
                    if matches!(error, ReadError::Decode { .. }) {
                        self.counters.event_read_fail.inc();
                    }
                    self.fail_current(error.to_string());
                }
            }
        }
    }

    /// Stops the current file for good: logged once, counted, skipped from now on.
    fn fail_current(&mut self, msg: String) {
        // A restart then resumes where delivery stopped instead of sending it all again.
        self.persist(true);
        if let Some(cur) = self.current.take() {
            self.fail(&cur.path, cur.inode, &msg);
        }
    }

    fn fail(&mut self, path: &Path, inode: u64, msg: &str) {
        tracing::error!(source = %self.name, file = %path.display(), error = msg, "Cannot process a spooled file; skipping it from now on.");
        self.counters.generic_processing_fail.inc();
        self.failed.insert((path.to_path_buf(), inode));
    }

    /// Marks, renames or deletes a fully delivered file, then drops its progress record.
    fn finish(&mut self, cur: Current) {
        let result = unchanged(&cur).and_then(|()| self.retire(&cur.path));
        match result {
            Ok(()) => {
                tracing::debug!(source = %self.name, file = %cur.path.display(), "Finished a spooled file.");
                if let Err(error) = self.tracker.clear() {
                    tracing::warn!(source = %self.name, %error, "Cannot remove the progress record.");
                }
            }
            Err(msg) => self.fail(&cur.path, cur.inode, &msg),
        }
    }

    fn retire(&self, path: &Path) -> Result<(), String> {
        let describe = |what: &str, e: std::io::Error| format!("cannot {what}: {e}");
        match (self.s.delete_policy, self.s.tracking_policy) {
            (DeletePolicy::Immediate, _) => {
                std::fs::remove_file(path).map_err(|e| describe("delete it", e))
            }
            (DeletePolicy::Never, TrackingPolicy::TrackerDir) => self
                .tracker
                .mark_done(path)
                .map_err(|e| describe("record it as done in the tracker directory", e)),
            (DeletePolicy::Never, TrackingPolicy::Rename) => {
                rename_no_replace(path, &completed_name(path, &self.s.file_suffix))
            }
        }
    }

    /// Pops queued candidates (scanning once when the queue is empty) until one opens.
    fn open_next(&mut self) -> Option<Current> {
        let mut scanned = false;
        loop {
            let path = match self.queue.pop_front() {
                Some(p) => p,
                None if scanned => return None,
                None => {
                    self.scan();
                    scanned = true;
                    continue;
                }
            };
            match self.open(&path) {
                Ok(Some(cur)) => return Some(cur),
                Ok(None) => {}
                Err((inode, msg)) => self.fail(&path, inode, &msg),
            }
        }
    }

    /// Opens `path` unless it went away or must be skipped; `Err` for a file that is wrong.
    fn open(&mut self, path: &Path) -> Result<Option<Current>, (u64, String)> {
        let meta = match std::fs::metadata(path) {
            Ok(m) if m.is_file() => m,
            _ => return Ok(None),
        };
        let inode = meta.ino();
        if self.failed.contains(&(path.to_path_buf(), inode)) {
            return Ok(None);
        }
        let s = &self.s;
        match (s.delete_policy, s.tracking_policy) {
            (DeletePolicy::Never, TrackingPolicy::Rename) => {
                let done = completed_name(path, &s.file_suffix);
                if std::fs::symlink_metadata(&done).is_ok() {
                    return Err((inode, clash_message(&done)));
                }
            }
            (DeletePolicy::Never, TrackingPolicy::TrackerDir) if self.tracker.is_done(path) => {
                return Ok(None);
            }
            _ => {}
        }
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err((inode, format!("cannot open it: {e}"))),
        };
        let meta = file
            .metadata()
            .map_err(|e| (inode, format!("cannot stat it: {e}")))?;
        let inode = meta.ino();
        let size = meta.size();
        let mut offset = 0;
        if let Some(p) = self.resume.take_if(|p| p.path == path) {
            if p.inode == inode && p.offset <= size {
                offset = p.offset;
            } else {
                tracing::warn!(source = %self.name, file = %path.display(), "The progress record does not fit the file; reading it from the start.");
            }
        }
        let mut file = file;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| (inode, format!("cannot seek to the recorded offset: {e}")))?;
        }
        let reader = FileReader::new(file, offset, size, s.deserializer);
        let mut headers = Headers::new();
        if let Some(key) = &s.file_header_key {
            headers.insert(key.clone(), path.to_string_lossy());
        }
        if let Some(key) = &s.basename_header_key {
            let base = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            headers.insert(key.clone(), base);
        }
        tracing::debug!(source = %self.name, file = %path.display(), offset, "Reading a spooled file.");
        Ok(Some(Current {
            path: path.to_path_buf(),
            inode,
            size,
            mtime: (meta.mtime(), meta.mtime_nsec()),
            reader,
            headers,
            committed: offset,
            persisted: offset,
            read_all: false,
        }))
    }

    /// Lists the candidates in consume order into the queue.
    fn scan(&mut self) {
        let mut found = Vec::new();
        let root = self.s.spool_dir.clone();
        match self.walk(&root, &mut found) {
            Ok(()) => {
                if self.scan_error_logged {
                    self.scan_error_logged = false;
                    tracing::info!(source = %self.name, "The spooling directory is readable again.");
                }
            }
            Err(error) => {
                if !self.scan_error_logged {
                    self.scan_error_logged = true;
                    tracing::error!(source = %self.name, %error, dir = %root.display(), "Cannot list the spooling directory.");
                }
            }
        }
        match self.s.consume_order {
            ConsumeOrder::Oldest => found.sort_unstable(),
            ConsumeOrder::Youngest => {
                found.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            }
            ConsumeOrder::Random => shuffle(&mut found),
        }
        self.queue.extend(found.into_iter().map(|(_, p)| p));
    }

    /// Adds the candidates of `dir` (and of its subdirectories when recursive) to `found`.
    /// Only a failure to list the top directory is an error; subdirectories that vanish or
    /// cannot be read are skipped.
    fn walk(&self, dir: &Path, found: &mut Vec<((i64, i64), PathBuf)>) -> std::io::Result<()> {
        let s = &self.s;
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if s.recursive && path != s.tracker_dir {
                    let _ = self.walk(&path, found);
                }
                continue;
            }
            if name.ends_with(s.file_suffix.as_str())
                || !s.include.is_match(&name)
                || s.ignore.is_match(&name)
            {
                continue;
            }
            // Follows symlinks: a link to a regular file is read like the file.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() || self.failed.contains(&(path.clone(), meta.ino())) {
                continue;
            }
            if s.delete_policy == DeletePolicy::Never
                && s.tracking_policy == TrackingPolicy::TrackerDir
                && self.tracker.is_done(&path)
            {
                continue;
            }
            found.push(((meta.mtime(), meta.mtime_nsec()), path));
        }
        Ok(())
    }
}

/// `Ok` when the open file still has the size and mtime it had at pickup and its path still
/// names it; otherwise why not.
fn unchanged(cur: &Current) -> Result<(), String> {
    let meta = cur
        .reader
        .file()
        .metadata()
        .map_err(|e| format!("cannot stat it: {e}"))?;
    if meta.size() != cur.size || (meta.mtime(), meta.mtime_nsec()) != cur.mtime {
        return Err(format!(
            "it was modified after it was picked up (size {} -> {}); spooled files must not change",
            cur.size,
            meta.size()
        ));
    }
    match std::fs::metadata(&cur.path) {
        Ok(m) if m.ino() == cur.inode => Ok(()),
        Ok(_) => Err("it was replaced by another file while it was being read".into()),
        Err(e) => Err(format!("it disappeared while it was being read: {e}")),
    }
}

/// `path` with `suffix` appended to its name.
fn completed_name(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

fn clash_message(done: &Path) -> String {
    format!(
        "file name has been re-used: {} already exists; spooled file names must be unique",
        done.display()
    )
}

/// Renames `from` to `to` unless `to` exists: a hard link (which fails on an existing name)
/// then an unlink, so that a file dropped under the completed name is never overwritten. A
/// `to` that is already the same file (a crash between link and unlink) just loses `from`.
fn rename_no_replace(from: &Path, to: &Path) -> Result<(), String> {
    match std::fs::hard_link(from, to) {
        Ok(()) => {
            std::fs::remove_file(from).map_err(|e| format!("cannot remove it after linking: {e}"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let same = match (std::fs::metadata(from), std::fs::metadata(to)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if same {
                std::fs::remove_file(from).map_err(|e| format!("cannot remove it: {e}"))
            } else {
                Err(clash_message(to))
            }
        }
        // No hard links here (some file systems): check, then rename.
        Err(_) => {
            if std::fs::symlink_metadata(to).is_ok() {
                return Err(clash_message(to));
            }
            std::fs::rename(from, to).map_err(|e| format!("cannot rename it: {e}"))
        }
    }
}

/// Fisher-Yates with a xorshift generator seeded from a random UUID; `random` order needs no
/// more than that.
fn shuffle<T>(items: &mut [T]) {
    let mut x = (uuid::Uuid::new_v4().as_u128() as u64) | 1;
    for i in (1..items.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
