//! Agent → collector throughput over one RPC connection (issue 5): two real `flumen`
//! processes talking Avro or Thrift (compact) on loopback, beside the raw loopback TCP
//! bandwidth measured in the same run. Prints the median and every run of each workload, then
//! one summary table.
//!
//! Run: `cargo bench -p flumen --bench rpc`
//!
//! Environment:
//! - `FLUMEN_BENCH_LINES`: events per run, default 5,000,000 (rounded up to a multiple of
//!   1,000, the stress source's batch);
//! - `FLUMEN_BENCH_RUNS`: runs per workload, default 5;
//! - `FLUMEN_BENCH_ONLY`: comma-separated workload keys (default all): `tcp`, `avro-100`,
//!   `avro-1000`, `thrift-100`, `thrift-1000`.
//!
//! Workloads `<protocol>-<batch>` (every event body is 200 bytes, no headers):
//! - agent (fresh process per run): `stress` source (`size = 200`, `batchSize = 1000`,
//!   `maxSuccessfulEvents = N`) → `memory` channel (`capacity = 100000`,
//!   `transactionCapacity = 1000`) → `avro` or `thrift` sink (`protocol = compact`) with
//!   `batch-size` = 100 or 1,000, i.e. one `appendBatch` of that many events per channel
//!   transaction, one connection, one call in flight;
//! - collector (fresh process per run, started first and polled with a TCP connect until it
//!   listens): `avro` or `thrift` source (`protocol = compact`) → `memory` channel (`capacity =
//!   100000`, `transactionCapacity = 1000`) → `null` sink (`batchSize = 1000`,
//!   `logEveryNEvents = N`);
//! - time = from the agent's spawn to the collector's null sink DEBUG line
//!   `Null sink discarded events.` with `events=N` on stderr
//!   (`RUST_LOG=warn,flumen::components::sinks::null=debug`). It includes the agent's start-up,
//!   its connect and handshake (a few ms; under 1% of a run at the default size);
//! - events/s = N / time; MiB/s = N × 200 body bytes / time (framing, headers and the
//!   protocol's own bytes are not counted), and that MiB/s as a percentage of the TCP
//!   reference;
//! - CPU = utime + stime of each process over the run (`/proc/<pid>/stat`, all threads), as
//!   seconds and as ns per event, to show which side limits the rate;
//! - a run whose agent or collector logged a WARN or ERROR line (a refused batch, a retried
//!   delivery: the count could then include duplicates) is flagged with those lines.
//!
//! Why the stress source and not netcat fed by the bench: the stress source puts batches of
//! events that share one body buffer (no copy, no parsing, no client process), so the agent's
//! CPU goes to the channel, the sink and the RPC encoder, and the two cores of a small machine
//! are left to the two agents instead of a third process and a second loopback copy of every
//! byte. Its `maxSuccessfulEvents` counts accepted batches, so nothing refused is counted.
//!
//! `tcp`: the loopback reference, in the bench process: one connection on 127.0.0.1, a writer
//! thread doing `write_all` of a 1 MiB buffer and a reader thread reading into a 1 MiB buffer
//! and discarding, for max(N × 200 bytes, 1 GiB). Time = from connect to the reader having
//! received every byte.
//!
//! Every wait has a timeout, and every child process is owned by a guard that stops it
//! (SIGTERM, then SIGKILL) when dropped, so a failed run leaves nothing behind.

mod support;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};

use support::{
    LINE_LEN, Proc, env_number, free_port, load_average, median_f64, mib, null_sink, only_from_env,
    spawn_flumen, tempdir, wait_null_sink, wants,
};

/// Body bytes per event (the same 200 bytes as the pipeline bench's lines).
const EVENT_LEN: u64 = LINE_LEN as u64;
/// Default events per run.
const DEFAULT_LINES: u64 = 5_000_000;
/// Default runs per workload.
const DEFAULT_RUNS: usize = 5;
/// The stress source's batch; N is rounded up to a multiple of it.
const SOURCE_BATCH: u64 = 1000;
/// Memory channel capacity on both sides.
const CAPACITY: u64 = 100_000;
/// Smallest amount sent through the TCP reference.
const TCP_MIN_BYTES: u64 = 1 << 30;
/// Size of each write and read of the TCP reference.
const TCP_BUF: usize = 1 << 20;
/// Longest wait for any one thing (the collector listening, completion of a run).
const TIMEOUT: Duration = Duration::from_secs(300);
/// How often the processes are checked while waiting for completion.
const CHECK_EVERY: Duration = Duration::from_millis(500);

fn main() {
    support::run_bench(run_all);
}

/// The RPC protocols measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Avro,
    /// Thrift, compact protocol (Flume's default).
    Thrift,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Avro => "avro",
            Protocol::Thrift => "thrift",
        }
    }

    /// Extra lines for a source or sink `prefix` (e.g. `a1.sinks.k1`).
    fn extra(self, prefix: &str) -> String {
        match self {
            Protocol::Avro => String::new(),
            Protocol::Thrift => format!("{prefix}.protocol = compact\n"),
        }
    }
}

/// One workload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// The loopback TCP reference.
    Tcp,
    /// Agent → collector over `protocol` with sink batches of `batch` events.
    Rpc(Protocol, u64),
}

impl Workload {
    const ALL: [Workload; 5] = [
        Workload::Tcp,
        Workload::Rpc(Protocol::Avro, 100),
        Workload::Rpc(Protocol::Avro, 1000),
        Workload::Rpc(Protocol::Thrift, 100),
        Workload::Rpc(Protocol::Thrift, 1000),
    ];

    fn key(self) -> String {
        match self {
            Workload::Tcp => "tcp".to_owned(),
            Workload::Rpc(p, b) => format!("{}-{b}", p.name()),
        }
    }

    fn label(self) -> String {
        match self {
            Workload::Tcp => "loopback TCP (1 connection, 1 MiB writes)".to_owned(),
            Workload::Rpc(Protocol::Avro, b) => format!("agent->collector avro, batch {b}"),
            Workload::Rpc(Protocol::Thrift, b) => {
                format!("agent->collector thrift compact, batch {b}")
            }
        }
    }
}

/// What the run was asked to do.
struct Settings {
    lines: u64,
    runs: usize,
    only: Option<Vec<String>>,
}

impl Settings {
    fn from_env() -> Result<Self> {
        let lines = env_number("FLUMEN_BENCH_LINES")?.unwrap_or(DEFAULT_LINES);
        let runs = env_number("FLUMEN_BENCH_RUNS")?.map_or(DEFAULT_RUNS, |r| r as usize);
        ensure!(lines > 0, "FLUMEN_BENCH_LINES must be at least 1");
        ensure!(runs > 0, "FLUMEN_BENCH_RUNS must be at least 1");
        let keys: Vec<String> = Workload::ALL.iter().map(|w| w.key()).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let only = only_from_env(&keys)?;
        Ok(Self {
            lines: lines.div_ceil(SOURCE_BATCH) * SOURCE_BATCH,
            runs,
            only,
        })
    }
}

/// The measurements of one run.
struct Sample {
    elapsed: Duration,
    /// Events (RPC) delivered, or 200-byte units moved (TCP), in `elapsed`.
    events: u64,
    /// Bytes of payload moved.
    bytes: u64,
    /// CPU seconds of the agent and the collector (RPC runs only).
    cpu: Option<(f64, f64)>,
    /// What the checks after the run found worth telling.
    note: Option<String>,
}

impl Sample {
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn mib_s(&self) -> f64 {
        mib(self.bytes) / self.elapsed.as_secs_f64()
    }
}

/// Medians of one workload's runs.
struct Summary {
    workload: Workload,
    rate: f64,
    mib_s: f64,
    cpu: Option<(f64, f64)>,
    runs: Vec<Sample>,
}

fn run_all() -> Result<()> {
    let settings = Settings::from_env()?;
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_flumen"));
    ensure!(bin.exists(), "agent binary {} is missing", bin.display());
    let ticks = clock_ticks();
    println!(
        "rpc bench: {} events of {EVENT_LEN} bytes per run, {} runs per workload, TCP reference \
         {:.0} MiB per run, CLK_TCK {ticks}, agent {}",
        settings.lines,
        settings.runs,
        mib(tcp_bytes(settings.lines)),
        bin.display()
    );
    println!("load average at the start: {}", load_average());
    let mut summaries = Vec::new();
    for workload in Workload::ALL {
        if !wants(settings.only.as_deref(), &workload.key()) {
            continue;
        }
        let mut runs = Vec::with_capacity(settings.runs);
        for i in 0..settings.runs {
            let sample = match workload {
                Workload::Tcp => tcp_reference(tcp_bytes(settings.lines)),
                Workload::Rpc(p, b) => rpc_run(&bin, p, b, settings.lines, ticks),
            }
            .with_context(|| format!("{} run {}", workload.label(), i + 1))?;
            runs.push(sample);
        }
        let cpu = (workload != Workload::Tcp).then(|| {
            (
                median_f64(runs.iter().filter_map(|s| s.cpu).map(|c| c.0)),
                median_f64(runs.iter().filter_map(|s| s.cpu).map(|c| c.1)),
            )
        });
        let summary = Summary {
            workload,
            rate: median_f64(runs.iter().map(Sample::rate)),
            mib_s: median_f64(runs.iter().map(Sample::mib_s)),
            cpu,
            runs,
        };
        print_detail(&summary, settings.lines);
        summaries.push(summary);
    }
    print_table(&summaries, settings.lines);
    println!("load average at the end: {}", load_average());
    Ok(())
}

fn tcp_bytes(lines: u64) -> u64 {
    (lines * EVENT_LEN).max(TCP_MIN_BYTES)
}

fn print_detail(s: &Summary, lines: u64) {
    let mut line = format!("{}: median {:.0} MiB/s", s.workload.label(), s.mib_s);
    if s.workload != Workload::Tcp {
        let _ = write!(line, ", {} events/s", fmt_rate(s.rate));
    }
    if let Some((agent, collector)) = s.cpu {
        let _ = write!(
            line,
            ", CPU agent {agent:.2} s ({:.0} ns/event), collector {collector:.2} s ({:.0} ns/event)",
            agent * 1e9 / lines as f64,
            collector * 1e9 / lines as f64
        );
    }
    println!("{line}");
    for (i, r) in s.runs.iter().enumerate() {
        let mut line = format!(
            "  run {}: {:.3} s, {:.0} MiB/s",
            i + 1,
            r.elapsed.as_secs_f64(),
            r.mib_s()
        );
        if s.workload != Workload::Tcp {
            let _ = write!(line, ", {} events/s", fmt_rate(r.rate()));
        }
        if let Some((agent, collector)) = r.cpu {
            let _ = write!(line, ", CPU agent {agent:.2} s, collector {collector:.2} s");
        }
        println!("{line}");
        if let Some(note) = &r.note {
            println!("         {note}");
        }
    }
}

fn print_table(summaries: &[Summary], lines: u64) {
    let tcp = summaries
        .iter()
        .find(|s| s.workload == Workload::Tcp)
        .map(|s| s.mib_s);
    println!();
    println!(
        "{:<44} {:>14} {:>8} {:>7} {:>16} {:>16}   runs (events/s)",
        "workload", "median ev/s", "MiB/s", "% TCP", "agent ns/event", "coll. ns/event"
    );
    for s in summaries {
        let pct = match (s.workload, tcp) {
            (Workload::Rpc(..), Some(t)) => format!("{:.1}%", s.mib_s * 100.0 / t),
            _ => "-".to_owned(),
        };
        let (rate, agent, collector) = match s.cpu {
            Some((a, c)) => (
                fmt_rate(s.rate),
                format!("{:.0}", a * 1e9 / lines as f64),
                format!("{:.0}", c * 1e9 / lines as f64),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        let runs: Vec<String> = s
            .runs
            .iter()
            .map(|r| match s.workload {
                Workload::Tcp => format!("{:.0} MiB/s", r.mib_s()),
                Workload::Rpc(..) => fmt_rate(r.rate()),
            })
            .collect();
        println!(
            "{:<44} {:>14} {:>8.0} {:>7} {:>16} {:>16}   {}",
            s.workload.label(),
            rate,
            s.mib_s,
            pct,
            agent,
            collector,
            runs.join(" ")
        );
    }
    if let Some(avro) = summaries
        .iter()
        .find(|s| s.workload == Workload::Rpc(Protocol::Avro, 1000))
    {
        println!(
            "target >= 1,000,000 events/s over one Avro connection at batch 1,000: {} ({} events/s)",
            if avro.rate >= 1e6 { "met" } else { "NOT met" },
            fmt_rate(avro.rate)
        );
    }
}

/// Events/s in M above 100,000/s, else in k.
fn fmt_rate(rate: f64) -> String {
    if rate >= 100_000.0 {
        format!("{:.3} M", rate / 1e6)
    } else {
        format!("{:.2} k", rate / 1e3)
    }
}

// ---------------------------------------------------------------------------------------------
// Workloads

/// One agent → collector run over `protocol` with sink batches of `batch`.
fn rpc_run(bin: &Path, protocol: Protocol, batch: u64, lines: u64, ticks: u64) -> Result<Sample> {
    let name = protocol.name();
    let port = free_port()?;
    let collector_dir = tempdir()?;
    let collector_conf = format!(
        "a1.sources = r1\n\
         a1.sources.r1.type = {name}\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         {}{}",
        protocol.extra("a1.sources.r1"),
        null_sink(lines, CAPACITY)
    );
    let mut collector = spawn_flumen(bin, collector_dir.path(), &collector_conf)?;
    wait_listening(&mut collector, port)?;

    let agent_dir = tempdir()?;
    let agent_conf = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = stress\n\
         a1.sources.r1.size = {EVENT_LEN}\n\
         a1.sources.r1.batchSize = {SOURCE_BATCH}\n\
         a1.sources.r1.maxSuccessfulEvents = {lines}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = {CAPACITY}\n\
         a1.channels.c1.transactionCapacity = {SOURCE_BATCH}\n\
         a1.sinks.k1.type = {name}\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.hostname = 127.0.0.1\n\
         a1.sinks.k1.port = {port}\n\
         a1.sinks.k1.batch-size = {batch}\n\
         {}",
        protocol.extra("a1.sinks.k1")
    );
    let mut agent = spawn_flumen(bin, agent_dir.path(), &agent_conf)?;
    let start = agent.spawned;
    loop {
        match wait_null_sink(&mut collector, lines, CHECK_EVERY) {
            Ok(()) => break,
            Err(e) => {
                collector.check_alive()?;
                agent.check_alive()?;
                if start.elapsed() >= TIMEOUT {
                    return Err(e.context(format!(
                        "no completion within {TIMEOUT:?}; last agent stderr lines:\n{}",
                        agent.stderr_tail()
                    )));
                }
            }
        }
    }
    let elapsed = start.elapsed();
    let cpu = (
        cpu_ticks(agent.pid)? as f64 / ticks as f64,
        cpu_ticks(collector.pid)? as f64 / ticks as f64,
    );
    agent.stop();
    collector.stop();
    let note = warnings(&[&agent, &collector]);
    Ok(Sample {
        elapsed,
        events: lines,
        bytes: lines * EVENT_LEN,
        cpu: Some(cpu),
        note,
    })
}

/// Polls a TCP connect to `port` until it succeeds (the source listens).
fn wait_listening(proc: &mut Proc, port: u16) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        proc.check_alive()?;
        if Instant::now() >= deadline {
            bail!(
                "{} never listened on 127.0.0.1:{port}; last stderr lines:\n{}",
                proc.name,
                proc.stderr_tail()
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The WARN and ERROR lines the processes logged, if any.
fn warnings(procs: &[&Proc]) -> Option<String> {
    let lines: Vec<String> = procs
        .iter()
        .flat_map(|p| {
            p.stderr_tail()
                .lines()
                .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                .map(|l| format!("{}: {}", p.name, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    (!lines.is_empty()).then(|| {
        format!(
            "WARNING: logged problems (the count may include redelivered events):\n           {}",
            lines.join("\n           ")
        )
    })
}

/// The loopback reference: `bytes` through one connection, 1 MiB writes, a reader discarding.
fn tcp_reference(bytes: u64) -> Result<Sample> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr().context("reading a bound address")?;
    let reader = thread::Builder::new()
        .name("tcp reader".into())
        .spawn(move || -> Result<(u64, Instant)> {
            let (mut s, _) = listener.accept().context("accepting")?;
            s.set_read_timeout(Some(TIMEOUT))
                .context("setting a read timeout")?;
            let mut buf = vec![0u8; TCP_BUF];
            let mut total = 0u64;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return Ok((total, Instant::now())),
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(anyhow!("reading: {e}")),
                }
            }
        })
        .context("starting the reader thread")?;
    let buf = vec![b'x'; TCP_BUF];
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).context("connecting")?;
    s.set_write_timeout(Some(TIMEOUT))
        .context("setting a write timeout")?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(TCP_BUF as u64) as usize;
        s.write_all(&buf[..n]).context("writing")?;
        left -= n as u64;
    }
    s.shutdown(std::net::Shutdown::Write)
        .context("shutting down the write side")?;
    let (got, end) = reader
        .join()
        .map_err(|_| anyhow!("the reader thread panicked"))??;
    ensure!(got == bytes, "the reader got {got} bytes of {bytes}");
    Ok(Sample {
        elapsed: end - start,
        events: bytes / EVENT_LEN,
        bytes,
        cpu: None,
        note: None,
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

/// utime + stime of `pid` (all threads), in clock ticks.
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
