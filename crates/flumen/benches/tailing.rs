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

mod support;

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use support::{
    FILLER, LINE_LEN, LINE_PREFIX, MemoryPoller, env_number, field_value, kib_to_mib, lines_per_s,
    load_average, median_f64, median_u64, mib, mib_per_s, null_sink, only_from_env, read_status,
    spawn_flumen, tempdir, wait_null_sink, wait_until, wants,
};

/// Memory channel capacity of every workload.
const CHANNEL_CAPACITY: u64 = 10_000;
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
/// Targets from issue 4.
const TARGET_LINES_PER_S: f64 = 1_500_000.0;
const TARGET_IDLE_CPU_PCT: f64 = 2.0;
const TARGET_IDLE_RSS_MIB: f64 = 32.0;

const KEY_TAILDIR: &str = "taildir-null";
const KEY_IDLE: &str = "taildir-1000-files-idle";
const KEY_SPOOLDIR: &str = "spooldir-null";
const KEYS: [&str; 3] = [KEY_TAILDIR, KEY_IDLE, KEY_SPOOLDIR];

fn main() {
    support::run_bench(run_all);
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
        let only = only_from_env(&KEYS)?;
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
        wants(self.only.as_deref(), key)
    }

    /// Lines written in the slow-writing window.
    fn idle_lines(&self) -> u64 {
        self.idle_secs * self.idle_rate
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
        lines_per_s(self.lines, self.elapsed)
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
        let rss = kib_to_mib(median_u64(idle.iter().map(|r| r.rss_end_kib)));
        let hwm = kib_to_mib(median_u64(idle.iter().map(|r| r.peak_kib)));
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
        null_sink(lines, CHANNEL_CAPACITY)
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
        null_sink(lines, CHANNEL_CAPACITY)
    );
    let start = Instant::now();
    let mut agent = spawn_flumen(bin, dir.path(), &config)?;
    let memory = MemoryPoller::start(agent.pid);
    wait_null_sink(&mut agent, lines, TIMEOUT)?;
    let elapsed = start.elapsed();
    let peak_kib = memory.stop()?;
    let completed = spool.join("big.log.COMPLETED");
    wait_until(
        &mut agent,
        "the spooled file to be renamed",
        SHORT_TIMEOUT,
        || Ok(completed.exists()),
    )?;
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
        null_sink(total, CHANNEL_CAPACITY)
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
// CPU

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
