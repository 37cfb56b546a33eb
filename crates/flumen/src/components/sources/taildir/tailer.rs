//! One followed file: its identity, its committed and read positions, the bytes read but not
//! yet delivered, and the turning of read chunks into events.
//!
//! Invariants (`pos ≤ read_pos`):
//! - `pos` is the offset of the first byte not yet committed to the channel; it only moves
//!   after a commit, to the end of the last event of the committed batch;
//! - everything between `pos` and `read_pos` is in memory: events in `backlog` (in file
//!   order, each with the offset just past it), then the pending multi-line event, then the
//!   incomplete last line in `carry`. So a restart from `pos` re-reads exactly what was not
//!   committed;
//! - a line is only turned into an event once its `\n` has been read; `flush_all` (idle close,
//!   rotated-away file let go, truncation) is the one place an incomplete line becomes an event;
//! - bodies are slices of the chunk read (one allocation per read, none per line); one
//!   trailing `\r` is stripped, as Flume does;
//! - `head` and `tail` are samples of the bytes read (the file's first bytes, the bytes just
//!   before `read_pos`): the fingerprint that finds a copytruncate copy (see [`find_copy`]).
//!   Both are empty when unknown (e.g. after a restart mid-file, before the next read).

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use flumen_core::{Event, Headers};

use super::config::Settings;

/// A file's identity: (device, inode). Survives renames; changes when a path is recreated.
pub type FileKey = (u64, u64);

/// Largest read. Large reads make one big file fast; small files get a buffer of their size.
pub const READ_CHUNK: usize = 256 * 1024;

/// A pending multi-line event larger than this is delivered as is, and the next line starts a
/// new event, so a file that never matches the start pattern cannot grow memory without bound.
pub const MULTILINE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Bytes kept of the file's start and of what precedes `read_pos`, to recognise a copy.
pub const SAMPLE: usize = 64;

/// A copy older than this (by its status-change time) is not the copy of a truncation that
/// just happened.
pub const COPY_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(300);

/// Header carrying a line's byte offset (Flume's `TaildirSource.BYTE_OFFSET_HEADER_KEY`).
pub const BYTE_OFFSET_HEADER: &str = "byteoffset";

/// The multi-line event being assembled.
#[derive(Debug)]
struct Multi {
    /// File offset of its first line.
    start: u64,
    /// File offset just past its last line's newline.
    end: u64,
    /// Its lines joined with `\n`.
    body: BytesMut,
    /// When its last line arrived (for `multiline.flushTimeout`).
    last: Instant,
}

/// One followed file.
#[derive(Debug)]
pub struct TailFile {
    /// (device, inode).
    pub key: FileKey,
    /// Where the file was last seen (absolute).
    pub path: PathBuf,
    /// Index of its file group.
    pub group: usize,
    /// Open handle; `None` after an idle close (reopened by path, inode checked, on new data).
    pub file: Option<Arc<File>>,
    /// Committed position (see the module invariants).
    pub pos: u64,
    /// Offset of the next byte to read.
    pub read_pos: u64,
    /// Incomplete last line: bytes `[read_pos - carry.len(), read_pos)`.
    carry: BytesMut,
    multi: Option<Multi>,
    /// Events read and not yet delivered, each with the offset just past it.
    backlog: VecDeque<(Event, u64)>,
    /// When new bytes were last read (or the file was found).
    pub last_data: Instant,
    /// No longer at a path matching its group (renamed away or deleted): read to its end, then
    /// let go once idle.
    pub orphan: bool,
    /// A truncation was seen: once the backlog is delivered, restart at offset 0.
    pub truncated: bool,
    /// `file` is, for now, the copy a copytruncate made: the bytes it has beyond `read_pos`
    /// are read from it before the truncated file is read again from 0.
    pub recovering: bool,
    /// The truncated file's own handle while `file` is its copy.
    pub paused: Option<Arc<File>>,
    /// Up to [`SAMPLE`] first bytes of the file (empty when not read from 0).
    head: Vec<u8>,
    /// Up to [`SAMPLE`] bytes just before `read_pos` (empty when unknown).
    tail: Vec<u8>,
    /// Headers every event of this file gets: the group's, plus the file header.
    headers: Headers,
}

/// What one read attempt found.
#[derive(Debug)]
pub enum ReadOutcome {
    /// New bytes: the chunk holds the old carry followed by them; it starts at `base`.
    Data {
        /// Carry + new bytes.
        chunk: BytesMut,
        /// File offset of `chunk[0]`.
        base: u64,
        /// The read reached the size the file had when the read began: another read now
        /// would most likely find nothing (a later write brings a notification or the poll).
        at_end: bool,
    },
    /// Nothing new.
    Eof,
    /// The file is shorter than what was read: it was truncated (copytruncate).
    Truncated,
    /// The file could not be reopened at its path (gone, or another file is there now).
    Gone,
}

impl TailFile {
    /// A file found at `path`, to be read from `start`.
    pub fn new(
        key: FileKey,
        path: PathBuf,
        group: usize,
        file: Option<Arc<File>>,
        start: u64,
        settings: &Settings,
    ) -> Self {
        let mut tf = Self {
            key,
            path: PathBuf::new(),
            group,
            file,
            pos: start,
            read_pos: start,
            carry: BytesMut::new(),
            multi: None,
            backlog: VecDeque::new(),
            last_data: Instant::now(),
            orphan: false,
            truncated: false,
            recovering: false,
            paused: None,
            head: Vec::new(),
            tail: Vec::new(),
            headers: Headers::new(),
        };
        tf.set_path(path, settings);
        tf
    }

    /// Records a new path (after a rename) and rebuilds the per-file headers.
    pub fn set_path(&mut self, path: PathBuf, settings: &Settings) {
        let mut headers = settings
            .groups
            .get(self.group)
            .map(|g| g.headers.clone())
            .unwrap_or_default();
        if let Some(key) = &settings.file_header_key {
            headers.insert(key.clone(), path.to_string_lossy().into_owned());
        }
        self.headers = headers;
        self.path = path;
    }

    /// Whether events wait for delivery.
    pub fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Whether a multi-line event or an incomplete line is held in memory.
    pub fn has_pending(&self) -> bool {
        self.multi.is_some() || !self.carry.is_empty()
    }

    /// When the pending multi-line event is due for delivery, if there is one.
    pub fn multiline_due(&self, settings: &Settings) -> Option<Instant> {
        self.multi
            .as_ref()
            .map(|m| m.last + settings.multiline_flush)
    }

    /// Removes up to `n` events for one batch; also returns the offset just past the last.
    pub fn take_batch(&mut self, n: usize) -> (Vec<Event>, u64) {
        let n = n.min(self.backlog.len());
        let mut end = self.pos;
        let mut events = Vec::with_capacity(n);
        for (event, e) in self.backlog.drain(..n) {
            events.push(event);
            end = e;
        }
        (events, end)
    }

    /// Takes the carry out for a read (it comes back at the front of the chunk).
    pub fn take_carry(&mut self) -> BytesMut {
        std::mem::take(&mut self.carry)
    }

    /// Puts back the carry taken by [`Self::take_carry`] when the read brought nothing new.
    pub fn set_carry(&mut self, carry: BytesMut) {
        self.carry = carry;
    }

    /// Forgets everything read beyond `pos`, after a truncation or before a restart at 0.
    pub fn reset_to(&mut self, offset: u64) {
        self.carry.clear();
        self.multi = None;
        self.backlog.clear();
        self.pos = offset;
        self.read_pos = offset;
        self.truncated = false;
        // The bytes before `offset` are not known any more (and none are, after truncation).
        self.tail.clear();
        if offset == 0 {
            self.head.clear();
        }
    }

    /// Updates the samples with the bytes of a read: `chunk` starts at file offset `base` and
    /// its new bytes (after the carry) start at `from`. Copies at most 2 × [`SAMPLE`] bytes.
    pub fn note_read(&mut self, chunk: &[u8], base: u64, from: u64) {
        let fresh = chunk
            .get(usize::try_from(from.saturating_sub(base)).unwrap_or(usize::MAX)..)
            .unwrap_or_default();
        if from == 0 {
            self.head.clear();
        }
        if self.head.len() < SAMPLE && from == self.head.len() as u64 {
            let n = (SAMPLE - self.head.len()).min(fresh.len());
            self.head.extend_from_slice(&fresh[..n]);
        }
        if fresh.len() >= SAMPLE {
            self.tail.clear();
            self.tail.extend_from_slice(&fresh[fresh.len() - SAMPLE..]);
        } else {
            self.tail.extend_from_slice(fresh);
            let excess = self.tail.len().saturating_sub(SAMPLE);
            self.tail.drain(..excess);
        }
    }

    /// What [`find_copy`] needs to recognise this file's copy, or `None` when too little of the
    /// file is known to tell a copy from another file.
    pub fn copy_probe(&self) -> Option<CopyProbe> {
        (self.head.len() + self.tail.len() >= 16).then(|| CopyProbe {
            key: self.key,
            dir: self
                .path
                .parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
            head: self.head.clone(),
            tail: self.tail.clone(),
            read_pos: self.read_pos,
        })
    }

    fn make_event(&self, body: Bytes, offset: u64, settings: &Settings) -> Event {
        if self.headers.is_empty() && !settings.byte_offset_header {
            return Event::new(body);
        }
        let mut headers = self.headers.clone();
        if settings.byte_offset_header {
            headers.insert(BYTE_OFFSET_HEADER, offset.to_string());
        }
        Event::with_headers(headers, body)
    }

    /// Turns the complete lines of `chunk` (which starts at file offset `base`) into backlog
    /// events; keeps the incomplete rest as the carry. `chunk` ends at `read_pos`.
    pub fn split(&mut self, chunk: BytesMut, base: u64, settings: &Settings) {
        let mut chunk = chunk;
        let Some(last_nl) = memchr::memrchr(b'\n', &chunk) else {
            self.carry = chunk;
            return;
        };
        let rest = chunk.split_off(last_nl + 1);
        let lines = chunk.freeze();
        self.carry = rest;
        let now = Instant::now();
        let mut start = 0usize;
        for nl in memchr::memchr_iter(b'\n', &lines) {
            let end = if nl > start && lines[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            let offset = base + start as u64;
            let next = base + nl as u64 + 1;
            if let Some(re) = &settings.multiline {
                let line = &lines[start..end];
                let starts_event = re.is_match(line);
                self.push_multi_line(line, starts_event, offset, next, now, settings);
            } else {
                let event = self.make_event(lines.slice(start..end), offset, settings);
                self.backlog.push_back((event, next));
            }
            start = nl + 1;
        }
    }

    /// Adds one line to the multi-line event, delivering the previous event when `line` starts
    /// a new one (or the pending one is too big).
    fn push_multi_line(
        &mut self,
        line: &[u8],
        starts_event: bool,
        offset: u64,
        next: u64,
        now: Instant,
        settings: &Settings,
    ) {
        if let Some(m) = &mut self.multi
            && !starts_event
            && m.body.len() + line.len() < MULTILINE_MAX_BYTES
        {
            m.body.extend_from_slice(b"\n");
            m.body.extend_from_slice(line);
            m.end = next;
            m.last = now;
            return;
        }
        self.flush_multi(settings);
        self.multi = Some(Multi {
            start: offset,
            end: next,
            body: BytesMut::from(line),
            last: now,
        });
    }

    /// Moves the pending multi-line event, if any, to the backlog.
    pub fn flush_multi(&mut self, settings: &Settings) {
        if let Some(m) = self.multi.take() {
            let event = self.make_event(m.body.freeze(), m.start, settings);
            self.backlog.push_back((event, m.end));
        }
    }

    /// Moves everything held back to the backlog: the incomplete last line (as a line of its
    /// own, or appended to the multi-line event) and the multi-line event. For idle close,
    /// letting a rotated file go, and truncation.
    pub fn flush_all(&mut self, settings: &Settings) {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            let offset = self.read_pos - carry.len() as u64;
            let mut body = carry.freeze();
            if body.last() == Some(&b'\r') {
                body.truncate(body.len() - 1);
            }
            if let Some(re) = &settings.multiline {
                let starts_event = re.is_match(&body);
                self.push_multi_line(
                    &body,
                    starts_event,
                    offset,
                    self.read_pos,
                    Instant::now(),
                    settings,
                );
            } else {
                let event = self.make_event(body, offset, settings);
                self.backlog.push_back((event, self.read_pos));
            }
        }
        self.flush_multi(settings);
    }
}

/// The fingerprint of a truncated file, to find its copy with [`find_copy`].
#[derive(Debug, Clone)]
pub struct CopyProbe {
    /// The truncated file.
    pub key: FileKey,
    /// Its directory, where copytruncate puts the copy.
    pub dir: PathBuf,
    /// Its first bytes, as read.
    pub head: Vec<u8>,
    /// The bytes before `read_pos`, as read.
    pub tail: Vec<u8>,
    /// How far it had been read.
    pub read_pos: u64,
}

/// Finds the copy a copytruncate rotation made of a file before truncating it: a regular
/// file in the same directory, changed in the last [`COPY_MAX_AGE`], longer than what was read
/// of the original, whose bytes at the same offsets equal the original's first bytes and the
/// bytes just before `read_pos`. Files for which `skip` is true (followed files, names the
/// group matches: they are read on their own) are not considered. The newest match wins.
/// Blocking.
pub fn find_copy(
    probe: &CopyProbe,
    skip: impl Fn(&Path, FileKey) -> bool,
) -> Option<(PathBuf, File)> {
    let now = std::time::SystemTime::now();
    let mut best: Option<(std::time::SystemTime, PathBuf, File)> = None;
    for entry in std::fs::read_dir(&probe.dir).ok()?.filter_map(Result::ok) {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let key = key_of(&meta);
        if !meta.is_file() || key == probe.key || meta.len() <= probe.read_pos || skip(&path, key) {
            continue;
        }
        let changed = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                u64::try_from(meta.ctime()).unwrap_or(0),
                u32::try_from(meta.ctime_nsec()).unwrap_or(0),
            );
        if now
            .duration_since(changed)
            .is_ok_and(|age| age > COPY_MAX_AGE)
        {
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        let same = |at: u64, want: &[u8]| {
            let mut buf = vec![0u8; want.len()];
            file.read_exact_at(&mut buf, at).is_ok() && buf == want
        };
        let tail_at = probe.read_pos - probe.tail.len() as u64;
        if same(0, &probe.head)
            && same(tail_at, &probe.tail)
            && best.as_ref().is_none_or(|(t, _, _)| changed > *t)
        {
            best = Some((changed, path, file));
        }
    }
    best.map(|(_, path, file)| (path, file))
}

/// Metadata of an opened file: its key and size.
fn key_of(meta: &std::fs::Metadata) -> FileKey {
    (meta.dev(), meta.ino())
}

/// Opens `path` if it still is the file `key`.
pub fn open_checked(path: &Path, key: FileKey) -> std::io::Result<Option<File>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    Ok((key_of(&meta) == key).then_some(file))
}

/// What [`read_blocking`] gives back.
#[derive(Debug)]
pub struct ReadResult {
    /// The handle, possibly newly opened; `None` when the file could not be opened.
    pub file: Option<Arc<File>>,
    /// The carry passed in, when no new bytes were read (else it leads the chunk).
    pub carry: BytesMut,
    /// What was found.
    pub outcome: std::io::Result<ReadOutcome>,
}

/// Reads what follows `offset` (at most [`READ_CHUNK`] bytes) into a buffer that starts with
/// `carry`; opens the file by path first when it was closed. Blocking: run on a blocking
/// thread.
pub fn read_blocking(
    file: Option<Arc<File>>,
    path: &Path,
    key: FileKey,
    offset: u64,
    carry: BytesMut,
) -> ReadResult {
    let done = |file, carry, outcome| ReadResult {
        file,
        carry,
        outcome,
    };
    let file = match file {
        Some(f) => f,
        None => match open_checked(path, key) {
            Ok(Some(f)) => Arc::new(f),
            Ok(None) => return done(None, carry, Ok(ReadOutcome::Gone)),
            Err(e) => return done(None, carry, Err(e)),
        },
    };
    let size = match file.metadata() {
        Ok(m) => m.len(),
        Err(e) => return done(Some(file), carry, Err(e)),
    };
    if size < offset {
        return done(Some(file), carry, Ok(ReadOutcome::Truncated));
    }
    if size == offset {
        return done(Some(file), carry, Ok(ReadOutcome::Eof));
    }
    // Sized to what is there: a buffer outlives the read as long as any event sliced from it,
    // so a 200-byte append must not pin a 256 KiB allocation.
    // A long line without its newline yet is re-copied on every read: read at least as much
    // as it holds, so that a huge line costs amortized linear time, not quadratic.
    let head = carry.len();
    let want = usize::try_from(size - offset)
        .unwrap_or(usize::MAX)
        .min(READ_CHUNK.max(head));
    let base = offset - head as u64;
    let mut chunk = BytesMut::with_capacity(head + want);
    chunk.extend_from_slice(&carry);
    chunk.resize(head + want, 0);
    let mut filled = 0;
    let mut error = None;
    while filled < want {
        match file.read_at(&mut chunk[head + filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    if filled == 0 {
        let outcome = match error {
            Some(e) => Err(e),
            None => Ok(ReadOutcome::Eof),
        };
        return done(Some(file), carry, outcome);
    }
    chunk.truncate(head + filled);
    let at_end = offset + filled as u64 >= size;
    done(
        Some(file),
        BytesMut::new(),
        Ok(ReadOutcome::Data {
            chunk,
            base,
            at_end,
        }),
    )
}
