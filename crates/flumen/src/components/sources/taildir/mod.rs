//! The `TAILDIR` source (Flume's `TaildirSource`): follows the files matched by per-group
//! patterns, one line = one event, and records its progress in Flume's JSON position file.
//!
//! Layout: [`config`] (keys and defaults), [`position`] (the JSON position file), [`journal`]
//! (the crash-proof position journal), [`tailer`] (one file: positions, buffering, line
//! splitting, finding a copytruncate copy), this module (discovery, scheduling, delivery,
//! position writes).
//!
//! How it works:
//! - Files are identified by (device, inode), so both rotation styles work. Rename + create:
//!   the renamed file keeps its identity, is read to its end (even when its new name no longer
//!   matches), and is let go once idle; the new file at the path is a new file, read from 0.
//!   Copytruncate: a file shorter than what was read was truncated and is read again from 0,
//!   after the lines it had beyond the last read are recovered from its copy (below).
//! - Discovery and wake-ups come from inotify (the `notify` crate) on each group's directory:
//!   a write to a followed file queues that file alone; a create/rename/delete re-lists that
//!   directory. A poll of every directory (stat of each matched file) backs this up every
//!   `backoffSleepIncrement`, growing to `maxBackoffSleep` while it finds nothing, so an idle
//!   source with 1,000 files costs a few stat calls per second at most.
//! - Copytruncate recovery: the lines a writer appended after the source's last read and
//!   before the truncation are in the copy only (logrotate copies, then truncates; a source
//!   held up by a full channel may be seconds behind). When a truncation is seen, the source
//!   looks in the file's directory for that copy: a regular file changed in the last
//!   [`tailer::COPY_MAX_AGE`], not followed and not matching the group, longer than what was
//!   read, whose first bytes and bytes just before the read position equal those read from the
//!   original (64 bytes each, kept per file). If found, it is read from the read position to
//!   its end (the incomplete last line continues there) before the truncated file is read
//!   again from 0. Not recoverable: lines written between the copy and the truncation
//!   (logrotate's own window), a copy compressed or removed before the source looked
//!   (`compress` without `delaycompress`), and, after a crash while the copy was being read,
//!   the copy's rest (the restart finds the file shorter than its position and reads it
//!   from 0).
//! - At-least-once: a file's position advances only after the channel committed the batch
//!   holding its lines (`deliver_retrying`), so a crash re-reads at most the batch in flight.
//!   The position file is written every `writePosInterval` (atomically, by a blocking task that
//!   does not hold up reading), at startup (with the positions it resumed from) and at
//!   shutdown. Between two writes, each committed position also goes to the position journal
//!   ([`journal`]: `<positionFile>.journal`, one fixed 64-byte slot per file overwritten in
//!   place by a writer thread, no fsync), which a restart after a crash prefers: so a SIGKILL
//!   re-reads about the batch in flight, not up to `writePosInterval` of lines.
//! - Reading runs on the blocking pool in chunks of up to 256 KiB (`pread`), lines are found
//!   with `memchr`, and every body is a slice of its chunk; nothing is logged per line.
//! - Rounds: woken from idle by a write, the source first waits [`GATHER`] (20 ms; cut short
//!   by a directory change, so a new file is still opened at once) so that the files written
//!   meanwhile are handled together: the ready files (up to the first
//!   one needing its own turn: rotated away, truncated, being recovered, with a backlog) are
//!   read in one blocking task (until [`tailer::READ_CHUNK`] bytes in all) and their lines
//!   delivered in as few batches as `batchSize` allows, with one journal wake per commit.
//!   Each file's position still advances only after the commit holding its lines. So 1,000
//!   slowly written files cost one hand-off chain (read task, commit, journal write, sink
//!   wake) per round rather than per line. A busy source (files still ready) never waits; a
//!   single ready file gets its turn as before.
//! - Fairness: a file gets at most `maxBatchCount` batches in a row before the next ready file
//!   (in a round, at most `maxBatchCount` batches' worth of its lines).
//! - Housekeeping (every second, or faster for short timeouts): files idle for `idleTimeout`
//!   are closed (their incomplete last line is delivered first), rotated-away files idle for
//!   [`ORPHAN_IDLE`] (at most `idleTimeout`) are let go the same way, and multi-line events
//!   waiting longer than `multiline.flushTimeout` are delivered.
//!
//! Differences from Flume (for `docs/compat.md`): the default position file is
//! `~/.flumen/taildir_position.json`; a renamed file whose new name no longer matches is still
//! read to its end (Flume stops reading it at once); files let go are dropped from the position
//! file (Flume keeps them forever); bodies are the file's bytes (no charset decoding);
//! `multiline.*` is flumen's own; so are the position journal (`<positionFile>.journal`,
//! removed at a graceful stop; Flume ignores it) and the copytruncate recovery; the position
//! file is also written at startup.

pub mod config;
pub mod journal;
pub mod position;
pub mod tailer;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use flumen_config::Props;
use flumen_core::source::Cancelled;
use flumen_core::{Source, SourceContext, SourceError};
use notify::Watcher;
use tokio::task::JoinHandle;

use self::config::Settings;
pub use self::config::TaildirSourceConfig;
use self::tailer::{FileKey, ReadOutcome, TailFile};
use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor};

/// Registry entry of the `TAILDIR` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "taildir",
    classes: &["org.apache.flume.source.taildir.TaildirSource"],
    description: "Follows files matching per-group patterns; one line = one event; JSON position file",
    batch_size_key: Some("batchSize"),
    build,
};

/// A rotated-away file is let go after this long without new data (or `idleTimeout`, if
/// shorter): long enough for a writer to reopen its log after a rename.
pub const ORPHAN_IDLE: Duration = Duration::from_secs(5);
/// How long the source, woken from idle by a write, waits for more writes before it reads:
/// the files changed within this window are read in one blocking task and their lines
/// delivered in one commit, instead of one hand-off chain (read task, commit, journal write,
/// sink wake) per changed file. It delays a line written after a quiet moment by this much
/// (Flume's TAILDIR polls, sleeping up to `maxBackoffSleep`, 5 s); a busy source never waits.
pub const GATHER: Duration = Duration::from_millis(20);
/// Most files read in one round.
const ROUND_MAX_FILES: usize = 1024;
/// Longest time between two housekeeping rounds.
const HOUSEKEEPING_MAX: Duration = Duration::from_secs(1);
/// Shortest time between two housekeeping rounds.
const HOUSEKEEPING_MIN: Duration = Duration::from_millis(10);
/// A directory modified less than this before it was listed is listed again next time even
/// with `cachePatternMatching` (mtime granularity; Flume's rule).
const DIR_MTIME_SLACK: Duration = Duration::from_secs(2);

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    // Not `build_with`: the `filegroups.<g>` paths sit under a key that is also a plain field,
    // which the generic deserializer cannot give to one struct; `config::deserialize` does.
    let (config, warnings) = config::deserialize(props)?;
    match config.settings(props) {
        Ok(settings) => Ok((Box::new(TaildirSource::new(settings)), warnings)),
        Err(errors) => Err(errors.into_iter().chain(warnings).collect()),
    }
}

/// The TAILDIR source.
#[derive(Debug)]
pub struct TaildirSource {
    settings: Arc<Settings>,
}

impl TaildirSource {
    /// A source with checked settings.
    pub fn new(settings: Settings) -> Self {
        Self {
            settings: Arc::new(settings),
        }
    }
}

#[async_trait::async_trait]
impl Source for TaildirSource {
    fn batch_size(&self) -> Option<usize> {
        Some(self.settings.batch_size)
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let mut runner = Runner::new(self.settings, &cx);
        runner.start().await;
        let _ = runner.run_loop(&cx).await;
        runner.stop().await;
        Ok(())
    }
}

/// What the inotify thread has seen since the source last looked.
#[derive(Debug, Default)]
struct SignalState {
    /// Files written to (or touched).
    paths: HashSet<PathBuf>,
    /// Directories where something was created, renamed or deleted.
    dirs: HashSet<PathBuf>,
    /// The kernel queue overflowed (or the watcher failed): look at everything.
    rescan_all: bool,
    /// The source waits for a notification: the next event must wake it. Cleared by that
    /// wake, so the events that arrive while the source works (or gathers) cost no wake-up.
    armed: bool,
    /// The source gathers writes ([`GATHER`]): a directory change (a new file, a rename)
    /// must end that wait at once, so that a new file is opened before it can be renamed away.
    gathering: bool,
}

impl SignalState {
    fn is_empty(&self) -> bool {
        self.paths.is_empty() && self.dirs.is_empty() && !self.rescan_all
    }
}

/// The bridge from the watcher's thread to the source: coalesced, so its size is bounded by
/// the number of distinct paths, however fast files are written.
#[derive(Debug, Default)]
struct Signals {
    state: Mutex<SignalState>,
    wake: tokio::sync::Notify,
}

impl Signals {
    fn on_event(&self, event: notify::Result<notify::Event>) {
        use notify::EventKind as K;
        use notify::event::ModifyKind;
        let mut urgent = false;
        let wake = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match event {
                Err(_) => st.rescan_all = true,
                Ok(ev) => {
                    if ev.need_rescan() {
                        st.rescan_all = true;
                    }
                    match ev.kind {
                        // Opens (ours too) and closes: nothing new to read; a write
                        // already came as a modification.
                        K::Access(_) => return,
                        K::Create(_) | K::Remove(_) | K::Modify(ModifyKind::Name(_)) => {
                            urgent = true;
                            for p in ev.paths {
                                if let Some(dir) = p.parent() {
                                    st.dirs.insert(dir.to_path_buf());
                                }
                                st.paths.insert(p);
                            }
                        }
                        K::Modify(_) | K::Any | K::Other => st.paths.extend(ev.paths),
                    }
                }
            }
            if st.rescan_all {
                urgent = true;
            }
            let gather_ends = urgent && std::mem::take(&mut st.gathering);
            std::mem::take(&mut st.armed) || gather_ends
        };
        if wake {
            self.wake.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SignalState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self) -> SignalState {
        let mut st = self.lock();
        let (armed, gathering) = (st.armed, st.gathering);
        let taken = std::mem::take(&mut *st);
        st.armed = armed;
        st.gathering = gathering;
        taken
    }

    /// Before the source gathers writes: asks for a wake by the next directory change. False
    /// when one already arrived (no gathering then).
    fn start_gather(&self) -> bool {
        let mut st = self.lock();
        st.gathering = st.dirs.is_empty() && !st.rescan_all;
        st.gathering
    }

    fn end_gather(&self) {
        self.lock().gathering = false;
    }

    /// Before the source waits: asks for a wake by the next event. False (and not armed) when
    /// something already arrived, so the source looks at it instead of waiting.
    fn arm(&self) -> bool {
        let mut st = self.lock();
        st.armed = st.is_empty();
        st.armed
    }

    /// After the source woke by another cause: events need not wake it until it waits again.
    fn disarm(&self) {
        self.lock().armed = false;
    }
}

/// A group directory's cached listing (`cachePatternMatching`).
#[derive(Debug, Default, Clone)]
struct DirCache {
    /// The directory's mtime when listed.
    mtime: Option<SystemTime>,
    /// When it was listed.
    listed_at: Option<SystemTime>,
    /// Matching names.
    names: Vec<OsString>,
}

/// A matching regular file found by a scan.
#[derive(Debug)]
struct Found {
    key: FileKey,
    path: PathBuf,
    group: usize,
    size: u64,
    mtime: SystemTime,
    /// Opened at once when the file is new to the source, so that a file renamed away right
    /// after its creation is still read.
    file: Option<File>,
}

/// What a scan of some groups found.
struct Scan {
    caches: Vec<(usize, DirCache)>,
    found: Vec<Found>,
    /// Groups whose directory was listed successfully.
    ok: Vec<usize>,
    /// Groups whose directory could not be listed, with the error.
    failed: Vec<(usize, std::io::Error)>,
}

/// Lists the directories of `caches`' groups and stats their matching files. Blocking.
fn scan_blocking(
    settings: &Settings,
    caches: Vec<(usize, DirCache)>,
    known: &HashSet<FileKey>,
) -> Scan {
    use std::os::unix::fs::MetadataExt;
    let mut scan = Scan {
        caches: Vec::with_capacity(caches.len()),
        found: Vec::new(),
        ok: Vec::new(),
        failed: Vec::new(),
    };
    for (g, mut cache) in caches {
        let Some(group) = settings.groups.get(g) else {
            continue;
        };
        let dir_mtime = match std::fs::metadata(&group.dir).and_then(|m| m.modified()) {
            Ok(t) => t,
            Err(e) => {
                scan.failed.push((g, e));
                scan.caches.push((g, DirCache::default()));
                continue;
            }
        };
        let fresh = settings.cache_pattern_matching
            && cache.mtime == Some(dir_mtime)
            && cache
                .listed_at
                .and_then(|l| l.duration_since(dir_mtime).ok())
                .is_some_and(|d| d >= DIR_MTIME_SLACK);
        if !fresh {
            let now = SystemTime::now();
            match std::fs::read_dir(&group.dir) {
                Ok(entries) => {
                    cache.names = entries
                        .filter_map(Result::ok)
                        .map(|e| e.file_name())
                        .filter(|n| group.pattern.is_match(&n.to_string_lossy()))
                        .collect();
                    cache.mtime = Some(dir_mtime);
                    cache.listed_at = Some(now);
                }
                Err(e) => {
                    scan.failed.push((g, e));
                    scan.caches.push((g, DirCache::default()));
                    continue;
                }
            }
        }
        for name in &cache.names {
            let path = group.dir.join(name);
            let Ok(meta) = std::fs::metadata(&path) else {
                continue; // Gone since the listing; the next scan will not list it.
            };
            if !meta.is_file() {
                continue;
            }
            let key = (meta.dev(), meta.ino());
            let file = if known.contains(&key) {
                None
            } else {
                tailer::open_checked(&path, key).ok().flatten()
            };
            scan.found.push(Found {
                key,
                path,
                group: g,
                size: meta.len(),
                mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                file,
            });
        }
        scan.ok.push(g);
        scan.caches.push((g, cache));
    }
    scan
}

/// One file's read in a round.
struct RoundRead {
    key: FileKey,
    file: Option<Arc<File>>,
    path: PathBuf,
    offset: u64,
    carry: bytes::BytesMut,
}

/// Reads the files of a round in turn, until [`tailer::READ_CHUNK`] bytes are read in all:
/// each file's key, the offset it was read from, the result, and whether it was read (when
/// not, for want of budget, the result gives back its handle and carry untouched). Blocking.
fn read_round_blocking(reads: Vec<RoundRead>) -> Vec<(FileKey, u64, tailer::ReadResult, bool)> {
    let mut total = 0usize;
    reads
        .into_iter()
        .map(|r| {
            if total >= tailer::READ_CHUNK {
                let res = tailer::ReadResult {
                    file: r.file,
                    carry: r.carry,
                    outcome: Ok(ReadOutcome::Eof),
                };
                return (r.key, r.offset, res, false);
            }
            let res = tailer::read_blocking(r.file, &r.path, r.key, r.offset, r.carry);
            if let Ok(ReadOutcome::Data { chunk, .. }) = &res.outcome {
                total += chunk.len();
            }
            (r.key, r.offset, res, true)
        })
        .collect()
}

/// How a file's turn ended.
enum Drain {
    /// Read to its end (or a read error, logged).
    Done,
    /// Stopped after `maxBatchCount` batches: more to read.
    More,
    /// The closed file is no longer at its path: let it go.
    Gone,
}

/// The running source's state.
struct Runner {
    settings: Arc<Settings>,
    name: Arc<str>,
    /// Largest batch: `batchSize`, cut to the channels' transaction capacity.
    max_batch: usize,
    files: HashMap<FileKey, TailFile>,
    /// Path → file, for the files at a matching path (not the rotated-away ones).
    by_path: HashMap<PathBuf, FileKey>,
    /// Files that may have something to read, in turn order; `queued` mirrors it.
    ready: VecDeque<FileKey>,
    queued: HashSet<FileKey>,
    dir_cache: Vec<DirCache>,
    signals: Arc<Signals>,
    watcher: Option<notify::RecommendedWatcher>,
    /// Directories under watch.
    watched: HashSet<PathBuf>,
    /// Directories whose listing failed (warned once until they come back).
    missing: HashSet<PathBuf>,
    /// Positions read at startup, by inode; used by the first scan only.
    startup_positions: HashMap<u64, Vec<position::Entry>>,
    /// Journal records read at startup, by file; used by the first scan only.
    startup_journal: HashMap<FileKey, journal::Record>,
    /// The position journal of this run (started once the startup positions are stored).
    journal: Option<journal::Journal>,
    /// Each journaled file's slot and path hash.
    slots: HashMap<FileKey, (u32, u64)>,
    /// Slots of files let go, lowest first.
    free_slots: BinaryHeap<Reverse<u32>>,
    /// The next never-used slot.
    next_slot: u32,
    positions_dirty: bool,
    last_pos_write: Instant,
    pos_write: Option<JoinHandle<()>>,
}

impl Runner {
    fn new(settings: Arc<Settings>, cx: &SourceContext) -> Self {
        let max_batch = settings.batch_size.min(cx.processor.max_batch()).max(1);
        let groups = settings.groups.len();
        Self {
            settings,
            name: cx.name.clone(),
            max_batch,
            files: HashMap::new(),
            by_path: HashMap::new(),
            ready: VecDeque::new(),
            queued: HashSet::new(),
            dir_cache: vec![DirCache::default(); groups],
            signals: Arc::default(),
            watcher: None,
            watched: HashSet::new(),
            missing: HashSet::new(),
            startup_positions: HashMap::new(),
            startup_journal: HashMap::new(),
            journal: None,
            slots: HashMap::new(),
            free_slots: BinaryHeap::new(),
            next_slot: 0,
            positions_dirty: true,
            last_pos_write: Instant::now(),
            pos_write: None,
        }
    }

    /// Loads the position file, starts watching, and finds the files.
    async fn start(&mut self) {
        let path = self.settings.position_file.clone();
        let jpath = journal::journal_path(&path);
        let (loaded, journaled) = tokio::task::spawn_blocking({
            let (path, jpath) = (path.clone(), jpath.clone());
            move || {
                (
                    position::load_blocking(&path),
                    journal::load_blocking(&jpath),
                )
            }
        })
        .await
        .unwrap_or_else(|e| (Err(e.to_string()), Ok(Vec::new())));
        match journaled {
            Ok(records) => {
                for r in records {
                    self.startup_journal.insert((r.dev, r.inode), r);
                }
            }
            Err(error) => {
                tracing::warn!(source = %self.name, file = %jpath.display(), %error,
                    "Cannot read the position journal; using the position file alone.");
            }
        }
        match loaded {
            Ok(entries) => {
                for e in entries {
                    self.startup_positions.entry(e.inode).or_default().push(e);
                }
            }
            Err(error) => {
                let from = if self.settings.skip_to_end {
                    "their end"
                } else {
                    "the beginning"
                };
                tracing::error!(source = %self.name, file = %path.display(), %error,
                    "Position file is damaged; reading files from {from}.", from = from);
            }
        }
        let signals = Arc::clone(&self.signals);
        match notify::recommended_watcher(move |ev| signals.on_event(ev)) {
            Ok(w) => self.watcher = Some(w),
            Err(error) => {
                tracing::warn!(source = %self.name, %error,
                    "File notifications are unavailable; polling only.");
            }
        }
        let all: Vec<usize> = (0..self.settings.groups.len()).collect();
        self.rescan(all, true).await;
        self.startup_positions.clear();
        self.startup_journal.clear();
        // The position file now records where this run starts (including what the journal
        // of a crashed run knew); only then is that journal replaced by a fresh one.
        let json = self.positions_json();
        let stored =
            tokio::task::spawn_blocking(move || position::store_blocking(&path, &json)).await;
        if let Ok(Err(error)) = stored {
            tracing::error!(source = %self.name, file = %self.settings.position_file.display(),
                %error, "Writing the position file failed.");
        }
        self.positions_dirty = false;
        self.last_pos_write = Instant::now();
        match journal::Journal::start(jpath, Arc::clone(&self.name)) {
            Ok(j) => self.journal = Some(j),
            Err(error) => {
                tracing::warn!(source = %self.name, %error,
                    "Cannot start the position journal; a crash will re-read up to writePosInterval of lines.");
            }
        }
        tracing::info!(source = %self.name, files = self.files.len(),
            groups = self.settings.groups.len(), "Taildir source started.");
    }

    /// Writes the final positions.
    async fn stop(&mut self) {
        if let Some(h) = self.pos_write.take() {
            let _ = h.await;
        }
        let json = self.positions_json();
        let path = self.settings.position_file.clone();
        let journal = self.journal.take();
        // The journal's last records are written before the final position file, and the
        // journal is removed once that file holds everything.
        let res = tokio::task::spawn_blocking(move || {
            if let Some(j) = journal {
                j.close_blocking();
            }
            position::store_blocking(&path, &json)?;
            journal::remove_blocking(&journal::journal_path(&path))
        })
        .await;
        match res {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(source = %self.name, file = %self.settings.position_file.display(),
                    %error, "Writing the position file failed.");
            }
            Err(error) => {
                tracing::error!(source = %self.name, %error, "Writing the position file failed.");
            }
        }
        tracing::info!(source = %self.name, "Taildir source stopped.");
    }

    fn housekeeping_interval(&self) -> Duration {
        let s = &self.settings;
        let mut tick = HOUSEKEEPING_MAX.min(s.idle_timeout / 2);
        if s.multiline.is_some() {
            tick = tick.min(s.multiline_flush / 2);
        }
        tick.min(s.write_pos_interval).max(HOUSEKEEPING_MIN)
    }

    /// Until shutdown: files in turn, notifications, housekeeping and the fallback poll.
    async fn run_loop(&mut self, cx: &SourceContext) -> Result<(), Cancelled> {
        let tick = self.housekeeping_interval();
        let mut next_tick = Instant::now() + tick;
        let mut idle_polls: u32 = 0;
        let mut next_poll = Instant::now() + self.settings.backoff_increment;
        loop {
            if cx.shutdown.is_cancelled() {
                return Err(Cancelled);
            }
            self.take_signals().await;
            let round = self.take_round();
            if round.len() >= 2 {
                self.round(round, cx).await?;
            } else if let Some(key) = self.ready.pop_front() {
                self.queued.remove(&key);
                match self.drain(key, cx, self.settings.max_batch_count).await? {
                    Drain::Done => {}
                    Drain::More => self.enqueue(key),
                    Drain::Gone => self.finish(key, true, cx).await?,
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                self.housekeeping(cx).await?;
                next_tick = Instant::now() + tick;
            }
            if now >= next_poll {
                let all: Vec<usize> = (0..self.settings.groups.len()).collect();
                let found = self.rescan(all, false).await;
                let orphans: Vec<FileKey> = self
                    .files
                    .values()
                    .filter(|f| f.orphan)
                    .map(|f| f.key)
                    .collect();
                for key in orphans {
                    self.enqueue(key);
                }
                idle_polls = if found {
                    0
                } else {
                    idle_polls.saturating_add(1)
                };
                let s = &self.settings;
                let wait = (s.backoff_increment * idle_polls.max(1)).min(s.backoff_max);
                next_poll = Instant::now() + wait;
            }
            self.maybe_write_positions(false);
            if !self.ready.is_empty() {
                continue;
            }
            if !self.signals.arm() {
                continue; // Notifications arrived meanwhile.
            }
            let until = tokio::time::Instant::from_std(next_tick.min(next_poll));
            let notified = tokio::select! {
                () = cx.shutdown.cancelled() => return Err(Cancelled),
                () = self.signals.wake.notified() => true,
                () = tokio::time::sleep_until(until) => {
                    self.signals.disarm();
                    false
                }
            };
            if notified {
                // Woken from idle by a write: gather the changes of a short window, so that
                // files written at about the same time are read in one blocking task and
                // delivered in one commit (one wake of the journal and of the sink). Not when
                // a directory changed: a new file is opened at once.
                if self.signals.start_gather() {
                    tokio::select! {
                        () = cx.shutdown.cancelled() => return Err(Cancelled),
                        () = tokio::time::sleep(GATHER) => {}
                        () = self.signals.wake.notified() => {}
                    }
                    self.signals.end_gather();
                }
            }
        }
    }

    /// Takes, from the front of the ready queue, the files that a round can handle: up to the
    /// first one that needs its own turn (a rotated-away file, so that it is still read before
    /// its successor; a truncated file; one read from a copy; one with a backlog). Empty
    /// (the queue untouched) when fewer than two.
    fn take_round(&mut self) -> Vec<FileKey> {
        let n = self
            .ready
            .iter()
            .take(ROUND_MAX_FILES)
            .take_while(|key| {
                self.files.get(key).is_some_and(|tf| {
                    !tf.orphan && !tf.truncated && !tf.recovering && !tf.has_backlog()
                })
            })
            .count();
        if n < 2 {
            return Vec::new();
        }
        let keys: Vec<FileKey> = self.ready.drain(..n).collect();
        for key in &keys {
            self.queued.remove(key);
        }
        keys
    }

    /// One turn for several files: reads all of them in one blocking task (until
    /// [`tailer::READ_CHUNK`] bytes are read; the rest keep their place in the queue), then
    /// delivers their lines together, in as few batches as `batchSize` allows, each file
    /// giving at most `maxBatchCount` batches' worth. A file's position advances after the
    /// commit of the batch holding its last delivered line, as in [`Self::drain`]. Files the
    /// read found truncated, gone or failing get their own turn ([`Self::drain`]) afterwards.
    async fn round(&mut self, keys: Vec<FileKey>, cx: &SourceContext) -> Result<(), Cancelled> {
        let reads: Vec<RoundRead> = keys
            .iter()
            .filter_map(|&key| {
                let tf = self.files.get_mut(&key)?;
                Some(RoundRead {
                    key,
                    file: tf.file.clone(),
                    path: tf.path.clone(),
                    offset: tf.read_pos,
                    carry: tf.take_carry(),
                })
            })
            .collect();
        let results = match tokio::task::spawn_blocking(move || read_round_blocking(reads)).await {
            Ok(results) => results,
            Err(error) => {
                // The carries went with the task: re-read everything not committed.
                for key in &keys {
                    if let Some(tf) = self.files.get_mut(key) {
                        let pos = tf.pos;
                        tf.reset_to(pos);
                    }
                }
                tracing::error!(source = %self.name, %error, "Reading the files failed.");
                return Ok(());
            }
        };
        let now = Instant::now();
        let mut own_turn = HashSet::new();
        let mut more = HashSet::new();
        let mut skipped = Vec::new();
        for (key, offset, res, read) in results {
            let Some(tf) = self.files.get_mut(&key) else {
                continue;
            };
            tf.file = res.file;
            if !read {
                tf.set_carry(res.carry);
                skipped.push(key);
                continue;
            }
            match res.outcome {
                Ok(ReadOutcome::Data {
                    chunk,
                    base,
                    at_end,
                }) => {
                    tf.note_read(&chunk, base, offset);
                    tf.read_pos = base + chunk.len() as u64;
                    tf.last_data = now;
                    tf.split(chunk, base, &self.settings);
                    if !at_end {
                        more.insert(key);
                    }
                }
                Ok(ReadOutcome::Eof) => tf.set_carry(res.carry),
                // Truncated, gone, failed: handled (read again) in the file's own turn.
                _ => {
                    tf.set_carry(res.carry);
                    own_turn.insert(key);
                }
            }
        }
        let cap = usize::try_from(
            self.settings
                .max_batch_count
                .saturating_mul(self.max_batch as u64),
        )
        .unwrap_or(usize::MAX);
        let mut batch: Vec<flumen_core::Event> = Vec::new();
        let mut ends: Vec<(FileKey, u64)> = Vec::new();
        for key in &keys {
            let mut budget = cap;
            while budget > 0
                && let Some(tf) = self.files.get_mut(key)
                && tf.has_backlog()
            {
                let (events, end) = tf.take_batch((self.max_batch - batch.len()).min(budget));
                budget -= events.len();
                batch.extend(events);
                ends.push((*key, end));
                if batch.len() >= self.max_batch {
                    self.commit_round(&mut batch, &mut ends, cx).await?;
                }
            }
        }
        if !batch.is_empty() {
            self.commit_round(&mut batch, &mut ends, cx).await?;
        }
        for &key in &keys {
            if own_turn.contains(&key) {
                match self.drain(key, cx, self.settings.max_batch_count).await? {
                    Drain::Done => {}
                    Drain::More => self.enqueue(key),
                    Drain::Gone => self.finish(key, true, cx).await?,
                }
            } else if more.contains(&key) || self.files.get(&key).is_some_and(TailFile::has_backlog)
            {
                self.enqueue(key);
            }
        }
        // Not read for want of budget: first in the queue, in their order.
        for &key in skipped.iter().rev() {
            if self.queued.insert(key) {
                self.ready.push_front(key);
            }
        }
        Ok(())
    }

    /// Delivers a round's batch, then advances the positions of the files it holds lines of
    /// and journals them with one wake of the journal writer.
    async fn commit_round(
        &mut self,
        batch: &mut Vec<flumen_core::Event>,
        ends: &mut Vec<(FileKey, u64)>,
        cx: &SourceContext,
    ) -> Result<(), Cancelled> {
        cx.deliver_retrying(std::mem::take(batch)).await?;
        let mut records = Vec::with_capacity(ends.len());
        for (key, end) in ends.drain(..) {
            if let Some(tf) = self.files.get_mut(&key) {
                tf.pos = end;
            }
            records.extend(self.journal_record(key));
        }
        if let Some(j) = &self.journal {
            j.note_many(records);
        }
        self.positions_dirty = true;
        self.maybe_write_positions(false);
        Ok(())
    }

    fn enqueue(&mut self, key: FileKey) {
        if self.queued.insert(key) {
            self.ready.push_back(key);
        }
    }

    /// Queues the files notifications named; re-lists the directories they changed.
    async fn take_signals(&mut self) {
        let st = self.signals.take();
        let mut dirs = st.dirs;
        for path in st.paths {
            match self.by_path.get(&path) {
                Some(&key) => self.enqueue(key),
                None => {
                    if let Some(dir) = path.parent() {
                        dirs.insert(dir.to_path_buf());
                    }
                }
            }
        }
        let groups: Vec<usize> = if st.rescan_all {
            (0..self.settings.groups.len()).collect()
        } else {
            (0..self.settings.groups.len())
                .filter(|&g| dirs.contains(&self.settings.groups[g].dir))
                .collect()
        };
        if !groups.is_empty() {
            self.rescan(groups, false).await;
        }
    }

    /// Lists the directories of `groups`, tracks new files, notices renamed and rotated ones,
    /// and queues what grew. True when something new to read was found.
    async fn rescan(&mut self, groups: Vec<usize>, startup: bool) -> bool {
        let caches: Vec<(usize, DirCache)> = groups
            .iter()
            .map(|&g| (g, std::mem::take(&mut self.dir_cache[g])))
            .collect();
        let known: HashSet<FileKey> = self.files.keys().copied().collect();
        let settings = Arc::clone(&self.settings);
        let scan = match tokio::task::spawn_blocking(move || {
            scan_blocking(&settings, caches, &known)
        })
        .await
        {
            Ok(scan) => scan,
            Err(error) => {
                tracing::error!(source = %self.name, %error, "Scanning the file groups failed.");
                return false;
            }
        };
        for (g, cache) in scan.caches {
            self.dir_cache[g] = cache;
        }
        for (g, error) in &scan.failed {
            let dir = &self.settings.groups[*g].dir;
            self.watched.remove(dir);
            if self.missing.insert(dir.clone()) {
                tracing::warn!(source = %self.name, group = %self.settings.groups[*g].name,
                    dir = %dir.display(), %error, "Cannot list the file group's directory; will retry.");
            }
        }
        for &g in &scan.ok {
            let dir = self.settings.groups[g].dir.clone();
            if self.missing.remove(&dir) {
                tracing::info!(source = %self.name, dir = %dir.display(), "File group directory is readable again.");
            }
            if !self.watched.contains(&dir)
                && let Some(w) = self.watcher.as_mut()
            {
                match w.watch(&dir, notify::RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        self.watched.insert(dir);
                    }
                    Err(error) => {
                        tracing::warn!(source = %self.name, dir = %dir.display(), %error,
                            "Cannot watch the directory; polling it.");
                    }
                }
            }
        }
        self.reconcile(&scan.ok, scan.found, startup)
    }

    /// Merges a scan into the tracked files.
    fn reconcile(&mut self, scanned: &[usize], mut found: Vec<Found>, startup: bool) -> bool {
        found.sort_by_key(|f| f.mtime);
        let seen: HashSet<FileKey> = found.iter().map(|f| f.key).collect();
        // Files of the scanned groups that are no longer at a matching path: rotated away or
        // deleted. Queued first, so that a rotated file is read before its successor.
        let gone: Vec<FileKey> = self
            .files
            .values()
            .filter(|f| !f.orphan && scanned.contains(&f.group) && !seen.contains(&f.key))
            .map(|f| f.key)
            .collect();
        for key in gone {
            if let Some(tf) = self.files.get_mut(&key) {
                tf.orphan = true;
                tracing::info!(source = %self.name, file = %tf.path.display(),
                    "File rotated away or deleted; reading it to its end.");
            }
            self.enqueue(key);
        }
        let mut any = false;
        let mut done: HashSet<FileKey> = HashSet::new();
        // Files whose journal slot must record a new path or a new file.
        let mut renamed: Vec<FileKey> = Vec::new();
        for f in found {
            if !done.insert(f.key) {
                continue; // Matched by two groups: the first one wins.
            }
            if let Some(tf) = self.files.get_mut(&f.key) {
                if tf.path != f.path {
                    tracing::info!(source = %self.name, from = %tf.path.display(),
                        to = %f.path.display(), "File renamed.");
                    tf.set_path(f.path, &self.settings);
                    self.positions_dirty = true;
                    renamed.push(f.key);
                }
                tf.orphan = false;
                if f.size != tf.read_pos || tf.has_backlog() {
                    any = true;
                    self.enqueue(f.key);
                }
                continue;
            }
            let start = if startup {
                self.startup_position(&f)
            } else {
                0
            };
            let tf = TailFile::new(
                f.key,
                f.path,
                f.group,
                f.file.map(Arc::new),
                start,
                &self.settings,
            );
            if !startup {
                tracing::info!(source = %self.name, file = %tf.path.display(), "New file found.");
            }
            self.files.insert(f.key, tf);
            self.positions_dirty = true;
            // A new file is journaled at once, so that a crash before its first commit does
            // not restart it at its end (skipToEnd) and lose its first lines.
            renamed.push(f.key);
            if f.size != start {
                any = true;
                self.enqueue(f.key);
            }
        }
        for key in renamed {
            if let (Some(slot), Some(tf)) = (self.slots.get_mut(&key), self.files.get(&key)) {
                slot.1 = journal::path_hash(&tf.path);
            }
            self.journal_note(key);
        }
        self.by_path = self
            .files
            .values()
            .filter(|f| !f.orphan)
            .map(|f| (f.path.clone(), f.key))
            .collect();
        any
    }

    /// Where a file found at startup starts: its recorded position (same inode and path, as
    /// Flume matches them), else 0, or its end with `skipToEnd`; a valid journal record of the
    /// same file (device, inode, path) wins over the position file.
    fn startup_position(&self, f: &Found) -> u64 {
        // The journal of a crashed run knows a later position than the position file.
        if let Some(r) = self.startup_journal.get(&f.key)
            && r.path_hash == journal::path_hash(&f.path)
            && r.pos <= f.size
        {
            return r.pos;
        }
        let path = f.path.to_string_lossy();
        let recorded = self
            .startup_positions
            .get(&f.key.1)
            .and_then(|v| v.iter().find(|e| e.file == path))
            .map(|e| e.pos);
        match recorded {
            Some(pos) if pos <= f.size => pos,
            Some(pos) => {
                tracing::info!(source = %self.name, file = %f.path.display(), pos, size = f.size,
                    "File is shorter than its recorded position (truncated); reading it from the start.");
                0
            }
            None if self.settings.skip_to_end => f.size,
            None => 0,
        }
    }

    /// Delivers `key`'s backlog and reads on to the end of the file, or until `limit` batches.
    async fn drain(
        &mut self,
        key: FileKey,
        cx: &SourceContext,
        limit: u64,
    ) -> Result<Drain, Cancelled> {
        let mut batches = 0u64;
        // The last read reached the file's size: deliver what it brought, then stop.
        let mut at_end = false;
        loop {
            if cx.shutdown.is_cancelled() {
                return Err(Cancelled);
            }
            let Some(tf) = self.files.get_mut(&key) else {
                return Ok(Drain::Done);
            };
            if tf.has_backlog() {
                if batches >= limit {
                    return Ok(Drain::More);
                }
                let (events, end) = tf.take_batch(self.max_batch);
                cx.deliver_retrying(events).await?;
                if let Some(tf) = self.files.get_mut(&key) {
                    tf.pos = end;
                }
                self.journal_note(key);
                batches += 1;
                self.positions_dirty = true;
                self.maybe_write_positions(false);
                continue;
            }
            if tf.truncated {
                tf.reset_to(0);
                self.journal_note(key);
                at_end = false;
                continue;
            } else if at_end {
                return Ok(Drain::Done);
            }
            let (file, path, offset, carry) = (
                tf.file.clone(),
                tf.path.clone(),
                tf.read_pos,
                tf.take_carry(),
            );
            let res = tokio::task::spawn_blocking(move || {
                tailer::read_blocking(file, &path, key, offset, carry)
            })
            .await;
            let Some(tf) = self.files.get_mut(&key) else {
                return Ok(Drain::Done);
            };
            let res = match res {
                Ok(res) => res,
                Err(error) => {
                    // The carry went with the task: re-read everything not committed.
                    let pos = tf.pos;
                    tf.reset_to(pos);
                    tracing::error!(source = %self.name, file = %tf.path.display(), %error,
                        "Reading the file failed.");
                    return Ok(Drain::Done);
                }
            };
            tf.file = res.file;
            match res.outcome {
                Ok(ReadOutcome::Data {
                    chunk,
                    base,
                    at_end: end,
                }) => {
                    at_end = end;
                    tf.note_read(&chunk, base, offset);
                    tf.read_pos = base + chunk.len() as u64;
                    tf.last_data = Instant::now();
                    tf.split(chunk, base, &self.settings);
                    if tf.recovering && end {
                        // The copy is read: on with the truncated file, from 0.
                        self.end_recovery(key);
                        at_end = false;
                    }
                }
                outcome if tf.recovering => {
                    // The copy ended (or vanished, shrank, failed): on with the truncated file.
                    tf.set_carry(res.carry);
                    if let Err(error) = outcome {
                        tracing::warn!(source = %self.name, file = %tf.path.display(), %error,
                            "Reading the copy of the truncated file failed; skipping the rest of it.");
                    }
                    self.end_recovery(key);
                    at_end = false;
                }
                Ok(ReadOutcome::Truncated) => {
                    tf.set_carry(res.carry);
                    if self.recover_from_copy(key).await {
                        continue;
                    }
                    let Some(tf) = self.files.get_mut(&key) else {
                        return Ok(Drain::Done);
                    };
                    tracing::info!(source = %self.name, file = %tf.path.display(),
                        "File was truncated; reading it again from the start.");
                    tf.flush_all(&self.settings);
                    tf.truncated = true;
                }
                Ok(ReadOutcome::Eof) => {
                    tf.set_carry(res.carry);
                    return Ok(Drain::Done);
                }
                Ok(ReadOutcome::Gone) => {
                    tf.set_carry(res.carry);
                    return Ok(Drain::Gone);
                }
                Err(error) => {
                    tf.set_carry(res.carry);
                    tracing::warn!(source = %self.name, file = %tf.path.display(), %error,
                        "Reading the file failed; will retry.");
                    return Ok(Drain::Done);
                }
            }
        }
    }

    /// Delivers everything held back for `key` (incomplete last line, multi-line event), then
    /// closes the file (`release == false`) or lets it go (`release == true`).
    async fn finish(
        &mut self,
        key: FileKey,
        release: bool,
        cx: &SourceContext,
    ) -> Result<(), Cancelled> {
        if let Some(tf) = self.files.get_mut(&key) {
            tf.flush_all(&self.settings);
        }
        self.drain_backlog(key, cx).await?;
        if release {
            if let Some(tf) = self.files.remove(&key) {
                tracing::info!(source = %self.name, file = %tf.path.display(), "File let go.");
                self.by_path.retain(|_, k| *k != key);
            }
            if let Some((slot, _)) = self.slots.remove(&key) {
                if let Some(j) = &self.journal {
                    j.note(slot, None);
                }
                self.free_slots.push(Reverse(slot));
            }
        } else if let Some(tf) = self.files.get_mut(&key) {
            tf.file = None;
            tf.paused = None;
            tf.recovering = false;
            tracing::debug!(source = %self.name, file = %tf.path.display(), "Idle file closed.");
        }
        self.positions_dirty = true;
        Ok(())
    }

    /// Delivers `key`'s backlog without reading more.
    async fn drain_backlog(&mut self, key: FileKey, cx: &SourceContext) -> Result<(), Cancelled> {
        loop {
            let Some(tf) = self.files.get_mut(&key) else {
                return Ok(());
            };
            if !tf.has_backlog() {
                return Ok(());
            }
            let (events, end) = tf.take_batch(self.max_batch);
            cx.deliver_retrying(events).await?;
            if let Some(tf) = self.files.get_mut(&key) {
                tf.pos = end;
            }
            self.journal_note(key);
            self.positions_dirty = true;
        }
    }

    /// After a truncation of `key` (its carry restored): finds the copy a copytruncate made
    /// and switches the file's reading to it, from the read position on. True when found.
    async fn recover_from_copy(&mut self, key: FileKey) -> bool {
        let Some(probe) = self.files.get(&key).and_then(TailFile::copy_probe) else {
            return false;
        };
        let followed: HashSet<FileKey> = self.files.keys().copied().collect();
        let settings = Arc::clone(&self.settings);
        let group = self.files.get(&key).map_or(0, |tf| tf.group);
        let found = tokio::task::spawn_blocking(move || {
            tailer::find_copy(&probe, |path, k| {
                followed.contains(&k)
                    || settings.groups.get(group).is_some_and(|g| {
                        path.parent() == Some(g.dir.as_path())
                            && path
                                .file_name()
                                .is_some_and(|n| g.pattern.is_match(&n.to_string_lossy()))
                    })
            })
        })
        .await
        .ok()
        .flatten();
        let (Some((copy, file)), Some(tf)) = (found, self.files.get_mut(&key)) else {
            return false;
        };
        tracing::info!(source = %self.name, file = %tf.path.display(), copy = %copy.display(),
            from = tf.read_pos, "File was truncated; reading the rest from its copy first.");
        tf.paused = tf.file.replace(Arc::new(file));
        tf.recovering = true;
        true
    }

    /// The copy of a truncated file is read: what it held back is delivered as for any
    /// truncation, then the file itself is read again from 0.
    fn end_recovery(&mut self, key: FileKey) {
        if let Some(tf) = self.files.get_mut(&key) {
            tf.recovering = false;
            tf.file = tf.paused.take();
            tf.flush_all(&self.settings);
            tf.truncated = true;
        }
    }

    /// Sends `key`'s committed position (and path) to the journal; allocates its slot on first
    /// use.
    fn journal_note(&mut self, key: FileKey) {
        if let Some((slot, record)) = self.journal_record(key)
            && let Some(j) = &self.journal
        {
            j.note(slot, record);
        }
    }

    /// `key`'s slot and record for the journal (none without a journal); allocates its slot
    /// on first use.
    fn journal_record(&mut self, key: FileKey) -> Option<(u32, Option<journal::Record>)> {
        let (Some(_), Some(tf)) = (self.journal.as_ref(), self.files.get(&key)) else {
            return None;
        };
        let (slot, path_hash) = match self.slots.get(&key) {
            Some(&s) => s,
            None => {
                let slot = match self.free_slots.pop() {
                    Some(Reverse(slot)) => slot,
                    None => {
                        self.next_slot += 1;
                        self.next_slot - 1
                    }
                };
                let s = (slot, journal::path_hash(&tf.path));
                self.slots.insert(key, s);
                s
            }
        };
        Some((
            slot,
            Some(journal::Record {
                dev: key.0,
                inode: key.1,
                pos: tf.pos,
                path_hash,
            }),
        ))
    }

    /// Idle closes, rotated files let go, multi-line flushes, position writes.
    async fn housekeeping(&mut self, cx: &SourceContext) -> Result<(), Cancelled> {
        let now = Instant::now();
        let s = Arc::clone(&self.settings);
        let orphan_idle = ORPHAN_IDLE.min(s.idle_timeout);
        let mut close = Vec::new();
        let mut release = Vec::new();
        let mut flush = Vec::new();
        for tf in self.files.values() {
            let idle = now.saturating_duration_since(tf.last_data);
            if tf.orphan && idle >= orphan_idle {
                release.push(tf.key);
            } else if !tf.orphan
                && idle >= s.idle_timeout
                && (tf.file.is_some() || tf.has_pending())
            {
                close.push(tf.key);
            } else if tf.multiline_due(&s).is_some_and(|due| due <= now) {
                flush.push(tf.key);
            }
        }
        for key in flush {
            if let Some(tf) = self.files.get_mut(&key) {
                tf.flush_multi(&s);
            }
            self.drain_backlog(key, cx).await?;
        }
        for (keys, is_release) in [(close, false), (release, true)] {
            for key in keys {
                // Read what arrived since the last turn first; new data means not idle.
                let outcome = self.drain(key, cx, u64::MAX).await?;
                let fresh = self.files.get(&key).is_some_and(|tf| tf.last_data >= now);
                if fresh && !matches!(outcome, Drain::Gone) {
                    continue;
                }
                self.finish(key, is_release || matches!(outcome, Drain::Gone), cx)
                    .await?;
            }
        }
        self.maybe_write_positions(false);
        Ok(())
    }

    fn positions_json(&self) -> String {
        let mut entries: Vec<position::Entry> = self
            .files
            .values()
            .map(|tf| position::Entry {
                inode: tf.key.1,
                pos: tf.pos,
                file: tf.path.to_string_lossy().into_owned(),
            })
            .collect();
        entries.sort_by(|a, b| a.file.cmp(&b.file).then(a.inode.cmp(&b.inode)));
        position::to_json(&entries)
    }

    /// Starts a position-file write when `writePosInterval` has passed and positions changed
    /// (or when `force`), unless the previous write is still running.
    fn maybe_write_positions(&mut self, force: bool) {
        if !force
            && (!self.positions_dirty
                || self.last_pos_write.elapsed() < self.settings.write_pos_interval)
        {
            return;
        }
        if self.pos_write.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let json = self.positions_json();
        self.positions_dirty = false;
        self.last_pos_write = Instant::now();
        let path = self.settings.position_file.clone();
        let name = Arc::clone(&self.name);
        self.pos_write = Some(tokio::task::spawn_blocking(move || {
            if let Err(error) = position::store_blocking(&path, &json) {
                tracing::error!(source = %name, file = %path.display(), %error,
                    "Writing the position file failed.");
            }
        }));
    }
}
