//! End-to-end pipeline throughput of the real `flumen` agent binary, with a real rsyslog
//! measured in the same run as a reference. Prints the median and every run of each workload,
//! then one summary table.
//!
//! Run: `cargo bench -p flumen --bench pipeline`
//!
//! Environment:
//! - `FLUMEN_BENCH_LINES`: lines (events) per run, default 5,000,000;
//! - `FLUMEN_BENCH_FC_LINES`: lines per run of `netcat-filechannel-file`, `rsyslog-da-file`
//!   and `rsyslog-disk-file`, default 2,000,000;
//! - `FLUMEN_BENCH_FC_SYNC_LINES`: lines per run of `rsyslog-da-file-sync` and
//!   `rsyslog-disk-file-sync` (one fsync per message), default 20,000;
//! - `FLUMEN_BENCH_FC_TXN`: the file channel's `transactionCapacity` (and the file_roll sink's
//!   `sink.batchSize`) in `netcat-filechannel-file`, default 10,000;
//! - `FLUMEN_BENCH_RUNS`: runs per workload, default 5;
//! - `FLUMEN_BENCH_ONLY`: comma-separated workload keys to run (default all):
//!   `netcat-null`, `seq-null`, `netcat-file`, `rsyslog-null`, `rsyslog-file`,
//!   `netcat-filechannel-file`, `rsyslog-da-file`, `rsyslog-da-file-sync`, `rsyslog-disk-file`,
//!   `rsyslog-disk-file-sync`, `netcat-null-http`, `syslog-null`, `rsyslog-syslog-null`.
//!
//! Workloads (every line is 200 bytes including its newline):
//! 1. `netcat-null`: netcat source (`ack-every-event = false`) → memory channel → null sink.
//!    The bench itself is the client: one TCP connection writing 1 MiB chunks of pre-built
//!    lines. Time = from connect to the null sink's DEBUG progress line for the N-th event
//!    (`logEveryNEvents = N`) on the agent's stderr.
//! 2. `seq-null`: seq source (`totalEvents = N`) → memory → null. Time = from spawn to the
//!    same progress line, so it includes the agent's start-up. Bodies are decimal numbers, not
//!    200-byte lines, so no MiB/s is given.
//! 3. `netcat-file`: as 1, into a `file_roll` sink (`rollInterval = 0`). Time = from connect to
//!    the output reaching N * 200 bytes (polled every 10 ms); the file must then be byte for
//!    byte what was sent, in order.
//! 4. `rsyslog-file`: rsyslogd `imtcp` → ruleset → `omfile` with a `%rawmsg%\n` template.
//!    Same client, same completion rule and check as 3. The lines carry no syslog header, so
//!    `%rawmsg%` (not `%msg%`, which drops the first words as host and tag) is the body, and
//!    octet-counted framing is turned off (`supportOctetCountedFraming="off"`): the lines start
//!    with a digit, which imtcp would otherwise take for an octet count.
//! 5. `rsyslog-null`: rsyslogd `imtcp` → ruleset that discards every message (`stop`) except
//!    an end marker line sent after the N lines, which is written to a file. Time = from
//!    connect to that file being non-empty. The main queue may run more than one worker (the
//!    file workload shows lines written out of order), so at that moment another worker may
//!    still hold one dequeued batch of earlier lines, already off the queue, to discard.
//!    impstats (JSON, every second) then confirms that imtcp submitted all N + 1 messages and
//!    that the main queue is empty.
//! 6. `netcat-filechannel-file` (issue 3): as 3, through a `file` channel instead of memory:
//!    `checkpointDir` and `dataDirs` in the run's temp dir, `capacity = 1000000`,
//!    `transactionCapacity = 10000` (`FLUMEN_BENCH_FC_TXN`), `minimumRequiredSpace = 1048576`,
//!    defaults otherwise (`fsyncPerTransaction = true`: every put and take commit returns only
//!    after an fsync, shared by the commits waiting at that moment), and
//!    `sink.batchSize = transactionCapacity`. With acks off the netcat source delivers the
//!    complete lines of one socket read (up to ~144 KiB, about 650–740 lines) per transaction,
//!    cut to `transactionCapacity`, and does not read the socket again until that commit has
//!    returned. Same completion rule and byte-for-byte check as 3.
//! 7. `rsyslog-da-file` / `rsyslog-da-file-sync`: as 4, with the omfile action behind a
//!    disk-assisted queue (`LinkedList`, `queue.size = 100`, watermarks 80/20, `queue.filename`,
//!    `queue.saveOnShutdown = on`, `queue.maxDiskSpace = 2g`). The `-sync` variant adds
//!    `queue.checkpointInterval = 1` and `queue.syncqueuefiles = on` (fsync after every queue
//!    file write, bookkeeping after every record). A DA queue only spills what passes the high
//!    watermark, so impstats (`out queue[DA]` `enqueued`) reports how many lines went through
//!    disk; the spool directory's size is polled during the run too.
//! 8. `rsyslog-disk-file` / `rsyslog-disk-file-sync`: as 7 with a pure disk queue
//!    (`queue.type = Disk`): every line is written to and read back from the queue files.
//!
//!    rsyslog's main queue (in memory, 100,000 messages by default) sits in front of the action
//!    queue in 7 and 8 and is not persisted; imtcp acknowledges nothing.
//! 9. `netcat-null-http` (issue 6): as 1 with the HTTP metrics server on
//!    (`--http 127.0.0.1:<port>`) and a scraper thread fetching `/metrics` every 100 ms for
//!    the whole run (each request on a new connection, the body read to the end). Run it with
//!    `netcat-null` in the same invocation: the table then prints the server's cost as the
//!    throughput difference of the medians (the target is under 2%).
//! 10. `syslog-null` (issue 7): syslogtcp source (defaults: newline framing detected from the
//!     first byte, RFC 5424 parsed into headers) → memory channel → null sink, the same client
//!     sending 200-byte RFC 5424 lines (`<134>1 <timestamp> <host> <app> <procid> <msgid> - `
//!     and text) over one connection. Time as in 1.
//! 11. `rsyslog-syslog-null` (issue 7): rsyslogd `imtcp` with its default parser chain
//!     (RFC 5424, then RFC 3164) on the same lines → ruleset that discards every message except
//!     the end marker, matched on the parsed `$msg` (not `$rawmsg`), then as 5. Run both in one
//!     invocation: the table prints the ratio.
//!
//! rsyslog runs with its defaults except what the workloads need; in the file workload it
//! writes lines out of order (its main queue has several workers), so its output is checked
//! as a multiset (every line sent is there exactly once, intact) while flumen's output must be
//! byte for byte what was sent, in order. Its peak RSS is `VmHWM` as for flumen (impstats'
//! `maxrss` is not used: `ru_maxrss` also counts the forked bench process before `exec`).
//!
//! Memory: a thread reads `/proc/<pid>/status` every 50 ms during each run; the peak is the
//! final `VmHWM` (the kernel's high-water mark of resident memory). Idle RSS is `VmRSS` one
//! second after spawn, before anything is sent.
//!
//! Every wait has a timeout, and every child process is owned by a guard that stops it
//! (SIGTERM, then SIGKILL) when dropped, so a failed run leaves nothing behind.

mod support;

use std::fmt::Write as _;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};

use support::{
    FILLER, LINE_LEN, LINE_PREFIX, MemoryPoller, Proc, env_number, field_value, free_port,
    kib_to_mib, lines_per_s, load_average, median_f64, median_u64, mib_per_s, null_sink,
    only_from_env, read_status, spawn_flumen, tempdir, wait_null_sink, wait_until, wants,
};

/// Lines per chunk written by the client: 1 MiB, rounded down to whole lines. Each line is
/// [`LINE_PREFIX`], its 7-digit index in the chunk, a space and [`FILLER`] cut to length.
const CHUNK_LINES: usize = (1 << 20) / LINE_LEN;
/// Default lines per run.
const DEFAULT_LINES: u64 = 5_000_000;
/// Default lines per run of the durable workloads (every commit fsync'd is slower).
const DEFAULT_FC_LINES: u64 = 2_000_000;
/// Default lines per run of `rsyslog-da-file-sync`.
const DEFAULT_FC_SYNC_LINES: u64 = 20_000;
/// Longest wait for completion in the durable workloads (they write everything twice, fsync'd).
const FC_TIMEOUT: Duration = Duration::from_secs(900);
/// Default runs per workload.
const DEFAULT_RUNS: usize = 5;
/// Longest wait for any one event (start-up, completion, a socket write).
const TIMEOUT: Duration = Duration::from_secs(120);
/// When idle RSS is read, counted from spawn.
const IDLE_AFTER: Duration = Duration::from_secs(1);
/// The rsyslog daemon.
const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
/// First bytes of the end marker line sent to rsyslog in the null workload.
const END_MARKER: &str = "FLUMEN-BENCH-END";

fn main() {
    support::run_bench(run_all);
}

/// What the run was asked to do.
struct Settings {
    lines: u64,
    /// Lines per run of the durable workloads (file channel, rsyslog disk-assisted queue).
    fc_lines: u64,
    /// Lines per run of `rsyslog-da-file-sync` (one fsync per message: slow).
    fc_sync_lines: u64,
    runs: usize,
    only: Option<Vec<String>>,
}

impl Settings {
    fn from_env() -> Result<Self> {
        let lines = env_number("FLUMEN_BENCH_LINES")?.unwrap_or(DEFAULT_LINES);
        let fc_lines = env_number("FLUMEN_BENCH_FC_LINES")?.unwrap_or(DEFAULT_FC_LINES);
        let fc_sync_lines =
            env_number("FLUMEN_BENCH_FC_SYNC_LINES")?.unwrap_or(DEFAULT_FC_SYNC_LINES);
        let runs = env_number("FLUMEN_BENCH_RUNS")?.map_or(DEFAULT_RUNS, |r| r as usize);
        ensure!(lines > 0, "FLUMEN_BENCH_LINES must be at least 1");
        ensure!(fc_lines > 0, "FLUMEN_BENCH_FC_LINES must be at least 1");
        ensure!(
            fc_sync_lines > 0,
            "FLUMEN_BENCH_FC_SYNC_LINES must be at least 1"
        );
        ensure!(runs > 0, "FLUMEN_BENCH_RUNS must be at least 1");
        let only = only_from_env(&Workload::ALL.map(Workload::key))?;
        Ok(Self {
            lines,
            fc_lines,
            fc_sync_lines,
            runs,
            only,
        })
    }

    fn wants(&self, key: &str) -> bool {
        wants(self.only.as_deref(), key)
    }
}

/// One workload: how to run it once and how to label it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    NetcatNull,
    SeqNull,
    NetcatFile,
    RsyslogNull,
    RsyslogFile,
    NetcatFileChannelFile,
    RsyslogDaFile,
    RsyslogDaFileSync,
    RsyslogDiskFile,
    RsyslogDiskFileSync,
    NetcatNullHttp,
    SyslogNull,
    RsyslogSyslogNull,
}

impl Workload {
    const ALL: [Workload; 13] = [
        Workload::NetcatNull,
        Workload::SeqNull,
        Workload::NetcatFile,
        Workload::RsyslogNull,
        Workload::RsyslogFile,
        Workload::NetcatFileChannelFile,
        Workload::RsyslogDaFile,
        Workload::RsyslogDaFileSync,
        Workload::RsyslogDiskFile,
        Workload::RsyslogDiskFileSync,
        Workload::NetcatNullHttp,
        Workload::SyslogNull,
        Workload::RsyslogSyslogNull,
    ];

    fn key(self) -> &'static str {
        match self {
            Workload::NetcatNull => "netcat-null",
            Workload::SeqNull => "seq-null",
            Workload::NetcatFile => "netcat-file",
            Workload::RsyslogNull => "rsyslog-null",
            Workload::RsyslogFile => "rsyslog-file",
            Workload::NetcatFileChannelFile => "netcat-filechannel-file",
            Workload::RsyslogDaFile => "rsyslog-da-file",
            Workload::RsyslogDaFileSync => "rsyslog-da-file-sync",
            Workload::RsyslogDiskFile => "rsyslog-disk-file",
            Workload::RsyslogDiskFileSync => "rsyslog-disk-file-sync",
            Workload::NetcatNullHttp => "netcat-null-http",
            Workload::SyslogNull => "syslog-null",
            Workload::RsyslogSyslogNull => "rsyslog-syslog-null",
        }
    }

    fn label(self) -> String {
        match self {
            Workload::NetcatNull => "netcat->memory->null (flumen)".to_owned(),
            Workload::SeqNull => "seq->memory->null (flumen)".to_owned(),
            Workload::NetcatFile => "netcat->memory->file_roll (flumen)".to_owned(),
            Workload::RsyslogNull => "rsyslog imtcp->discard".to_owned(),
            Workload::RsyslogFile => "rsyslog imtcp->omfile".to_owned(),
            Workload::NetcatFileChannelFile => format!(
                "netcat->file ch->file_roll (flumen, txn {})",
                fc_transaction_capacity()
            ),
            Workload::RsyslogDaFile => "rsyslog imtcp->DA queue->omfile".to_owned(),
            Workload::RsyslogDaFileSync => "rsyslog imtcp->DA queue (fsync)->omfile".to_owned(),
            Workload::RsyslogDiskFile => "rsyslog imtcp->disk queue->omfile".to_owned(),
            Workload::RsyslogDiskFileSync => "rsyslog imtcp->disk queue (fsync)->omfile".to_owned(),
            Workload::NetcatNullHttp => "netcat->memory->null, /metrics every 100ms".to_owned(),
            Workload::SyslogNull => "syslogtcp (RFC 5424)->memory->null (flumen)".to_owned(),
            Workload::RsyslogSyslogNull => "rsyslog imtcp (RFC 5424 parsed)->discard".to_owned(),
        }
    }

    fn is_rsyslog(self) -> bool {
        matches!(
            self,
            Workload::RsyslogNull
                | Workload::RsyslogFile
                | Workload::RsyslogDaFile
                | Workload::RsyslogDaFileSync
                | Workload::RsyslogDiskFile
                | Workload::RsyslogDiskFileSync
                | Workload::RsyslogSyslogNull
        )
    }

    /// Lines per run: the durable workloads default to fewer.
    fn lines(self, settings: &Settings) -> u64 {
        match self {
            Workload::NetcatFileChannelFile
            | Workload::RsyslogDaFile
            | Workload::RsyslogDiskFile => settings.fc_lines,
            Workload::RsyslogDaFileSync | Workload::RsyslogDiskFileSync => settings.fc_sync_lines,
            _ => settings.lines,
        }
    }

    /// Whether the events are the 200-byte lines (so MiB/s means something).
    fn has_lines(self) -> bool {
        self != Workload::SeqNull
    }

    fn run_once(self, bin: &Path, payload: &Payload) -> Result<Sample> {
        match self {
            Workload::NetcatNull => flumen_netcat_null(bin, payload),
            Workload::SeqNull => flumen_seq_null(bin, payload.lines),
            Workload::NetcatFile => flumen_netcat_file(bin, payload),
            Workload::RsyslogNull => rsyslog_null(payload),
            Workload::RsyslogFile => rsyslog_file(payload),
            Workload::NetcatFileChannelFile => flumen_netcat_filechannel_file(bin, payload),
            Workload::RsyslogDaFile => rsyslog_queued_file(payload, false, false),
            Workload::RsyslogDaFileSync => rsyslog_queued_file(payload, false, true),
            Workload::RsyslogDiskFile => rsyslog_queued_file(payload, true, false),
            Workload::RsyslogDiskFileSync => rsyslog_queued_file(payload, true, true),
            Workload::NetcatNullHttp => flumen_netcat_null_http(bin, payload),
            Workload::SyslogNull => flumen_syslog_null(bin, payload),
            Workload::RsyslogSyslogNull => rsyslog_syslog_null(payload),
        }
    }
}

/// The measurements of one run.
#[derive(Clone)]
struct Sample {
    elapsed: Duration,
    lines: u64,
    /// Final `VmHWM` in KiB.
    peak_kib: u64,
    /// `VmRSS` one second after spawn, in KiB (None when not measured).
    idle_kib: Option<u64>,
    /// What the checks after the run found worth telling.
    note: Option<String>,
}

impl Sample {
    fn rate(&self) -> f64 {
        lines_per_s(self.lines, self.elapsed)
    }
}

/// Medians of one workload's runs.
struct Summary {
    workload: Workload,
    rate: f64,
    peak_kib: u64,
    idle_kib: Option<u64>,
    runs: Vec<Sample>,
}

fn run_all() -> Result<()> {
    let settings = Settings::from_env()?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_flumen"));
    ensure!(bin.exists(), "agent binary {} is missing", bin.display());
    let have_rsyslog = Path::new(RSYSLOGD).exists();
    println!(
        "pipeline bench: {} lines of {LINE_LEN} bytes per run ({} in the file channel and \
         disk-assisted queue workloads, {} with rsyslog's per-message fsync), {} runs per \
         workload, agent {}",
        settings.lines,
        settings.fc_lines,
        settings.fc_sync_lines,
        settings.runs,
        bin.display()
    );
    if have_rsyslog {
        println!("reference: {}", rsyslog_version());
    } else {
        println!(
            "reference skipped: {RSYSLOGD} not found; install it with `apt-get install -y rsyslog` \
             (do not start the system service) to get the rsyslog figures"
        );
    }

    println!("load average at the start: {}", load_average());
    let mut summaries = Vec::new();
    for workload in Workload::ALL {
        if !settings.wants(workload.key()) || (workload.is_rsyslog() && !have_rsyslog) {
            continue;
        }
        let payload = if workload.is_syslog() {
            Payload::rfc5424(workload.lines(&settings))
        } else {
            Payload::new(workload.lines(&settings))
        };
        let mut runs = Vec::with_capacity(settings.runs);
        for i in 0..settings.runs {
            let sample = workload
                .run_once(&bin, &payload)
                .with_context(|| format!("{} run {}", workload.label(), i + 1))?;
            runs.push(sample);
        }
        let summary = Summary {
            workload,
            rate: median_f64(runs.iter().map(Sample::rate)),
            peak_kib: median_u64(runs.iter().map(|s| s.peak_kib)),
            idle_kib: {
                let idle: Vec<u64> = runs.iter().filter_map(|s| s.idle_kib).collect();
                (!idle.is_empty()).then(|| median_u64(idle))
            },
            runs,
        };
        print_detail(&summary);
        summaries.push(summary);
    }
    print_table(&summaries);
    println!("load average at the end: {}", load_average());
    Ok(())
}

fn print_detail(s: &Summary) {
    let mut line = format!(
        "{}: median {} lines/s",
        s.workload.label(),
        fmt_rate(s.rate)
    );
    if s.workload.has_lines() {
        let _ = write!(line, ", {:.0} MiB/s", mib_per_s(s.rate));
    }
    let _ = write!(line, ", peak RSS (VmHWM) {:.1} MiB", kib_to_mib(s.peak_kib));
    if let Some(idle) = s.idle_kib {
        let _ = write!(line, ", idle RSS {:.1} MiB", kib_to_mib(idle));
    }
    println!("{line}");
    for (i, r) in s.runs.iter().enumerate() {
        let idle = r
            .idle_kib
            .map(|k| format!(", idle {:.1} MiB", kib_to_mib(k)))
            .unwrap_or_default();
        println!(
            "  run {}: {:.3} s, {} lines/s, peak {:.1} MiB{idle}",
            i + 1,
            r.elapsed.as_secs_f64(),
            fmt_rate(r.rate()),
            kib_to_mib(r.peak_kib)
        );
        if let Some(note) = &r.note {
            println!("         {note}");
        }
    }
}

fn print_table(summaries: &[Summary]) {
    println!();
    println!(
        "{:<46} {:>15} {:>8} {:>10} {:>10}   runs (lines/s)",
        "workload", "median lines/s", "MiB/s", "peak RSS", "idle RSS"
    );
    for s in summaries {
        let mibs = if s.workload.has_lines() {
            format!("{:.0}", mib_per_s(s.rate))
        } else {
            "-".to_owned()
        };
        let idle = s
            .idle_kib
            .map_or_else(|| "-".to_owned(), |k| format!("{:.1} MiB", kib_to_mib(k)));
        let runs: Vec<String> = s.runs.iter().map(|r| fmt_rate(r.rate())).collect();
        println!(
            "{:<46} {:>15} {:>8} {:>6.1} MiB {:>10}   {}",
            s.workload.label(),
            fmt_rate(s.rate),
            mibs,
            kib_to_mib(s.peak_kib),
            idle,
            runs.join(" ")
        );
    }
    let find = |w: Workload| summaries.iter().find(|s| s.workload == w);
    for (name, ours, theirs) in [
        ("null", Workload::NetcatNull, Workload::RsyslogNull),
        ("file", Workload::NetcatFile, Workload::RsyslogFile),
        (
            "syslog RFC 5424 null",
            Workload::SyslogNull,
            Workload::RsyslogSyslogNull,
        ),
        (
            "file channel vs DA queue, no fsync",
            Workload::NetcatFileChannelFile,
            Workload::RsyslogDaFile,
        ),
        (
            "file channel vs DA queue, fsync per message",
            Workload::NetcatFileChannelFile,
            Workload::RsyslogDaFileSync,
        ),
        (
            "file channel vs disk queue, no fsync",
            Workload::NetcatFileChannelFile,
            Workload::RsyslogDiskFile,
        ),
        (
            "file channel vs disk queue, fsync per message",
            Workload::NetcatFileChannelFile,
            Workload::RsyslogDiskFileSync,
        ),
    ] {
        if let (Some(a), Some(b)) = (find(ours), find(theirs)) {
            println!(
                "ratio flumen/rsyslog ({name}): throughput {:.2}x, peak RSS {:.2}x",
                a.rate / b.rate,
                a.peak_kib as f64 / b.peak_kib as f64
            );
        }
    }
    if let (Some(off), Some(on)) = (find(Workload::NetcatNull), find(Workload::NetcatNullHttp)) {
        println!(
            "metrics server cost (netcat-null vs netcat-null-http medians): {:+.2}% throughput, \
             peak RSS {:+.1} MiB",
            (off.rate - on.rate) / off.rate * 100.0,
            kib_to_mib(on.peak_kib) - kib_to_mib(off.peak_kib)
        );
    }
}

/// Lines/s in M above 100,000/s, else in k (the fsync'd rsyslog queues run at a few thousand).
fn fmt_rate(rate: f64) -> String {
    if rate >= 100_000.0 {
        format!("{:.3} M", rate / 1e6)
    } else {
        format!("{:.2} k", rate / 1e3)
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads

fn flumen_netcat_null(bin: &Path, payload: &Payload) -> Result<Sample> {
    let dir = tempdir()?;
    let port = free_port()?;
    let config = format!(
        "{}{}",
        netcat_source(port),
        null_sink(payload.lines, channel_capacity())
    );
    let mut agent = spawn_flumen(bin, dir.path(), &config)?;
    let idle_kib = idle_rss(&mut agent)?;
    let memory = MemoryPoller::start(agent.pid);
    let (start, stream) = connect_and_send(port, payload, None, &mut agent)?;
    wait_null_sink(&mut agent, payload.lines, TIMEOUT)?;
    let elapsed = start.elapsed();
    let peak_kib = memory.stop()?;
    drop(stream);
    agent.stop();
    Ok(Sample {
        elapsed,
        lines: payload.lines,
        peak_kib,
        idle_kib: Some(idle_kib),
        note: None,
    })
}

fn flumen_seq_null(bin: &Path, lines: u64) -> Result<Sample> {
    let dir = tempdir()?;
    let config = format!(
        "a1.sources = r1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = {lines}\n\
         a1.sources.r1.batchSize = 1000\n\
         a1.sources.r1.channels = c1\n\
         {}",
        null_sink(lines, channel_capacity())
    );
    let start = Instant::now();
    let mut agent = spawn_flumen(bin, dir.path(), &config)?;
    let memory = MemoryPoller::start(agent.pid);
    wait_null_sink(&mut agent, lines, TIMEOUT)?;
    let elapsed = start.elapsed();
    let peak_kib = memory.stop()?;
    agent.stop();
    Ok(Sample {
        elapsed,
        lines,
        peak_kib,
        idle_kib: None,
        note: None,
    })
}

fn flumen_netcat_file(bin: &Path, payload: &Payload) -> Result<Sample> {
    let dir = tempdir()?;
    let out = dir.path().join("out");
    let port = free_port()?;
    let config = format!(
        "{}a1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = {cap}\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks = k1\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.batchSize = 1000\n",
        netcat_source(port),
        out.display(),
        cap = channel_capacity()
    );
    let mut agent = spawn_flumen(bin, dir.path(), &config)?;
    let idle_kib = idle_rss(&mut agent)?;
    let memory = MemoryPoller::start(agent.pid);
    let (start, stream) = connect_and_send(port, payload, None, &mut agent)?;
    let target = payload.lines * LINE_LEN as u64;
    wait_until(
        &mut agent,
        "the file_roll output to reach its full size",
        TIMEOUT,
        || Ok(dir_size(&out)? >= target),
    )?;
    let elapsed = start.elapsed();
    let peak_kib = memory.stop()?;
    drop(stream);
    agent.stop();
    verify_output(&out, payload.lines, payload, Order::Exact)?;
    Ok(Sample {
        elapsed,
        lines: payload.lines,
        peak_kib,
        idle_kib: Some(idle_kib),
        note: None,
    })
}

fn rsyslog_null(payload: &Payload) -> Result<Sample> {
    let marker = format!("{END_MARKER}\n");
    rsyslog_discard(
        payload,
        &Discard {
            property: "$rawmsg",
            template: "raw",
            template_def: "",
            expected: marker.clone(),
            marker,
            note: "impstats afterwards: imtcp submitted",
        },
    )
}

/// An rsyslog run that discards every line but an end marker, written to a file.
struct Discard<'a> {
    /// The message property the marker filter looks at (`$rawmsg`, or `$msg` once parsed).
    property: &'a str,
    /// The template writing the marker out, and its definition if not built in.
    template: &'a str,
    template_def: &'a str,
    /// The marker line sent after the payload, and what rsyslog must write for it.
    marker: String,
    expected: String,
    /// Start of the sample's note.
    note: &'a str,
}

/// Time = from connect to the end marker written; the marker proves its own handling and
/// impstats proves that every line before it was received and taken off the main queue.
fn rsyslog_discard(payload: &Payload, run: &Discard<'_>) -> Result<Sample> {
    let dir = tempdir()?;
    let done = dir.path().join("done.log");
    let ruleset = format!(
        "ruleset(name=\"r\") {{\n\
         \x20 if {} startswith \"{END_MARKER}\" then {{\n\
         \x20   action(type=\"omfile\" file=\"{}\" template=\"{}\")\n\
         \x20 }}\n\
         \x20 stop\n\
         }}\n",
        run.property,
        done.display(),
        run.template
    );
    let stats = dir.path().join("stats.json");
    let modules = format!(
        "module(load=\"impstats\" interval=\"1\" format=\"json\" log.syslog=\"off\" \
         log.file=\"{}\")\n{}",
        stats.display(),
        run.template_def
    );
    let port = free_port()?;
    let mut daemon = spawn_rsyslog(dir.path(), port, &modules, &ruleset)?;
    let idle_kib = idle_rss(&mut daemon)?;
    let memory = MemoryPoller::start(daemon.pid);
    let (start, stream) =
        connect_and_send(port, payload, Some(run.marker.as_bytes()), &mut daemon)?;
    wait_until(
        &mut daemon,
        "rsyslog to write the end marker",
        TIMEOUT,
        || Ok(std::fs::metadata(&done).is_ok_and(|m| m.len() > 0)),
    )?;
    let elapsed = start.elapsed();
    let peak_kib = memory.stop()?;
    drop(stream);
    let got = std::fs::read(&done).context("reading rsyslog's end marker file")?;
    ensure!(
        got == run.expected.as_bytes(),
        "rsyslog wrote {:?} for the end marker, expected {:?}",
        String::from_utf8_lossy(&got),
        run.expected
    );
    let submitted = payload.lines + 1;
    let mut last = RsyslogStats::default();
    wait_until(
        &mut daemon,
        "impstats to show every line received and the main queue empty",
        TIMEOUT,
        || {
            last = RsyslogStats::read(&stats, port)?;
            Ok(last.submitted == Some(submitted) && last.queue_size == Some(0))
        },
    )
    .with_context(|| {
        format!(
            "last impstats figures: imtcp submitted {:?} (want {submitted}), main Q size {:?}",
            last.submitted, last.queue_size
        )
    })?;
    daemon.stop();
    Ok(Sample {
        elapsed,
        lines: payload.lines,
        peak_kib,
        idle_kib: Some(idle_kib),
        note: Some(format!(
            "{} {submitted} (lines + marker), main Q size 0",
            run.note
        )),
    })
}

/// The last figures of interest in an impstats JSON log.
#[derive(Default)]
struct RsyslogStats {
    /// `submitted` of `imtcp(<port>)`.
    submitted: Option<u64>,
    /// `size` of `main Q`.
    queue_size: Option<u64>,
}

impl RsyslogStats {
    fn read(path: &Path, port: u16) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let input = format!("\"name\": \"imtcp({port})\"");
        let mut stats = Self::default();
        for line in text.lines() {
            if line.contains(&input) {
                stats.submitted = field_value(line, "\"submitted\": ");
            } else if line.contains("\"name\": \"main Q\"") {
                stats.queue_size = field_value(line, "\"size\": ");
            }
        }
        Ok(stats)
    }
}

fn rsyslog_file(payload: &Payload) -> Result<Sample> {
    let dir = tempdir()?;
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).context("creating rsyslog's output directory")?;
    let ruleset = format!(
        "ruleset(name=\"r\") {{\n\
         \x20 action(type=\"omfile\" file=\"{}\" template=\"raw\")\n\
         }}\n",
        out_dir.join("out.log").display()
    );
    let port = free_port()?;
    let mut daemon = spawn_rsyslog(dir.path(), port, "", &ruleset)?;
    let idle_kib = idle_rss(&mut daemon)?;
    let memory = MemoryPoller::start(daemon.pid);
    let (start, stream) = connect_and_send(port, payload, None, &mut daemon)?;
    let target = payload.lines * LINE_LEN as u64;
    wait_until(
        &mut daemon,
        "rsyslog's output to reach its full size",
        TIMEOUT,
        || Ok(dir_size(&out_dir)? >= target),
    )?;
    let elapsed = start.elapsed();
    let peak_kib = memory.stop()?;
    drop(stream);
    daemon.stop();
    let out_of_order = verify_output(&out_dir, payload.lines, payload, Order::AnyOrder)?;
    Ok(Sample {
        elapsed,
        lines: payload.lines,
        peak_kib,
        idle_kib: Some(idle_kib),
        note: Some(if out_of_order == 0 {
            "output complete, intact and in order".to_owned()
        } else {
            format!(
                "output complete and intact, but out of order ({out_of_order} breaks in sequence)"
            )
        }),
    })
}

/// `transactionCapacity` of the file channel workload (`FLUMEN_BENCH_FC_TXN`, default 10000,
/// the file channel's default); the file_roll sink's `sink.batchSize` is the same. The netcat
/// source delivers the complete lines of one socket read (at most ~144 KiB, so about 650–740
/// lines) as one batch, cut to this value.
fn fc_transaction_capacity() -> u64 {
    std::env::var("FLUMEN_BENCH_FC_TXN")
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(10_000)
}

fn flumen_netcat_filechannel_file(bin: &Path, payload: &Payload) -> Result<Sample> {
    let dir = tempdir()?;
    let out = dir.path().join("out");
    let checkpoint = dir.path().join("checkpoint");
    let data = dir.path().join("data");
    let port = free_port()?;
    let txn = fc_transaction_capacity();
    let config = format!(
        "{}a1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {}\n\
         a1.channels.c1.dataDirs = {}\n\
         a1.channels.c1.capacity = 1000000\n\
         a1.channels.c1.transactionCapacity = {txn}\n\
         a1.channels.c1.minimumRequiredSpace = 1048576\n\
         a1.sinks = k1\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.batchSize = {txn}\n",
        netcat_source(port),
        checkpoint.display(),
        data.display(),
        out.display(),
    );
    let mut agent = spawn_flumen(bin, dir.path(), &config)?;
    let idle_kib = idle_rss(&mut agent)?;
    let memory = MemoryPoller::start(agent.pid);
    let (start, stream) = connect_and_send(port, payload, None, &mut agent)?;
    let target = payload.lines * LINE_LEN as u64;
    let mut wal_peak = 0;
    wait_until(
        &mut agent,
        "the file_roll output to reach its full size",
        FC_TIMEOUT,
        || {
            wal_peak = wal_peak.max(dir_size(&data)?);
            Ok(dir_size(&out)? >= target)
        },
    )?;
    let elapsed = start.elapsed();
    let peak_kib = memory.stop()?;
    let wal_end = dir_size(&data)?;
    drop(stream);
    agent.stop();
    verify_output(&out, payload.lines, payload, Order::Exact)?;
    Ok(Sample {
        elapsed,
        lines: payload.lines,
        peak_kib,
        idle_kib: Some(idle_kib),
        note: Some(format!(
            "output complete, intact and in order; WAL data files {:.1} MiB at completion \
             (largest seen {:.1} MiB)",
            wal_end as f64 / 1048576.0,
            wal_peak as f64 / 1048576.0
        )),
    })
}

/// In-memory part of rsyslog's disk-assisted action queue: `queue.size`, `highWatermark`,
/// `lowWatermark`. Small, so that the queue goes to disk early. Even so, only about a fifth of
/// the lines went through disk in trials: the memory part keeps its own worker.
const DA_QUEUE_SIZE: u64 = 100;
const DA_HIGH_WATERMARK: u64 = 80;
const DA_LOW_WATERMARK: u64 = 20;

/// rsyslog `imtcp` → ruleset → `omfile` behind an action queue on disk: disk-assisted
/// (`LinkedList` + `queue.filename`: memory first, disk past the high watermark) or, with
/// `disk_only`, a pure disk queue (`queue.type="Disk"`: every message written to and read back
/// from the queue files). With `sync`, every queue file write is fsync'd and the queue's
/// bookkeeping is written after every record (`queue.syncqueuefiles="on"`,
/// `queue.checkpointInterval="1"`).
fn rsyslog_queued_file(payload: &Payload, disk_only: bool, sync: bool) -> Result<Sample> {
    let dir = tempdir()?;
    let out_dir = dir.path().join("out");
    let spool = dir.path().join("spool");
    std::fs::create_dir(&out_dir).context("creating rsyslog's output directory")?;
    std::fs::create_dir(&spool).context("creating rsyslog's spool directory")?;
    let sync_params = if sync {
        " queue.checkpointInterval=\"1\" queue.syncqueuefiles=\"on\""
    } else {
        ""
    };
    let queue_params = if disk_only {
        "queue.type=\"Disk\"".to_owned()
    } else {
        format!(
            "queue.type=\"LinkedList\" queue.size=\"{DA_QUEUE_SIZE}\" \
             queue.highWatermark=\"{DA_HIGH_WATERMARK}\" queue.lowWatermark=\"{DA_LOW_WATERMARK}\""
        )
    };
    let ruleset = format!(
        "ruleset(name=\"r\") {{\n\
         \x20 action(type=\"omfile\" name=\"out\" file=\"{}\" template=\"raw\" \
         {queue_params} queue.filename=\"da\" queue.spoolDirectory=\"{}\" \
         queue.saveOnShutdown=\"on\" queue.maxDiskSpace=\"2g\"{sync_params})\n\
         }}\n",
        out_dir.join("out.log").display(),
        spool.display()
    );
    let stats = dir.path().join("stats.json");
    let modules = format!(
        "module(load=\"impstats\" interval=\"1\" format=\"json\" log.syslog=\"off\" \
         log.file=\"{}\")\n",
        stats.display()
    );
    let port = free_port()?;
    let mut daemon = spawn_rsyslog(dir.path(), port, &modules, &ruleset)?;
    let idle_kib = idle_rss(&mut daemon)?;
    let memory = MemoryPoller::start(daemon.pid);
    let (start, stream) = connect_and_send(port, payload, None, &mut daemon)?;
    let target = payload.lines * LINE_LEN as u64;
    let mut spool_peak = 0;
    wait_until(
        &mut daemon,
        "rsyslog's output to reach its full size",
        FC_TIMEOUT,
        || {
            spool_peak = spool_peak.max(dir_size(&spool)?);
            Ok(dir_size(&out_dir)? >= target)
        },
    )?;
    let elapsed = start.elapsed();
    let peak_kib = memory.stop()?;
    drop(stream);
    // impstats (every second) then tells how many messages the action processed and how many
    // of them the disk part of its queue took.
    let mut text = String::new();
    wait_until(
        &mut daemon,
        "impstats to show every line processed by the omfile action",
        TIMEOUT,
        || {
            text = read_optional(&stats)?;
            Ok(last_stat(&text, "out", "processed") == Some(payload.lines))
        },
    )
    .with_context(|| {
        format!(
            "last impstats figure: action `out` processed {:?} (want {})",
            last_stat(&text, "out", "processed"),
            payload.lines
        )
    })?;
    daemon.stop();
    let out_of_order = verify_output(&out_dir, payload.lines, payload, Order::AnyOrder)?;
    let disk_queue = if disk_only {
        "out queue"
    } else {
        "out queue[DA]"
    };
    let to_disk = last_stat(&text, disk_queue, "enqueued").unwrap_or(0);
    let mem_max = if disk_only {
        Some(0)
    } else {
        last_stat(&text, "out queue", "maxqsize")
    };
    let disk_max = last_stat(&text, disk_queue, "maxqsize");
    Ok(Sample {
        elapsed,
        lines: payload.lines,
        peak_kib,
        idle_kib: Some(idle_kib),
        note: Some(format!(
            "{}; through disk (impstats `{disk_queue}` enqueued): {to_disk} of {} lines \
             ({:.1}%), disk queue max {} msgs, memory queue max {} msgs, spool files up to \
             {:.1} MiB during the run",
            if out_of_order == 0 {
                "output complete, intact and in order".to_owned()
            } else {
                format!("output complete and intact, out of order ({out_of_order} breaks)")
            },
            payload.lines,
            to_disk as f64 * 100.0 / payload.lines as f64,
            disk_max.map_or_else(|| "?".to_owned(), |v| v.to_string()),
            mem_max.map_or_else(|| "?".to_owned(), |v| v.to_string()),
            spool_peak as f64 / 1048576.0
        )),
    })
}

/// The file's text, or empty while it does not exist.
fn read_optional(path: &Path) -> Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The last value of `field` in the impstats JSON lines of the object named `name`.
fn last_stat(text: &str, name: &str, field: &str) -> Option<u64> {
    let name = format!("\"name\": \"{name}\",");
    let field = format!("\"{field}\": ");
    text.lines()
        .filter(|l| l.contains(&name))
        .filter_map(|l| field_value(l, &field))
        .next_back()
}

// ---------------------------------------------------------------------------------------------
// Agent and daemon set-up

fn netcat_source(port: u16) -> String {
    format!(
        "a1.sources = r1\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.ack-every-event = false\n\
         a1.sources.r1.channels = c1\n"
    )
}

/// Memory channel capacity of the netcat and seq workloads (`FLUMEN_BENCH_CAPACITY`, default
/// 10000). Peak RSS follows it: 100,000 queued 200-byte events hold 19 MiB of bodies alone.
fn channel_capacity() -> u64 {
    std::env::var("FLUMEN_BENCH_CAPACITY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn spawn_rsyslog(dir: &Path, port: u16, modules: &str, ruleset: &str) -> Result<Proc> {
    let conf = dir.join("rsyslog.conf");
    let pidfile = dir.join("rsyslogd.pid");
    let config = format!(
        "global(workDirectory=\"{}\")\n\
         {modules}\
         module(load=\"imtcp\")\n\
         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
         {ruleset}\
         input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\" ruleset=\"r\" \
         supportOctetCountedFraming=\"off\")\n",
        dir.display()
    );
    std::fs::write(&conf, config).context("writing rsyslog's configuration")?;
    let mut cmd = Command::new(RSYSLOGD);
    cmd.arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(&pidfile)
        .current_dir(dir);
    Proc::spawn("rsyslogd", cmd, Some(pidfile))
}

fn rsyslog_version() -> String {
    Command::new(RSYSLOGD)
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim_end_matches("compiled with:").trim().to_owned())
        })
        .unwrap_or_else(|| "rsyslogd (version unknown)".to_owned())
}

/// `VmRSS` one second after spawn, in KiB.
fn idle_rss(proc: &mut Proc) -> Result<u64> {
    let wait = IDLE_AFTER.saturating_sub(proc.spawned.elapsed());
    thread::sleep(wait);
    proc.check_alive()?;
    let status =
        read_status(proc.pid).with_context(|| format!("reading /proc/{}/status", proc.pid))?;
    status
        .rss_kib
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{}/status", proc.pid))
}

// ---------------------------------------------------------------------------------------------
// Client and output

/// The lines to send: one pre-built 1 MiB chunk, written as many times as needed.
struct Payload {
    lines: u64,
    chunk: Vec<u8>,
}

impl Payload {
    fn new(lines: u64) -> Self {
        let mut chunk = Vec::with_capacity(CHUNK_LINES * LINE_LEN);
        for i in 0..CHUNK_LINES {
            let start = chunk.len();
            let _ = write!(chunk, "{LINE_PREFIX}{i:07} ");
            let room = LINE_LEN - 1 - (chunk.len() - start);
            chunk.extend_from_slice(&FILLER[..room]);
            chunk.push(b'\n');
            debug_assert_eq!(chunk.len() - start, LINE_LEN);
        }
        Self { lines, chunk }
    }

    /// Line `i` of the chunk, newline included.
    fn line(&self, i: usize) -> &[u8] {
        &self.chunk[i * LINE_LEN..(i + 1) * LINE_LEN]
    }

    /// Writes every line to `stream`.
    fn write_to(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        let mut left = self.lines;
        while left > 0 {
            let n = left.min(CHUNK_LINES as u64);
            stream.write_all(&self.chunk[..n as usize * LINE_LEN])?;
            left -= n;
        }
        Ok(())
    }
}

/// Connects (retrying while the listener comes up), writes the payload and then `trailer`.
/// Returns the instant just before the successful connect, and the open stream.
fn connect_and_send(
    port: u16,
    payload: &Payload,
    trailer: Option<&[u8]>,
    proc: &mut Proc,
) -> Result<(Instant, TcpStream)> {
    let deadline = Instant::now() + TIMEOUT;
    let (start, mut stream) = loop {
        let start = Instant::now();
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break (start, s),
            Err(e) => {
                proc.check_alive()?;
                if Instant::now() >= deadline {
                    bail!(
                        "could not connect to {} on 127.0.0.1:{port} within {TIMEOUT:?}: {e}; \
                         last stderr lines:\n{}",
                        proc.name,
                        proc.stderr_tail()
                    );
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
    };
    stream
        .set_write_timeout(Some(TIMEOUT))
        .context("setting the socket write timeout")?;
    let sent = payload
        .write_to(&mut stream)
        .and_then(|()| trailer.map_or(Ok(()), |t| stream.write_all(t)));
    if let Err(e) = sent {
        proc.check_alive()?;
        bail!(
            "sending to {} failed: {e}; last stderr lines:\n{}",
            proc.name,
            proc.stderr_tail()
        );
    }
    Ok((start, stream))
}

/// Total size of the regular files in `dir` (0 while it does not exist).
fn dir_size(dir: &Path) -> Result<u64> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut total = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if let Ok(meta) = entry.metadata()
            && meta.is_file()
        {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Whether the output must keep the order of the input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Byte for byte what was sent, in order (one sink writing one file).
    Exact,
    /// Every line sent exactly once, in any order (rsyslog's main queue has several workers).
    AnyOrder,
}

/// Checks that the files in `dir` hold exactly the `lines` lines sent, each intact, and in
/// order when `order` says so. Returns how many times the sequence broke (0 when in order).
fn verify_output(dir: &Path, lines: u64, payload: &Payload, order: Order) -> Result<u64> {
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("listing {}", dir.display()))?
            .path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    ensure!(
        files.len() == 1,
        "expected one output file in {}, found {}",
        dir.display(),
        files.len()
    );
    let path = &files[0];
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let expected = lines * LINE_LEN as u64;
    ensure!(
        data.len() as u64 == expected,
        "{} holds {} bytes ({} newlines); expected {lines} lines = {expected} bytes",
        path.display(),
        data.len(),
        memchr::memchr_iter(b'\n', &data).count()
    );
    match order {
        Order::Exact => {
            check_in_order(path, &data, &payload.chunk)?;
            Ok(0)
        }
        Order::AnyOrder => check_any_order(path, &data, payload),
    }
}

/// Compares `data` with the chunk repeated (the last repetition cut short).
fn check_in_order(path: &Path, data: &[u8], chunk: &[u8]) -> Result<()> {
    for (i, part) in data.chunks(chunk.len()).enumerate() {
        if part != &chunk[..part.len()] {
            let at = part
                .iter()
                .zip(chunk)
                .position(|(a, b)| a != b)
                .unwrap_or(part.len());
            let offset = i * chunk.len() + at;
            bail!(
                "{} differs from what was sent at byte {offset} (line {})",
                path.display(),
                offset / LINE_LEN + 1
            );
        }
    }
    Ok(())
}

/// Checks that every line of `data` is one of the chunk's lines, intact, and that each was
/// received as many times as it was sent. Returns the number of breaks in the sequence.
fn check_any_order(path: &Path, data: &[u8], payload: &Payload) -> Result<u64> {
    let mut seen = vec![0u64; CHUNK_LINES];
    let mut breaks = 0;
    let mut prev: Option<usize> = None;
    for (n, line) in data.chunks(LINE_LEN).enumerate() {
        let index = line
            .get(LINE_PREFIX.len()..LINE_PREFIX.len() + 7)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| d.parse::<usize>().ok())
            .filter(|&i| i < CHUNK_LINES);
        let intact = index.is_some_and(|i| line == payload.line(i));
        let Some(index) = index.filter(|_| intact) else {
            bail!(
                "{} line {} is not a line that was sent: {:?}",
                path.display(),
                n + 1,
                String::from_utf8_lossy(&line[..line.len().min(120)])
            );
        };
        seen[index] += 1;
        if prev.is_some_and(|p| (p + 1) % CHUNK_LINES != index) {
            breaks += 1;
        }
        prev = Some(index);
    }
    let full = payload.lines / CHUNK_LINES as u64;
    let rest = (payload.lines % CHUNK_LINES as u64) as usize;
    for (i, &got) in seen.iter().enumerate() {
        let want = full + u64::from(i < rest);
        ensure!(
            got == want,
            "{}: line seq={i:07} was written {got} times, sent {want} times",
            path.display()
        );
    }
    Ok(breaks)
}

// ---------------------------------------------------------------------------------------------
// Metrics server cost (issue 6)

/// `netcat-null` with `--http` and a scraper hitting `/metrics` every 100 ms.
fn flumen_netcat_null_http(bin: &Path, payload: &Payload) -> Result<Sample> {
    let dir = tempdir()?;
    let port = free_port()?;
    let http_port = free_port()?;
    let config = format!(
        "{}{}",
        netcat_source(port),
        null_sink(payload.lines, channel_capacity())
    );
    let conf = dir.path().join("flume.conf");
    std::fs::write(&conf, config).context("writing the agent's configuration")?;
    let mut cmd = Command::new(bin);
    cmd.args(["agent", "-n", "a1", "-f"])
        .arg(&conf)
        .args(["--http", &format!("127.0.0.1:{http_port}")])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn,flumen::components::sinks::null=debug")
        .env("NO_COLOR", "1");
    let mut agent = Proc::spawn("flumen agent", cmd, None)?;
    let idle_kib = idle_rss(&mut agent)?;
    let memory = MemoryPoller::start(agent.pid);
    let scraper = Scraper::start(http_port);
    let (start, stream) = connect_and_send(port, payload, None, &mut agent)?;
    wait_null_sink(&mut agent, payload.lines, TIMEOUT)?;
    let elapsed = start.elapsed();
    let (scrapes, failures) = scraper.stop();
    let peak_kib = memory.stop()?;
    drop(stream);
    agent.stop();
    ensure!(scrapes > 0, "the scraper never got a /metrics answer");
    Ok(Sample {
        elapsed,
        lines: payload.lines,
        peak_kib,
        idle_kib: Some(idle_kib),
        note: Some(format!("{scrapes} scrapes of /metrics, {failures} failed")),
    })
}

/// A thread fetching `/metrics` every 100 ms until stopped.
struct Scraper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: thread::JoinHandle<(u64, u64)>,
}

impl Scraper {
    fn start(port: u16) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || {
            let (mut ok, mut failed) = (0u64, 0u64);
            while !flag.load(Ordering::Relaxed) {
                let began = Instant::now();
                match scrape_once(port) {
                    Ok(true) => ok += 1,
                    _ => failed += 1,
                }
                thread::sleep(Duration::from_millis(100).saturating_sub(began.elapsed()));
            }
            (ok, failed)
        });
        Self { stop, handle }
    }

    /// Stops the thread; returns (successful scrapes, failed ones).
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap_or((0, 0))
    }
}

/// One `GET /metrics`; true for a 200 with a JSON object body.
fn scrape_once(port: u16) -> std::io::Result<bool> {
    use std::io::Read;
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut body = Vec::new();
    s.read_to_end(&mut body)?;
    Ok(body.starts_with(b"HTTP/1.1 200") && body.ends_with(b"}"))
}

// ---------------------------------------------------------------------------------------------
// Syslog over TCP (issue 7)

/// The header of every syslog line: PRI 134 (local0.info), version 1, timestamp, host, app
/// name and process id; the message id and the rest follow.
const SYSLOG_HEADER: &str = "<134>1 2026-11-21T14:30:00.123Z bench-host.example flumen-bench 4242";

impl Workload {
    /// Whether the workload sends RFC 5424 lines instead of plain ones.
    fn is_syslog(self) -> bool {
        matches!(self, Workload::SyslogNull | Workload::RsyslogSyslogNull)
    }
}

impl Payload {
    /// RFC 5424 lines of [`LINE_LEN`] bytes: [`SYSLOG_HEADER`], a message id carrying the index
    /// in the chunk, no structured data (`-`), and [`FILLER`] as the message.
    fn rfc5424(lines: u64) -> Self {
        let mut chunk = Vec::with_capacity(CHUNK_LINES * LINE_LEN);
        for i in 0..CHUNK_LINES {
            let start = chunk.len();
            let _ = write!(chunk, "{SYSLOG_HEADER} m{i:07} - ");
            let room = LINE_LEN - 1 - (chunk.len() - start);
            chunk.extend_from_slice(&FILLER[..room]);
            chunk.push(b'\n');
            debug_assert_eq!(chunk.len() - start, LINE_LEN);
        }
        Self { lines, chunk }
    }
}

fn flumen_syslog_null(bin: &Path, payload: &Payload) -> Result<Sample> {
    let dir = tempdir()?;
    let port = free_port()?;
    let config = format!(
        "a1.sources = r1\n\
         a1.sources.r1.type = syslogtcp\n\
         a1.sources.r1.host = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         {}",
        null_sink(payload.lines, channel_capacity())
    );
    let mut agent = spawn_flumen(bin, dir.path(), &config)?;
    let idle_kib = idle_rss(&mut agent)?;
    let memory = MemoryPoller::start(agent.pid);
    let (start, stream) = connect_and_send(port, payload, None, &mut agent)?;
    wait_null_sink(&mut agent, payload.lines, TIMEOUT)?;
    let elapsed = start.elapsed();
    let peak_kib = memory.stop()?;
    drop(stream);
    agent.stop();
    Ok(Sample {
        elapsed,
        lines: payload.lines,
        peak_kib,
        idle_kib: Some(idle_kib),
        note: None,
    })
}

fn rsyslog_syslog_null(payload: &Payload) -> Result<Sample> {
    // `$msg` is the parsed message: rsyslog's default parsers (RFC 5424, then 3164) run on
    // every line before the filter, and the marker must come out with its app name and
    // message id parsed from the RFC 5424 header.
    rsyslog_discard(
        payload,
        &Discard {
            property: "$msg",
            template: "parsed",
            template_def: "template(name=\"parsed\" type=\"string\" \
                           string=\"%app-name% %msgid% %msg%\\n\")\n",
            marker: format!("{SYSLOG_HEADER} end - {END_MARKER}\n"),
            expected: format!("flumen-bench end {END_MARKER}\n"),
            note: "end marker parsed as RFC 5424; impstats afterwards: imtcp submitted",
        },
    )
}
