//! Process harness shared by the end-to-end benches (`pipeline.rs`, `tailing.rs`), which run
//! the real `flumen` agent binary (and, in `pipeline`, rsyslogd) as child processes.
//!
//! It holds what both need around a child: the [`Proc`] guard (spawn, a thread reading stderr
//! that keeps its last lines and forwards the null sink's progress, SIGTERM then SIGKILL on
//! drop), waits with timeouts ([`wait_null_sink`], [`wait_until`]), the `VmHWM`/`VmRSS`
//! [`MemoryPoller`], the agent configuration and spawn helpers, environment parsing, medians and
//! unit helpers. What is measured and how it is printed stays in each bench.
//!
//! Each bench is its own crate and compiles this module with `mod support;`; it lives in a
//! directory so that Cargo does not take it for a bench target of its own.

// Each bench uses only part of this module; the rest would be dead code in that crate.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};

/// Bytes per line, newline included.
pub const LINE_LEN: usize = 200;
/// Start of every line, followed by its index (each bench picks the digits), a space and
/// [`FILLER`] cut to length.
pub const LINE_PREFIX: &str = "2024-05-01T12:00:00.000Z bench-host app[4242]: seq=";
/// Filler after the prefix and index, cut to length.
pub const FILLER: &[u8] = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod \
                            tempor incididunt ut labore et dolore magna aliqua ut enim ad minim \
                            veniam quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea ";
/// How long a child gets to exit after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Interval of the memory poller.
pub const MEM_POLL: Duration = Duration::from_millis(50);
/// Interval of [`wait_until`]'s polling.
pub const POLL: Duration = Duration::from_millis(10);
/// What the null sink logs at DEBUG every `logEveryNEvents` events (see `sinks/null.rs`).
pub const NULL_SINK_MESSAGE: &str = "Null sink discarded events.";
/// Stderr lines of a child kept for error messages.
pub const STDERR_TAIL: usize = 40;

/// The bench's `main`: nothing to do for `--list` (Cargo's test harness protocol), else runs
/// `run_all` and exits with status 1 and the error chain when it fails.
pub fn run_bench(run_all: fn() -> Result<()>) {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Err(e) = run_all() {
        eprintln!("{} bench failed: {e:#}", env!("CARGO_CRATE_NAME"));
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Settings

/// The whole number in environment variable `name` (`_` separators allowed), None when unset.
pub fn env_number(name: &str) -> Result<Option<u64>> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .map(Some)
            .with_context(|| format!("{name}={v:?} is not a whole number")),
        Err(_) => Ok(None),
    }
}

/// The workload keys listed in `FLUMEN_BENCH_ONLY` (None when unset), each checked against
/// `known`.
pub fn only_from_env(known: &[&str]) -> Result<Option<Vec<String>>> {
    let only: Option<Vec<String>> = std::env::var("FLUMEN_BENCH_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    if let Some(keys) = &only {
        for key in keys {
            ensure!(
                known.contains(&key.as_str()),
                "FLUMEN_BENCH_ONLY names an unknown workload {key:?}; known: {}",
                known.join(", ")
            );
        }
    }
    Ok(only)
}

/// Whether workload `key` is to run, given the keys of `FLUMEN_BENCH_ONLY` (all when None).
pub fn wants(only: Option<&[String]>, key: &str) -> bool {
    only.is_none_or(|keys| keys.iter().any(|k| k == key))
}

// ---------------------------------------------------------------------------------------------
// Figures

/// The first three fields of `/proc/loadavg` (other work on the machine skews the figures).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// Lines per second: `lines` in `elapsed`.
pub fn lines_per_s(lines: u64, elapsed: Duration) -> f64 {
    lines as f64 / elapsed.as_secs_f64()
}

/// Bytes in MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Lines/s of [`LINE_LEN`]-byte lines in MiB/s.
pub fn mib_per_s(lines_per_s: f64) -> f64 {
    lines_per_s * LINE_LEN as f64 / (1024.0 * 1024.0)
}

/// KiB in MiB.
pub fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The median (the upper one for an even count); `v` must not be empty.
pub fn median_f64(v: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.into_iter().collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median (the upper one for an even count); `v` must not be empty.
pub fn median_u64(v: impl IntoIterator<Item = u64>) -> u64 {
    let mut v: Vec<u64> = v.into_iter().collect();
    v.sort_unstable();
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// Agent set-up

/// Agent `a1`'s memory channel `c1` (`capacity`, `transactionCapacity = 1000`) and null sink
/// `k1` (`batchSize = 1000`), which logs its progress line once `lines` events are discarded.
pub fn null_sink(lines: u64, capacity: u64) -> String {
    format!(
        "a1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = {capacity}\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks = k1\n\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.batchSize = 1000\n\
         a1.sinks.k1.logEveryNEvents = {lines}\n"
    )
}

/// Writes `config` to `dir/flume.conf` and starts agent `a1` on it in `dir`, with the null
/// sink's DEBUG progress lines on stderr and no colours.
pub fn spawn_flumen(bin: &Path, dir: &Path, config: &str) -> Result<Proc> {
    let conf = dir.join("flume.conf");
    std::fs::write(&conf, config).context("writing the agent's configuration")?;
    let mut cmd = Command::new(bin);
    cmd.args(["agent", "-n", "a1", "-f"])
        .arg(&conf)
        .current_dir(dir)
        .env("RUST_LOG", "warn,flumen::components::sinks::null=debug")
        .env("NO_COLOR", "1");
    Proc::spawn("flumen agent", cmd, None)
}

/// A port that was free a moment ago (bound to 127.0.0.1:0, then released).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener
        .local_addr()
        .context("reading a bound port")?
        .port())
}

/// A fresh temporary directory named after the bench (`flumen-bench-<bench>-...`), removed
/// when dropped.
pub fn tempdir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(concat!("flumen-bench-", env!("CARGO_CRATE_NAME"), "-"))
        .tempdir()
        .context("creating a temporary directory")
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child process that is stopped when dropped, with its stderr collected by a thread.
pub struct Proc {
    /// Name for messages.
    pub name: &'static str,
    /// The running child.
    child: Child,
    /// The child's process id.
    pub pid: u32,
    /// The instant just before the spawn.
    pub spawned: Instant,
    /// The last lines of stderr, for error messages.
    tail: Arc<Mutex<VecDeque<String>>>,
    /// Values of `events=` of each null sink progress line, in order.
    progress: Receiver<u64>,
    /// The stderr reader thread, joined by `stop`.
    reader: Option<JoinHandle<()>>,
    /// A pid file the process removes on a clean exit (rsyslogd's), removed here otherwise.
    pidfile: Option<PathBuf>,
}

impl Proc {
    /// Starts `cmd` with stdin and stdout on `/dev/null` and stderr read by a thread.
    pub fn spawn(name: &'static str, mut cmd: Command, pidfile: Option<PathBuf>) -> Result<Self> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        let pid = child.id();
        let stderr = child.stderr.take().expect("stderr was set to piped");
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, progress) = mpsc::channel();
        let reader = {
            let tail = tail.clone();
            thread::Builder::new()
                .name(format!("{name} stderr"))
                .spawn(move || read_stderr(stderr, &tail, &tx))
                .context("starting a stderr reader thread")?
        };
        Ok(Self {
            name,
            child,
            pid,
            spawned,
            tail,
            progress,
            reader: Some(reader),
            pidfile,
        })
    }

    /// An error if the process has exited, with its status and last stderr lines.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(anyhow!(
                "{} exited early ({status}); last stderr lines:\n{}",
                self.name,
                self.stderr_tail()
            )),
            Err(e) => Err(anyhow!("cannot poll {}: {e}", self.name)),
        }
    }

    /// The last stderr lines, indented, for error messages.
    pub fn stderr_tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.is_empty() {
            return "  (none)".to_owned();
        }
        tail.iter().map(|l| format!("  {l}\n")).collect()
    }

    /// SIGTERM, then SIGKILL after a grace period; waits for the exit.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            let deadline = Instant::now() + STOP_GRACE;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if matches!(self.child.try_wait(), Ok(None)) {
                eprintln!(
                    "{} (pid {}) did not exit {STOP_GRACE:?} after SIGTERM; killing it",
                    self.name, self.pid
                );
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        if let Some(pidfile) = &self.pidfile {
            let _ = std::fs::remove_file(pidfile);
        }
    }
}

impl Drop for Proc {
    /// Stops the process (see [`Proc::stop`]).
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads `stderr` to its end: keeps the last [`STDERR_TAIL`] lines in `tail` and sends the
/// `events=` value of every null sink progress line to `progress`.
fn read_stderr(stderr: impl Read, tail: &Mutex<VecDeque<String>>, progress: &mpsc::Sender<u64>) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = strip_ansi(&String::from_utf8_lossy(&buf));
        let line = line.trim_end().to_owned();
        if line.contains(NULL_SINK_MESSAGE)
            && let Some(events) = field_value(&line, "events=")
        {
            let _ = progress.send(events);
        }
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == STDERR_TAIL {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// `s` without ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The number right after `pat` in `line` (spaces after `pat` skipped).
pub fn field_value(line: &str, pat: &str) -> Option<u64> {
    let at = line.find(pat)? + pat.len();
    let digits: String = line[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Waits up to `timeout` for the null sink's progress line reporting `lines` events.
pub fn wait_null_sink(agent: &mut Proc, lines: u64, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match agent.progress.recv_timeout(Duration::from_millis(100)) {
            Ok(events) if events >= lines => return Ok(()),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                agent.check_alive()?;
                if Instant::now() >= deadline {
                    bail!(
                        "timed out after {timeout:?} waiting for the null sink to report {lines} \
                         events; last stderr lines:\n{}",
                        agent.stderr_tail()
                    );
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                agent.check_alive()?;
                bail!(
                    "{} closed stderr without reporting {lines} events; last stderr lines:\n{}",
                    agent.name,
                    agent.stderr_tail()
                );
            }
        }
    }
}

/// Polls `done` every [`POLL`] until it is true, it fails, the process dies, or `timeout`
/// passes.
pub fn wait_until(
    proc: &mut Proc,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if done()? {
            return Ok(());
        }
        proc.check_alive()?;
        if Instant::now() >= deadline {
            bail!(
                "timed out after {timeout:?} waiting for {what}; last stderr lines of {}:\n{}",
                proc.name,
                proc.stderr_tail()
            );
        }
        thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------------------------
// Memory

/// The memory figures of `/proc/<pid>/status`, in KiB (None when missing).
#[derive(Default)]
pub struct ProcStatus {
    /// `VmHWM`: the peak resident set size.
    pub hwm_kib: Option<u64>,
    /// `VmRSS`: the resident set size now.
    pub rss_kib: Option<u64>,
}

/// Reads `VmHWM` and `VmRSS` of `pid`.
pub fn read_status(pid: u32) -> std::io::Result<ProcStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mut status = ProcStatus::default();
    for line in text.lines() {
        let kib = |l: &str| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        };
        if line.starts_with("VmHWM:") {
            status.hwm_kib = kib(line);
        } else if line.starts_with("VmRSS:") {
            status.rss_kib = kib(line);
        }
    }
    Ok(status)
}

/// Reads `/proc/<pid>/status` every 50 ms and keeps the highest `VmHWM` and `VmRSS` seen.
pub struct MemoryPoller {
    /// The process polled.
    pid: u32,
    /// Set to end the thread.
    stop: Arc<AtomicBool>,
    /// Taken by `stop`; when still here at drop (a failed run), the thread is told to end.
    handle: Option<JoinHandle<u64>>,
}

impl MemoryPoller {
    /// Starts the polling thread for `pid`.
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut peak = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(s) = read_status(pid) {
                        peak = peak.max(s.hwm_kib.unwrap_or(0)).max(s.rss_kib.unwrap_or(0));
                    }
                    thread::sleep(MEM_POLL);
                }
                peak
            })
        };
        Self {
            pid,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops polling and returns the peak in KiB, read once more now (the process is alive).
    pub fn stop(mut self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let last =
            read_status(self.pid).with_context(|| format!("reading /proc/{}/status", self.pid))?;
        let polled = self
            .handle
            .take()
            .expect("stop consumes the poller, so the handle is still there")
            .join()
            .map_err(|_| anyhow!("the memory poller thread panicked"))?;
        let peak = polled.max(last.hwm_kib.unwrap_or(0));
        ensure!(
            peak > 0,
            "no VmHWM/VmRSS could be read for pid {}",
            self.pid
        );
        Ok(peak)
    }
}

impl Drop for MemoryPoller {
    /// Tells the thread to end and waits for it.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
