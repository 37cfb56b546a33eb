//! HTTP source throughput (issue 7): the real `flumen` agent with an `http` source (Flume's
//! JSONHandler) → `memory` channel → `null` sink, loaded by `wrk` with keep-alive connections
//! each POSTing a JSON array of 100 events per request. Prints every run and the median.
//!
//! Run: `cargo bench -p flumen --bench http`
//!
//! Environment:
//! - `FLUMEN_BENCH_HTTP_SECONDS`: length of each wrk run, default 10;
//! - `FLUMEN_BENCH_RUNS`: runs, default 5 (a fresh agent per run);
//! - `FLUMEN_BENCH_HTTP_CONNECTIONS`: concurrent keep-alive connections, default 64 (wrk
//!   uses 2 threads).
//!
//! The workload: every request is the same 100-event JSON array (each event one header
//! `{"host": "bench-host"}` and a 100-byte ASCII body), `Content-Type: application/json`.
//! The agent: `memory` channel (`capacity = 100000`, `transactionCapacity = 1000`), `null`
//! sink (`batchSize = 1000`). events/s = 100 × (wrk's requests − non-2xx answers) / wrk's
//! duration; a run with any non-2xx answer (a full channel) or socket error is flagged. The
//! agent's CPU (utime + stime) and peak RSS over the run are printed beside it. wrk shares the
//! machine with the agent, so on a 2-core machine the figure is a floor.
//!
//! wrk is the Debian package `wrk`; without it the bench fails with that message.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use support::{
    MemoryPoller, Proc, env_number, free_port, kib_to_mib, load_average, median_f64, spawn_flumen,
    tempdir,
};

/// Events per request.
const BATCH: u64 = 100;
/// Body bytes per event.
const BODY_LEN: usize = 100;

fn main() {
    support::run_bench(run_all);
}

struct Run {
    events_per_s: f64,
    requests: u64,
    cpu_s: f64,
    peak_mib: f64,
    note: Option<String>,
}

fn run_all() -> Result<()> {
    let seconds = env_number("FLUMEN_BENCH_HTTP_SECONDS")?
        .unwrap_or(10)
        .max(1);
    let runs = env_number("FLUMEN_BENCH_RUNS")?.unwrap_or(5).max(1);
    let connections = env_number("FLUMEN_BENCH_HTTP_CONNECTIONS")?
        .unwrap_or(64)
        .max(2);
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_flumen"));
    ensure!(bin.exists(), "agent binary {} is missing", bin.display());
    ensure!(
        Command::new("wrk").arg("--version").output().is_ok(),
        "wrk is not installed (Debian package `wrk`)"
    );
    println!(
        "http bench: {runs} runs of {seconds} s, wrk -t 2 -c {connections}, {BATCH} events of \
         {BODY_LEN} bytes per request, agent {}",
        bin.display()
    );
    println!("load average at the start: {}", load_average());
    let dir = tempdir()?;
    let script = write_script(dir.path())?;
    let mut results = Vec::new();
    for i in 0..runs {
        let r =
            run(&bin, &script, seconds, connections).with_context(|| format!("run {}", i + 1))?;
        println!(
            "  run {}: {:.0} events/s ({} requests), agent CPU {:.2} s ({:.0} ns/event), peak RSS {:.1} MiB{}",
            i + 1,
            r.events_per_s,
            r.requests,
            r.cpu_s,
            r.cpu_s * 1e9 / (r.requests * BATCH).max(1) as f64,
            r.peak_mib,
            r.note
                .as_deref()
                .map(|n| format!("  [{n}]"))
                .unwrap_or_default()
        );
        results.push(r);
    }
    println!(
        "http source, batch {BATCH} per request, {connections} connections: median {:.0} events/s, \
         agent peak RSS median {:.1} MiB",
        median_f64(results.iter().map(|r| r.events_per_s)),
        median_f64(results.iter().map(|r| r.peak_mib))
    );
    println!("load average at the end: {}", load_average());
    Ok(())
}

/// The wrk script: one fixed request; `done` prints requests, non-2xx answers, socket errors
/// and the duration in µs.
fn write_script(dir: &Path) -> Result<PathBuf> {
    let body: String = "x".repeat(BODY_LEN);
    let events: Vec<String> = (0..BATCH)
        .map(|_| format!(r#"{{"headers":{{"host":"bench-host"}},"body":"{body}"}}"#))
        .collect();
    let script = format!(
        r#"wrk.method = "POST"
wrk.body = '[{}]'
wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d non2xx=%d errors=%d duration_us=%d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout, summary.duration))
end
"#,
        events.join(",")
    );
    let path = dir.join("post.lua");
    std::fs::write(&path, script).context("writing the wrk script")?;
    Ok(path)
}

fn run(bin: &Path, script: &Path, seconds: u64, connections: u64) -> Result<Run> {
    let port = free_port()?;
    let dir = tempdir()?;
    let config = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 100000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = null\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.batchSize = 1000\n"
    );
    let mut agent = spawn_flumen(bin, dir.path(), &config)?;
    wait_listening(&mut agent, port)?;
    let memory = MemoryPoller::start(agent.pid);
    let cpu_before = cpu_seconds(agent.pid)?;
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", &connections.to_string()])
        .args(["-d", &format!("{seconds}s"), "--timeout", "10s", "-s"])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .context("running wrk")?;
    let cpu_s = cpu_seconds(agent.pid)? - cpu_before;
    let peak_kib = memory.stop()?;
    agent.check_alive()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "wrk failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(line) = stdout.lines().find(|l| l.starts_with("RESULT")) else {
        bail!("wrk printed no RESULT line: {stdout}");
    };
    let field = |k: &str| -> Result<u64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {k} in {line:?}"))
    };
    let (requests, non2xx, errors, us) = (
        field("requests")?,
        field("non2xx")?,
        field("errors")?,
        field("duration_us")?,
    );
    agent.stop();
    let ok = requests.saturating_sub(non2xx);
    let note = (non2xx > 0 || errors > 0)
        .then(|| format!("{non2xx} non-2xx answers, {errors} socket errors"));
    Ok(Run {
        events_per_s: (ok * BATCH) as f64 / (us.max(1) as f64 / 1e6),
        requests,
        cpu_s,
        peak_mib: kib_to_mib(peak_kib),
        note,
    })
}

/// Polls a TCP connect to `port` until it succeeds (the source listens).
fn wait_listening(proc: &mut Proc, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        proc.check_alive()?;
        if Instant::now() >= deadline {
            bail!(
                "the agent never listened on 127.0.0.1:{port}; last stderr lines:\n{}",
                proc.stderr_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// utime + stime of `pid` (all threads) in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
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
    let ticks = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u64>()
                .ok()
        })
        .filter(|&t| t > 0)
        .unwrap_or(100);
    Ok((field(14)? + field(15)?) as f64 / ticks as f64)
}
