//! Log file sources of the real `flumen` agent binary (issue 4): TAILDIR and spooldir reading a
//! large pre-written file into a null sink, beside `cat FILE > /dev/null` timed in the same
//! run, and the CPU and memory cost of TAILDIR following 1,000 slowly written files.
//!
//! Run: `cargo bench -p flumen --bench tailing`
//!
//! Environment:
//! - `FLUMEN_BENCH_RUNS`: runs per workload, default 5 (the median and every run are printed);
//! - `FLUMEN_BENCH_ONLY`: comma-separated workload keys (default all): `taildir-null`,
//!   `taildir-1000-files-idle`, `spooldir-null`;
//! - `FLUMEN_BENCH_TAIL_LINES`: lines of the pre-written file, default 2,000,000;
//! - `FLUMEN_BENCH_IDLE_SECS`: length of the slow-writing window, default 30;
//! - `FLUMEN_BENCH_IDLE_FILES`: files followed in that workload, default 1,000;
//! - `FLUMEN_BENCH_IDLE_RATE`: lines per second written in total over those files, default 100;
//! - `FLUMEN_BENCH_IDLE_WRITER`: `reopen` (default: open, append one line, close, for every
//!   line) or `keep-open` (every file opened once for appending, before the agent starts).
//!
//! Workloads (every line is 200 bytes including its newline, each one distinct):
//! 1. `taildir-null`: one file of 2 M lines is written once (and fsync'd) in a temp dir on the
//!    same disk, read once to warm the page cache, and reused by every run. Each run is a fresh
//!    agent: `TAILDIR` (`filegroups.f1` = that file, `positionFile` in a fresh temp dir,
//!    `batchSize = 1000`) → `memory` (`capacity = 10000`, `transactionCapacity = 1000`) →
//!    `null` (`batchSize = 1000`, `logEveryNEvents = N`). Time = from spawn to the null sink's
//!    DEBUG line `Null sink discarded events.` with `events=N` on stderr
//!    (`RUST_LOG=warn,flumen::components::sinks::null=debug`), so it includes start-up. After
//!    the agent is stopped (SIGTERM), its position file must record the file's full size.
//! 2. `spooldir-null`: per run, the same file is copied into a fresh spool directory and
//!    fsync'd before the agent starts (the copy is not timed). `spooldir` (`batchSize = 1000`,
//!    default `deletePolicy = never` with `trackingPolicy = rename`) → the same channel and sink.
//!    Same timing; afterwards the file must have been renamed to `<name>.COMPLETED`.
//! 3. The reference for 1 and 2: `sh -c 'cat FILE > /dev/null'`, timed from spawn to exit, run
//!    once before each round of agent runs (interleaved: cat, taildir, spooldir, cat, ...).
//! 4. `taildir-1000-files-idle`: 1,000 empty files `app-NNNN.log` in one directory
//!    (`filegroups.f1 = <dir>/app-.*\\.log`, which the properties reader turns into the regex
//!    `app-.*\.log`), `TAILDIR` defaults otherwise except `batchSize = 1000` → same channel and
//!    sink with `logEveryNEvents` = all lines written. After the agent has started (2 s), the
//!    bench appends 100 lines/s in total, round robin over the files, each line with its own
//!    open(O_APPEND)-write-close (or one `write` on a kept-open handle with `keep-open`), on a
//!    fixed schedule, for 30 s. CPU = the agent's
//!    utime + stime (`/proc/<pid>/stat`, all threads, in `getconf CLK_TCK` ticks) from the
//!    first write to the end of the window (30 s after it, or the moment the null sink
//!    reported every line if that is later), as % of one core over that wall time. Memory =
//!    `VmRSS` at the end of the window and the final `VmHWM` (start-up included).
//!
//! Memory: a thread reads `/proc/<pid>/status` every 50 ms; the peak is the final `VmHWM`.
//! Every wait has a timeout, and every agent is owned by a guard that stops it (SIGTERM, then
//! SIGKILL) when dropped, so a failed run leaves nothing behind.

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};

/// Bytes per line, newline included.
const LINE_LEN: usize = 200;
/// Start of every line of the big file, followed by its 9-digit index and the filler.
const LINE_PREFIX: &str = "2024-05-01T12:00:00.000Z bench-host app[4242]: seq=";
/// Filler after the prefix, cut to length.
const FILLER: &[u8] = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod \
                        tempor incididunt ut labore et dolore magna aliqua ut enim ad minim \
                        veniam quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea ";
/// Default lines of the pre-written file.
const DEFAULT_TAIL_LINES: u64 = 2_000_000;
/// Default runs per workload.
const DEFAULT_RUNS: usize = 5;
/// Default length of the slow-writing window, seconds.
const DEFAULT_IDLE_SECS: u64 = 30;
/// Default number of slowly written files.
const DEFAULT_IDLE_FILES: u64 = 1_000;
/// Default lines per second written over all of them.
const DEFAULT_IDLE_RATE: u64 = 100;
/// How long the agent gets to start and open the slowly written files before the window.
const IDLE_SETTLE: Duration = Duration::from_secs(2);
/// Longest wait for the null sink to report every line (start-up included).
const TIMEOUT: Duration = Duration::from_secs(300);
/// Longest wait for the last slowly written lines after the window.
const IDLE_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for `cat`, and for the spooldir rename.
const SHORT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a child gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Interval of the memory poller.
const MEM_POLL: Duration = Duration::from_millis(50);
/// What the null sink logs at DEBUG every `logEveryNEvents` events (see `sinks/null.rs`).
const NULL_SINK_MESSAGE: &str = "Null sink discarded events.";
/// Stderr lines of a child kept for error messages.
const STDERR_TAIL: usize = 40;
/// Targets from issue 4.
const TARGET_LINES_PER_S: f64 = 1_500_000.0;
const TARGET_IDLE_CPU_PCT: f64 = 2.0;
const TARGET_IDLE_RSS_MIB: f64 = 32.0;

const KEY_TAILDIR: &str = "taildir-null";
const KEY_IDLE: &str = "taildir-1000-files-idle";
const KEY_SPOOLDIR: &str = "spooldir-null";
const KEYS: [&str; 3] = [KEY_TAILDIR, KEY_IDLE, KEY_SPOOLDIR];

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Err(e) = run_all() {
        eprintln!("tailing bench failed: {e:#}");
        std::process::exit(1);
    }
}

/// What the run was asked to do.
struct Settings {
    runs: usize,
    tail_lines: u64,
    idle_secs: u64,
    idle_files: u64,
    idle_rate: u64,
    /// Whether the slowly written files stay open in the bench between lines.
    idle_keep_open: bool,
    only: Option<Vec<String>>,
}

impl Settings {
    fn from_env() -> Result<Self> {
        let runs = env_number("FLUMEN_BENCH_RUNS")?.map_or(DEFAULT_RUNS, |r| r as usize);
        let tail_lines = env_number("FLUMEN_BENCH_TAIL_LINES")?.unwrap_or(DEFAULT_TAIL_LINES);
        let idle_secs = env_number("FLUMEN_BENCH_IDLE_SECS")?.unwrap_or(DEFAULT_IDLE_SECS);
        let idle_files = env_number("FLUMEN_BENCH_IDLE_FILES")?.unwrap_or(DEFAULT_IDLE_FILES);
        let idle_rate = env_number("FLUMEN_BENCH_IDLE_RATE")?.unwrap_or(DEFAULT_IDLE_RATE);
        ensure!(runs > 0, "FLUMEN_BENCH_RUNS must be at least 1");
        ensure!(tail_lines > 0, "FLUMEN_BENCH_TAIL_LINES must be at least 1");
        ensure!(idle_secs > 0, "FLUMEN_BENCH_IDLE_SECS must be at least 1");
        ensure!(
            (1..=9999).contains(&idle_files),
            "FLUMEN_BENCH_IDLE_FILES must be 1 to 9999"
        );
        ensure!(idle_rate > 0, "FLUMEN_BENCH_IDLE_RATE must be at least 1");
        let idle_keep_open = match std::env::var("FLUMEN_BENCH_IDLE_WRITER").as_deref() {
            Err(_) | Ok("reopen") => false,
            Ok("keep-open") => true,
            Ok(other) => bail!("FLUMEN_BENCH_IDLE_WRITER={other:?}: use reopen or keep-open"),
        };
        let only: Option<Vec<String>> = std::env::var("FLUMEN_BENCH_ONLY")
            .ok()
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
        if let Some(keys) = &only {
            for key in keys {
                ensure!(
                    KEYS.contains(&key.as_str()),
                    "FLUMEN_BENCH_ONLY names an unknown workload {key:?}; known: {}",
                    KEYS.join(", ")
                );
            }
        }
        Ok(Self {
            runs,
            tail_lines,
            idle_secs,
            idle_files,
            idle_rate,
            idle_keep_open,
            only,
        })
    }

    fn wants(&self, key: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|k| k == key))
    }

    /// Lines written in the slow-writing window.
    fn idle_lines(&self) -> u64 {
        self.idle_secs * self.idle_rate
    }
}

fn env_number(name: &str) -> Result<Option<u64>> {
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

/// One timed run of a reader of the whole file.
#[derive(Clone, Copy)]
struct Throughput {
    elapsed: Duration,
    lines: u64,
    /// Final `VmHWM` in KiB (None for `cat`).
    peak_kib: Option<u64>,
}

impl Throughput {
    fn rate(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64()
    }
}

/// One run of the slow-writing workload.
struct IdleSample {
    /// Wall time from the first write to the null sink reporting every line, or to the end of
    /// the nominal window (`FLUMEN_BENCH_IDLE_SECS` after the first write) when that is later.
    window: Duration,
    /// Agent CPU time (user + system) over that window, seconds.
    cpu_s: f64,
    /// Agent CPU time from spawn to the start of the window, seconds.
    startup_cpu_s: f64,
    /// From the last write to the null sink reporting every line.
    last_line_latency: Duration,
    rss_end_kib: u64,
    peak_kib: u64,
}

impl IdleSample {
    fn cpu_pct(&self) -> f64 {
        self.cpu_s * 100.0 / self.window.as_secs_f64()
    }
}

fn run_all() -> Result<()> {
    let settings = Settings::from_env()?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_flumen"));
    ensure!(bin.exists(), "agent binary {} is missing", bin.display());
    let ticks = clock_ticks();
    println!(
        "tailing bench: {} runs per workload, {} lines of {LINE_LEN} bytes in the big file, \
         {} slowly written files at {} lines/s for {} s ({} writer), CLK_TCK {ticks}, agent {}",
        settings.runs,
        settings.tail_lines,
        settings.idle_files,
        settings.idle_rate,
        settings.idle_secs,
        if settings.idle_keep_open {
            "keep-open"
        } else {
            "reopen"
        },
        bin.display()
    );
    println!("load average at the start: {}", load_average());

    let want_taildir = settings.wants(KEY_TAILDIR);
    let want_spooldir = settings.wants(KEY_SPOOLDIR);
    let mut cat_runs = Vec::new();
    let mut taildir_runs = Vec::new();
    let mut spooldir_runs = Vec::new();
    if want_taildir || want_spooldir {
        let data = tempdir()?;
        let file = data.path().join("big.log");
        let started = Instant::now();
        write_big_file(&file, settings.tail_lines)?;
        println!(
            "wrote {} ({:.0} MiB) in {:.1} s (fsync'd); warming the page cache",
            file.display(),
            mib(settings.tail_lines * LINE_LEN as u64),
            started.elapsed().as_secs_f64()
        );
        time_cat(&file, settings.tail_lines).context("warming the page cache with cat")?;
        for i in 0..settings.runs {
            let r = time_cat(&file, settings.tail_lines)
                .with_context(|| format!("cat reference run {}", i + 1))?;
            print_throughput_run("cat FILE > /dev/null", i, &r);
            cat_runs.push(r);
            if want_taildir {
                let r = taildir_null(&bin, &file, settings.tail_lines)
                    .with_context(|| format!("{KEY_TAILDIR} run {}", i + 1))?;
                print_throughput_run(KEY_TAILDIR, i, &r);
                taildir_runs.push(r);
            }
            if want_spooldir {
                let r = spooldir_null(&bin, &file, settings.tail_lines)
                    .with_context(|| format!("{KEY_SPOOLDIR} run {}", i + 1))?;
                print_throughput_run(KEY_SPOOLDIR, i, &r);
                spooldir_runs.push(r);
            }
        }
        println!("load average after the throughput runs: {}", load_average());
    }

    let mut idle_runs = Vec::new();
    if settings.wants(KEY_IDLE) {
        for i in 0..settings.runs {
            let r = taildir_idle(&bin, &settings, ticks)
                .with_context(|| format!("{KEY_IDLE} run {}", i + 1))?;
            println!(
                "  {KEY_IDLE} run {}: agent CPU {:.2} s over {:.2} s = {:.2}% of a core \
                 (start-up before the window {:.2} s), RSS at the end {:.1} MiB, peak (VmHWM) \
                 {:.1} MiB, last line reported {:.1} ms after it was written",
                i + 1,
                r.cpu_s,
                r.window.as_secs_f64(),
                r.cpu_pct(),
                r.startup_cpu_s,
                kib_to_mib(r.rss_end_kib),
                kib_to_mib(r.peak_kib),
                r.last_line_latency.as_secs_f64() * 1000.0
            );
            idle_runs.push(r);
        }
    }

    print_summary(
        &settings,
        &cat_runs,
        &taildir_runs,
        &spooldir_runs,
        &idle_runs,
    );
    println!("load average at the end: {}", load_average());
    Ok(())
}

fn print_throughput_run(label: &str, i: usize, r: &Throughput) {
    let peak = r
        .peak_kib
        .map(|k| format!(", peak RSS {:.1} MiB", kib_to_mib(k)))
        .unwrap_or_default();
    println!(
        "  {label} run {}: {:.3} s, {:.3} M lines/s, {:.0} MiB/s{peak}",
        i + 1,
        r.elapsed.as_secs_f64(),
        r.rate() / 1e6,
        mib_per_s(r.rate())
    );
}

fn print_summary(
    settings: &Settings,
    cat: &[Throughput],
    taildir: &[Throughput],
    spooldir: &[Throughput],
    idle: &[IdleSample],
) {
    println!();
    let cat_rate = (!cat.is_empty()).then(|| median_f64(cat.iter().map(Throughput::rate)));
    if !cat.is_empty() {
        println!(
            "{:<32} {:>15} {:>8} {:>8} {:>10}   runs (M lines/s)",
            "workload", "median lines/s", "MiB/s", "vs cat", "peak RSS"
        );
    }
    let mut met = Vec::new();
    for (label, runs) in [
        ("cat FILE > /dev/null", cat),
        ("taildir->memory->null", taildir),
        ("spooldir->memory->null", spooldir),
    ] {
        if runs.is_empty() {
            continue;
        }
        let rate = median_f64(runs.iter().map(Throughput::rate));
        let vs_cat = cat_rate.map_or_else(|| "-".to_owned(), |c| format!("{:.2}x", rate / c));
        let peaks: Vec<u64> = runs.iter().filter_map(|r| r.peak_kib).collect();
        let peak = if peaks.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.1} MiB", kib_to_mib(median_u64(peaks)))
        };
        let list: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.3}", r.rate() / 1e6))
            .collect();
        println!(
            "{label:<32} {:>13.3} M {:>8.0} {vs_cat:>8} {peak:>10}   {}",
            rate / 1e6,
            mib_per_s(rate),
            list.join(" ")
        );
        if label == "taildir->memory->null" {
            met.push(format!(
                "TAILDIR >= {:.1} M lines/s: median {:.3} M -> {}",
                TARGET_LINES_PER_S / 1e6,
                rate / 1e6,
                met_str(rate >= TARGET_LINES_PER_S)
            ));
        }
    }
    if !idle.is_empty() {
        let cpu = median_f64(idle.iter().map(IdleSample::cpu_pct));
        let rss = kib_to_mib(median_u64(idle.iter().map(|r| r.rss_end_kib).collect()));
        let hwm = kib_to_mib(median_u64(idle.iter().map(|r| r.peak_kib).collect()));
        let worst_hwm = kib_to_mib(idle.iter().map(|r| r.peak_kib).max().unwrap_or(0));
        let list: Vec<String> = idle.iter().map(|r| format!("{:.2}", r.cpu_pct())).collect();
        println!(
            "{} files, {} lines/s for {} s: median agent CPU {cpu:.2}% of a core (runs: {}), \
             median RSS at the end {rss:.1} MiB, median peak (VmHWM) {hwm:.1} MiB (highest \
             {worst_hwm:.1} MiB)",
            settings.idle_files,
            settings.idle_rate,
            settings.idle_secs,
            list.join(" ")
        );
        met.push(format!(
            "{} slowly written files, CPU < {TARGET_IDLE_CPU_PCT}% of a core: median {cpu:.2}% -> {}",
            settings.idle_files,
            met_str(cpu < TARGET_IDLE_CPU_PCT)
        ));
        met.push(format!(
            "{} slowly written files, RSS < {TARGET_IDLE_RSS_MIB} MiB: median peak (VmHWM) \
             {hwm:.1} MiB -> {}",
            settings.idle_files,
            met_str(hwm < TARGET_IDLE_RSS_MIB)
        ));
    }
    for line in met {
        println!("target: {line}");
    }
}

fn met_str(met: bool) -> &'static str {
    if met { "met" } else { "not met" }
}

/// The first three fields of `/proc/loadavg` (other work on the machine skews the figures).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn mib_per_s(lines_per_s: f64) -> f64 {
    lines_per_s * LINE_LEN as f64 / (1024.0 * 1024.0)
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn median_f64(v: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// Input

/// Line `i` of the big file (distinct for every `i` below 10^9), newline included.
fn push_line(out: &mut Vec<u8>, i: u64) {
    let start = out.len();
    let _ = write!(out, "{LINE_PREFIX}{i:09} ");
    let room = LINE_LEN - 1 - (out.len() - start);
    out.extend_from_slice(&FILLER[..room]);
    out.push(b'\n');
    debug_assert_eq!(out.len() - start, LINE_LEN);
}

/// Writes `lines` lines to `path` and fsyncs it, so that write-back does not run during the
/// timed runs.
fn write_big_file(path: &Path, lines: u64) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut buf = Vec::with_capacity(1 << 20);
    for i in 0..lines {
        push_line(&mut buf, i);
        if buf.len() + LINE_LEN > buf.capacity() {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
        .with_context(|| format!("fsync of {}", path.display()))?;
    Ok(())
}

/// `sh -c 'cat FILE > /dev/null'`, timed from spawn to exit.
fn time_cat(file: &Path, lines: u64) -> Result<Throughput> {
    let script = format!("cat '{}' > /dev/null", file.display());
    let start = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .spawn()
        .context("starting sh -c cat")?;
    let deadline = start + SHORT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for cat")? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("cat did not finish within {SHORT_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(1));
    };
    let elapsed = start.elapsed();
    ensure!(status.success(), "`{script}` failed: {status}");
    Ok(Throughput {
        elapsed,
        lines,
        peak_kib: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Workloads

fn taildir_null(bin: &Path, file: &Path, lines: u64) -> Result<Throughput> {
    let dir = tempdir()?;
    let positions = dir.path().join("taildir_position.json");
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .context("the big file has no UTF-8 name")?;
    let parent = file.parent().context("the big file has no directory")?;
    // A literal dot in the regex: `\\.` in .properties is `\.` once unescaped.
    let pattern = format!("{}/{}", parent.display(), name.replace('.', "\\\\."));
    let config = format!(
        "a1.sources = r1\n\
         a1.sources.r1.type = TAILDIR\n\
         a1.sources.r1.filegroups = f1\n\
         a1.sources.r1.filegroups.f1 = {pattern}\n\
         a1.sources.r1.positionFile = {}\n\
         a1.sources.r1.batchSize = 1000\n\
         a1.sources.r1.channels = c1\n\
         {}",
        positions.display(),
        null_sink(lines)
    );
    let start = Instant::now();
    let mut agent = spawn_flumen(bin, dir.path(), &config)?;
    let memory = MemoryPoller::start(agent.pid);
    wait_null_sink(&mut agent, lines, TIMEOUT)?;
    let elapsed = start.elapsed();
    let peak_kib = memory.stop()?;
    agent.stop();
    // The position file written at shutdown must record the whole file as read.
    let text = std::fs::read_to_string(&positions)
        .with_context(|| format!("reading the position file {}", positions.display()))?;
    let size = lines * LINE_LEN as u64;
    ensure!(
        field_value(&text, "\"pos\":") == Some(size),
        "the position file does not record pos {size}: {text}"
    );
    Ok(Throughput {
        elapsed,
        lines,
        peak_kib: Some(peak_kib),
    })
}

fn spooldir_null(bin: &Path, file: &Path, lines: u64) -> Result<Throughput> {
    let dir = tempdir()?;
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).context("creating the spool directory")?;
    let copy = spool.join("big.log");
    std::fs::copy(file, &copy).context("copying the big file into the spool directory")?;
    std::fs::File::open(&copy)
        .and_then(|f| f.sync_all())
        .context("fsync of the spooled copy")?;
    let config = format!(
        "a1.sources = r1\n\
         a1.sources.r1.type = spooldir\n\
         a1.sources.r1.spoolDir = {}\n\
         a1.sources.r1.batchSize = 1000\n\
         a1.sources.r1.channels = c1\n\
         {}",
        spool.display(),
        null_sink(lines)
    );
    let start = Instant::now();
    let mut agent = spawn_flumen(bin, dir.path(), &config)?;
    let memory = MemoryPoller::start(agent.pid);
    wait_null_sink(&mut agent, lines, TIMEOUT)?;
    let elapsed = start.elapsed();
    let peak_kib = memory.stop()?;
    let completed = spool.join("big.log.COMPLETED");
    wait_until(&mut agent, "the spooled file to be renamed", || {
        completed.exists()
    })?;
    agent.stop();
    Ok(Throughput {
        elapsed,
        lines,
        peak_kib: Some(peak_kib),
    })
}

fn taildir_idle(bin: &Path, settings: &Settings, ticks: u64) -> Result<IdleSample> {
    let dir = tempdir()?;
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).context("creating the log directory")?;
    let paths: Vec<PathBuf> = (0..settings.idle_files)
        .map(|i| logs.join(format!("app-{i:04}.log")))
        .collect();
    let mut handles = Vec::new();
    for p in &paths {
        let f = std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
        if settings.idle_keep_open {
            handles.push(f);
        }
    }
    let total = settings.idle_lines();
    let config = format!(
        "a1.sources = r1\n\
         a1.sources.r1.type = TAILDIR\n\
         a1.sources.r1.filegroups = f1\n\
         a1.sources.r1.filegroups.f1 = {}/app-.*\\\\.log\n\
         a1.sources.r1.positionFile = {}\n\
         a1.sources.r1.batchSize = 1000\n\
         a1.sources.r1.channels = c1\n\
         {}",
        logs.display(),
        dir.path().join("taildir_position.json").display(),
        null_sink(total)
    );
    let mut agent = spawn_flumen(bin, dir.path(), &config)?;
    let memory = MemoryPoller::start(agent.pid);
    thread::sleep(IDLE_SETTLE);
    agent.check_alive()?;
    let startup_ticks = cpu_ticks(agent.pid)?;
    let t0 = Instant::now();
    let interval = Duration::from_secs(1).as_secs_f64() / settings.idle_rate as f64;
    let mut line = Vec::with_capacity(LINE_LEN);
    let mut last_write = t0;
    for k in 0..total {
        let due = t0 + Duration::from_secs_f64(k as f64 * interval);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        let file_index = k % settings.idle_files;
        line.clear();
        let _ = write!(line, "{LINE_PREFIX}{k:09} file={file_index:04} ");
        let room = LINE_LEN - 1 - line.len();
        line.extend_from_slice(&FILLER[..room]);
        line.push(b'\n');
        let path = &paths[file_index as usize];
        if let Some(mut f) = handles.get(file_index as usize) {
            // Created just above and written only here, so its offset is its end.
            f.write_all(&line)
        } else {
            OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(&line))
        }
        .with_context(|| format!("appending to {}", path.display()))?;
        last_write = Instant::now();
        if file_index == 0 {
            agent.check_alive()?;
        }
    }
    wait_null_sink(&mut agent, total, IDLE_DRAIN_TIMEOUT)?;
    let reported = Instant::now();
    // The window is the nominal length at least (the last line is due one interval before it).
    let nominal_end = t0 + Duration::from_secs(settings.idle_secs);
    if let Some(left) = nominal_end.checked_duration_since(Instant::now()) {
        thread::sleep(left);
    }
    agent.check_alive()?;
    let done = Instant::now();
    let end_ticks = cpu_ticks(agent.pid)?;
    let rss_end_kib = read_status(agent.pid)
        .ok()
        .and_then(|s| s.rss_kib)
        .context("reading VmRSS")?;
    let peak_kib = memory.stop()?;
    agent.stop();
    Ok(IdleSample {
        window: done - t0,
        cpu_s: (end_ticks - startup_ticks) as f64 / ticks as f64,
        startup_cpu_s: startup_ticks as f64 / ticks as f64,
        last_line_latency: reported - last_write,
        rss_end_kib,
        peak_kib,
    })
}

// ---------------------------------------------------------------------------------------------
// Agent set-up

fn null_sink(lines: u64) -> String {
    format!(
        "a1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks = k1\n\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.batchSize = 1000\n\
         a1.sinks.k1.logEveryNEvents = {lines}\n"
    )
}

fn spawn_flumen(bin: &Path, dir: &Path, config: &str) -> Result<Proc> {
    let conf = dir.join("flume.conf");
    std::fs::write(&conf, config).context("writing the agent's configuration")?;
    let mut cmd = Command::new(bin);
    cmd.args(["agent", "-n", "a1", "-f"])
        .arg(&conf)
        .current_dir(dir)
        .env("RUST_LOG", "warn,flumen::components::sinks::null=debug")
        .env("NO_COLOR", "1");
    Proc::spawn("flumen agent", cmd)
}

fn tempdir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("flumen-bench-tailing-")
        .tempdir()
        .context("creating a temporary directory")
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 when it cannot be asked.
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// utime + stime of `pid` (all its threads), in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: count fields after the last `)`.
    // Field 3 (state) is the first there; utime and stime are fields 14 and 15.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no field {n} in /proc/{pid}/stat"))
    };
    Ok(field(14)? + field(15)?)
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child process that is stopped when dropped, with its stderr collected by a thread.
struct Proc {
    name: &'static str,
    child: Child,
    pid: u32,
    /// The last lines of stderr, for error messages.
    tail: Arc<Mutex<VecDeque<String>>>,
    /// Values of `events=` of each null sink progress line, in order.
    progress: Receiver<u64>,
    reader: Option<JoinHandle<()>>,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command) -> Result<Self> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
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
            tail,
            progress,
            reader: Some(reader),
        })
    }

    /// An error if the process has exited, with its status and last stderr lines.
    fn check_alive(&mut self) -> Result<()> {
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

    fn stderr_tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.is_empty() {
            return "  (none)".to_owned();
        }
        tail.iter().map(|l| format!("  {l}\n")).collect()
    }

    /// SIGTERM, then SIGKILL after a grace period; waits for the exit.
    fn stop(&mut self) {
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
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

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
fn field_value(line: &str, pat: &str) -> Option<u64> {
    let at = line.find(pat)? + pat.len();
    let digits: String = line[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Waits for the null sink's progress line reporting `lines` events.
fn wait_null_sink(agent: &mut Proc, lines: u64, timeout: Duration) -> Result<()> {
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

/// Polls `done` every 10 ms until it is true, the process dies, or the short timeout passes.
fn wait_until(proc: &mut Proc, what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + SHORT_TIMEOUT;
    loop {
        if done() {
            return Ok(());
        }
        proc.check_alive()?;
        if Instant::now() >= deadline {
            bail!(
                "timed out after {SHORT_TIMEOUT:?} waiting for {what}; last stderr lines of {}:\n{}",
                proc.name,
                proc.stderr_tail()
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Memory

#[derive(Default)]
struct ProcStatus {
    hwm_kib: Option<u64>,
    rss_kib: Option<u64>,
}

fn read_status(pid: u32) -> std::io::Result<ProcStatus> {
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
struct MemoryPoller {
    pid: u32,
    stop: Arc<AtomicBool>,
    /// Taken by `stop`; when still here at drop (a failed run), the thread is told to end.
    handle: Option<JoinHandle<u64>>,
}

impl MemoryPoller {
    fn start(pid: u32) -> Self {
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
    fn stop(mut self) -> Result<u64> {
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
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
