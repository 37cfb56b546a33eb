//! The log-file sources end to end (issue 4, "Proof"), with real producers:
//!
//! - a real nginx serving on 127.0.0.1 under load, its access log rotated by real `logrotate`
//!   (`create` + `USR1`, then `copytruncate`), followed by TAILDIR: every request line that
//!   nginx wrote to any of the files arrives exactly once;
//! - SIGKILL/restart of the agent while TAILDIR follows a file written at 20,000 lines/s: no
//!   line lost, duplicates bounded by the batches in flight;
//! - `exec` running `tail -F` across a rename + create rotation and a kill of `tail`;
//! - a position file in Flume's exact JSON form is honoured, and ours has the same shape.
//!
//! The nginx and logrotate tests skip (with a message) when those programs are not installed;
//! CI installs them (`.ci/run`). Every wait has a deadline; all traffic stays on 127.0.0.1.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// xorshift64*: a fixed-seed PRNG so that a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Creates `dir` (and parents) with mode 0755: logrotate refuses group- or world-writable
/// directories whatever the umask.
fn mkdir(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The agent's last log lines and, if given, another file's, for failure messages.
fn context(agent: &Agent, other: Option<&Path>) -> String {
    let mut s = format!("agent log (tail):\n{}", tail_lines(&agent.log(), 40));
    if let Some(p) = other {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        s.push_str(&format!(
            "\n{} (tail):\n{}",
            p.display(),
            tail_lines(&text, 20)
        ));
    }
    s
}

/// The programs a test needs, or `None` (with a message saying why the test is skipped).
fn programs(test: &str, names: &[&str]) -> Option<Vec<PathBuf>> {
    let mut found = Vec::new();
    for name in names {
        match find_program(name) {
            Some(p) => found.push(p),
            None => {
                eprintln!(
                    "SKIPPED {test}: `{name}` is not installed (CI installs it; locally: \
                     apt-get install {name})"
                );
                return None;
            }
        }
    }
    Some(found)
}

// ---------------------------------------------------------------------------------------------
// nginx + logrotate
// ---------------------------------------------------------------------------------------------

/// A real nginx (master + one worker) serving `return 200` on 127.0.0.1:`port`, logging
/// `$request_uri $status` to `<dir>/logs/access.log`. Stopped (SIGTERM, then SIGKILL) on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Nginx {
    fn start(bin: &Path, dir: &Path) -> Nginx {
        let port = free_port();
        for sub in ["logs", "tmp"] {
            mkdir(&dir.join(sub));
        }
        // `user` only means something (and is only accepted quietly) for a root master; as
        // root, the worker must stay root to write into the test's private directory.
        let user = if running_as_root() { "user root;" } else { "" };
        let d = dir.display();
        let conf = format!(
            "{user}
worker_processes 1;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    log_format flumen '$request_uri $status';
    access_log {d}/logs/access.log flumen;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 \"ok\\n\"; }}
    }}
}}
"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let stderr = std::fs::File::create(dir.join("nginx.stderr")).unwrap();
        let child = Command::new(bin)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-p")
            .arg(format!("{d}/"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut nginx = Nginx {
            child,
            dir: dir.to_path_buf(),
            port,
        };
        let ready = wait_for(|| {
            nginx.child.try_wait().unwrap().is_none()
                && http_get(port, "/ready").is_ok_and(|s| s == 200)
                && dir.join("nginx.pid").exists()
        });
        assert!(
            ready,
            "nginx did not start on 127.0.0.1:{port}; stderr: {}; error.log:\n{}",
            std::fs::read_to_string(dir.join("nginx.stderr")).unwrap_or_default(),
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        nginx
    }

    fn error_log(&self) -> PathBuf {
        self.dir.join("error.log")
    }

    /// Fast shutdown (SIGTERM: the master stops its worker), SIGKILL if that hangs.
    fn stop(&mut self) {
        if self.child.try_wait().unwrap().is_some() {
            return;
        }
        signal(self.child.id(), "TERM");
        let stopped = wait_for_within(Duration::from_secs(10), || {
            self.child.try_wait().unwrap().is_some()
        });
        if !stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One HTTP/1.0 GET on a new connection; the response's status code.
fn http_get(port: u16, path: &str) -> std::io::Result<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(32)]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response {head:?}")))
}

/// What the load generator did.
struct LoadResult {
    /// Request numbers answered with 200.
    answered: Vec<u64>,
    /// Requests that failed or got another status.
    failed: u64,
    elapsed: Duration,
}

/// `threads` clients, each sending up to `per_thread` GETs of `/req/<unique number>`, one every
/// `spacing`, for at most `limit`.
fn start_load(
    port: u16,
    threads: usize,
    per_thread: u64,
    spacing: Duration,
    limit: Duration,
) -> std::thread::JoinHandle<LoadResult> {
    std::thread::spawn(move || {
        let next = Arc::new(AtomicU64::new(1));
        let start = Instant::now();
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let next = next.clone();
                std::thread::spawn(move || {
                    let (mut answered, mut failed) = (Vec::new(), 0u64);
                    for i in 0..per_thread {
                        if start.elapsed() >= limit {
                            break;
                        }
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        match http_get(port, &format!("/req/{n}")) {
                            Ok(200) => answered.push(n),
                            _ => failed += 1,
                        }
                        // Pacing, not waiting for a condition: a steady request rate.
                        let due = start + spacing * (i as u32 + 1);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    (answered, failed)
                })
            })
            .collect();
        let mut result = LoadResult {
            answered: Vec::new(),
            failed: 0,
            elapsed: Duration::ZERO,
        };
        for w in workers {
            let (a, f) = w.join().unwrap();
            result.answered.extend(a);
            result.failed += f;
        }
        result.elapsed = start.elapsed();
        result
    })
}

/// The request number of an access-log line `/req/<n> <status>`; `None` for other requests
/// (the readiness probe). Panics on a line of any other shape (a torn or mangled line).
fn request_number(line: &str, whence: &str) -> Option<u64> {
    let (uri, status) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("malformed line {line:?} in {whence}"));
    assert!(
        status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()),
        "malformed line {line:?} in {whence}"
    );
    let n = uri.strip_prefix("/req/")?;
    Some(
        n.parse()
            .unwrap_or_else(|_| panic!("malformed line {line:?} in {whence}")),
    )
}

/// How many times each request number occurs in `lines`.
fn count_requests(lines: &[String], whence: &str) -> HashMap<u64, usize> {
    let mut counts = HashMap::new();
    for line in lines {
        if let Some(n) = request_number(line, whence) {
            *counts.entry(n).or_insert(0) += 1;
        }
    }
    counts
}

/// Every line of every `access.log*` file in `logs`.
fn access_log_lines(logs: &Path) -> Vec<String> {
    files_with_prefix(logs, "access.log")
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// TAILDIR on the access log → memory → file_roll.
const NGINX_PIPELINE: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = TAILDIR
a1.sources.r1.channels = c1
a1.sources.r1.filegroups = f1
a1.sources.r1.filegroups.f1 = {dir}/logs/access.log
a1.sources.r1.positionFile = {dir}/taildir_position.json
a1.sources.r1.batchSize = 100
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
a1.sinks.k1.sink.rollInterval = 0
"#;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rotation {
    /// `create` + `postrotate kill -USR1`: rename, new file, nginx reopens.
    Create,
    /// `copytruncate`: copy, then truncate the live file in place.
    CopyTruncate,
}

const ROTATIONS: usize = 5;

/// nginx under load, its log rotated `ROTATIONS` times by logrotate, followed by TAILDIR.
fn nginx_rotation(test: &str, mode: Rotation) {
    let Some(progs) = programs(test, &["nginx", "logrotate"]) else {
        return;
    };
    let (nginx_bin, logrotate_bin) = (&progs[0], &progs[1]);
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_path_buf();
    mkdir(&d);
    let mut nginx = Nginx::start(nginx_bin, &d);
    let logs = d.join("logs");

    let conf = d.join("flume.conf");
    std::fs::write(&conf, render(NGINX_PIPELINE, &d)).unwrap();
    let mut agent = Agent::start_in(tmp, conf);
    agent.expect_log("Taildir source started.");

    let how = match mode {
        Rotation::Create => format!(
            "    create\n    sharedscripts\n    postrotate\n        kill -USR1 $(cat {}/nginx.pid)\n    endscript\n",
            d.display()
        ),
        Rotation::CopyTruncate => "    copytruncate\n".to_owned(),
    };
    let rotate_conf = d.join("logrotate.conf");
    std::fs::write(
        &rotate_conf,
        format!(
            "{}/access.log {{\n    rotate 10\n    nocompress\n    missingok\n{how}}}\n",
            logs.display()
        ),
    )
    .unwrap();
    let state = d.join("logrotate.state");

    // ~6,000 requests over ~5 s from 3 clients, rotating every 0.8 s meanwhile.
    let load = start_load(
        nginx.port,
        3,
        2000,
        Duration::from_micros(2500),
        Duration::from_secs(8),
    );
    for _ in 0..ROTATIONS {
        std::thread::sleep(Duration::from_millis(800));
        let out = Command::new(logrotate_bin)
            .arg("-f")
            .arg("-s")
            .arg(&state)
            .arg(&rotate_conf)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "logrotate failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let load = load.join().unwrap();
    let rotated = files_with_prefix(&logs, "access.log.").len();
    assert_eq!(
        rotated,
        ROTATIONS,
        "logrotate should have made {ROTATIONS} rotated files; {}",
        context(&agent, Some(&nginx.error_log()))
    );

    // Every line in any access.log* file, and what the sink received.
    let in_files = count_requests(&access_log_lines(&logs), "the access logs");
    let twice: Vec<_> = in_files.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "nginx logged requests twice?! {twice:?}");
    let out = agent.path("out");
    let mut sink = HashMap::new();
    let complete = wait_for_within(Duration::from_secs(60), || {
        sink = count_requests(&lines_in(&out), "the sink output");
        in_files.keys().all(|n| sink.contains_key(n))
    });
    let missing: Vec<u64> = in_files
        .keys()
        .filter(|n| !sink.contains_key(n))
        .copied()
        .collect();
    assert!(
        complete,
        "{} of {} logged requests never arrived (e.g. {:?}); {}",
        missing.len(),
        in_files.len(),
        &missing[..missing.len().min(10)],
        context(&agent, Some(&nginx.error_log()))
    );
    let drained = started.elapsed();
    // Settle: duplicates, if any, would come now (rotated files are let go after 5 s idle).
    std::thread::sleep(Duration::from_secs(1));
    nginx.stop();
    assert!(agent.terminate().success(), "{}", context(&agent, None));
    let sink = count_requests(&lines_in(&out), "the sink output");
    let from_copies = agent
        .log()
        .matches("reading the rest from its copy")
        .count();

    let dups: Vec<(u64, usize)> = sink
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(n, c)| (*n, *c))
        .collect();
    let answered: HashSet<u64> = load.answered.iter().copied().collect();
    let not_answered: Vec<u64> = sink
        .keys()
        .filter(|n| !answered.contains(n))
        .copied()
        .collect();
    let not_in_files: Vec<u64> = answered
        .iter()
        .filter(|n| !in_files.contains_key(n))
        .copied()
        .collect();
    let lost_entirely = not_in_files
        .iter()
        .filter(|n| !sink.contains_key(n))
        .count();
    eprintln!(
        "{test}: {} requests answered 200 ({} failed) in {:.1} s, {ROTATIONS} rotations, {} lines \
         in {} files, {} distinct lines delivered, {} duplicated; answered but in no file: {} \
         (of which also not delivered: {lost_entirely}); truncations resumed from the copy: \
         {from_copies}; all delivered {:.1} s after start",
        answered.len(),
        load.failed,
        load.elapsed.as_secs_f64(),
        in_files.len(),
        rotated + 1,
        sink.len(),
        dups.len(),
        not_in_files.len(),
        drained.as_secs_f64(),
    );
    assert!(
        load.answered.len() >= 1000,
        "the load generator got only {} answers ({} failures)",
        load.answered.len(),
        load.failed
    );
    assert!(
        dups.is_empty(),
        "{} request lines arrived more than once, e.g. {:?}",
        dups.len(),
        &dups[..dups.len().min(10)]
    );
    assert!(
        not_answered.is_empty(),
        "delivered lines of requests that were never answered: {:?}",
        &not_answered[..not_answered.len().min(10)]
    );
    if mode == Rotation::Create {
        assert!(
            not_in_files.is_empty(),
            "{} answered requests are in no log file (e.g. {:?})",
            not_in_files.len(),
            &not_in_files[..not_in_files.len().min(10)]
        );
    }
}

#[test]
fn nginx_access_log_rotated_with_create_arrives_exactly_once() {
    nginx_rotation(
        "nginx_access_log_rotated_with_create_arrives_exactly_once",
        Rotation::Create,
    );
}

#[test]
fn nginx_access_log_rotated_with_copytruncate_arrives_exactly_once() {
    nginx_rotation(
        "nginx_access_log_rotated_with_copytruncate_arrives_exactly_once",
        Rotation::CopyTruncate,
    );
}

// ---------------------------------------------------------------------------------------------
// SIGKILL while tailing
// ---------------------------------------------------------------------------------------------

/// TAILDIR → file channel → file_roll. The UUID interceptor tells the two kinds of duplicates
/// apart: a line TAILDIR read twice has two ids; an event the sink wrote twice has one.
const KILL_PIPELINE: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = TAILDIR
a1.sources.r1.channels = c1
a1.sources.r1.filegroups = f1
a1.sources.r1.filegroups.f1 = {dir}/logs/app\.log
a1.sources.r1.positionFile = {dir}/taildir_position.json
a1.sources.r1.batchSize = 100
a1.sources.r1.interceptors = i1
a1.sources.r1.interceptors.i1.type = org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {dir}/checkpoint
a1.channels.c1.dataDirs = {dir}/data
a1.channels.c1.minimumRequiredSpace = 1048576
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 100
a1.sinks.k1.sink.serializer = HEADER_AND_TEXT
"#;

const SOURCE_BATCH: u64 = 100;
const SINK_BATCH: u64 = 100;
const KILLS: u64 = 8;

/// A sink line `{id=<uuid>} L<n> ...`: (id, n); `None` when torn.
fn parse_kill_line(line: &str) -> Option<(String, u64)> {
    let rest = line.strip_prefix("{id=")?;
    let (id, body) = rest.split_once("} ")?;
    let n = body.strip_prefix('L')?.get(..9)?.parse().ok()?;
    (id.len() == 36 && body.len() == 80).then(|| (id.to_owned(), n))
}

#[test]
fn sigkill_while_tailing_under_load_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_path_buf();
    let logs = d.join("logs");
    mkdir(&logs);
    let log = logs.join("app.log");
    std::fs::write(&log, "").unwrap();
    let conf = d.join("flume.conf");
    std::fs::write(&conf, render(KILL_PIPELINE, &d)).unwrap();
    let mut agent = Agent::start_in(tmp, conf);
    agent.expect_log("Taildir source started.");

    // The writer: 200 lines of 80 bytes every 10 ms (20,000 lines/s), one write each.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, log) = (stop.clone(), log.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            let start = Instant::now();
            let pad = "x".repeat(69);
            let mut n = 0u64;
            let mut tick = 0u32;
            let mut buf = String::new();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(60) {
                buf.clear();
                for _ in 0..200 {
                    buf.push_str(&format!("L{n:09} {pad}\n"));
                    n += 1;
                }
                f.write_all(buf.as_bytes()).unwrap();
                tick += 1;
                let due = start + Duration::from_millis(10) * tick;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            n
        })
    };

    let mut rng = Rng(0x5EED_F1E1_D00D_0004);
    let started = Instant::now();
    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(rng.range(300, 1500)));
        agent.kill9();
        agent.restart();
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    let load_secs = started.elapsed().as_secs_f64();

    let out = agent.path("out");
    let mut seen: HashSet<u64> = HashSet::new();
    let complete = wait_for_within(Duration::from_secs(90), || {
        seen = lines_in(&out)
            .iter()
            .filter_map(|l| parse_kill_line(l))
            .map(|(_, n)| n)
            .collect();
        seen.len() as u64 >= written
    });
    let drained = started.elapsed().as_secs_f64();
    let missing: Vec<u64> = (0..written).filter(|n| !seen.contains(n)).collect();
    assert!(
        complete && missing.is_empty(),
        "{} of {written} lines never arrived (e.g. {:?}); {}",
        missing.len(),
        &missing[..missing.len().min(10)],
        context(&agent, None)
    );
    // Settle: late duplicates would come now.
    std::thread::sleep(Duration::from_secs(1));
    assert!(agent.terminate().success(), "{}", context(&agent, None));

    // Per line: its ids and how often each id was written.
    let mut by_line: BTreeMap<u64, HashMap<String, u64>> = BTreeMap::new();
    let mut torn = 0;
    for f in files_with_prefix(&out, "") {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            match parse_kill_line(line) {
                Some((id, n)) => *by_line.entry(n).or_default().entry(id).or_insert(0) += 1,
                // A batch write cut short by SIGKILL can only tear the last line of a file.
                None if i + 1 == lines.len() => torn += 1,
                None => panic!("malformed line {line:?} in {}", f.display()),
            }
        }
    }
    let source_dups: u64 = by_line.values().map(|ids| ids.len() as u64 - 1).sum();
    let sink_dups: u64 = by_line
        .values()
        .flat_map(|ids| ids.values())
        .map(|c| c - 1)
        .sum();
    assert!(by_line.keys().all(|n| *n < written), "lines never written");
    eprintln!(
        "sigkill_while_tailing_under_load_loses_nothing: {written} lines written in {load_secs:.1} s \
         with {KILLS} SIGKILLs, all delivered after {drained:.1} s; duplicates: {source_dups} \
         re-read by TAILDIR (bound {KILLS} x batchSize {SOURCE_BATCH} = {}), {sink_dups} \
         re-written by the sink (bound {KILLS} x {SINK_BATCH}); torn last lines: {torn}",
        KILLS * SOURCE_BATCH,
    );
    assert!(
        source_dups <= KILLS * SOURCE_BATCH,
        "TAILDIR re-read {source_dups} lines after {KILLS} SIGKILLs (bound: {})",
        KILLS * SOURCE_BATCH
    );
    assert!(
        sink_dups <= KILLS * SINK_BATCH,
        "the sink wrote {sink_dups} events twice after {KILLS} SIGKILLs"
    );
}

// ---------------------------------------------------------------------------------------------
// exec + tail -F
// ---------------------------------------------------------------------------------------------

const EXEC_PIPELINE: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = exec
a1.sources.r1.channels = c1
a1.sources.r1.shell = /bin/sh -c
a1.sources.r1.command = tail -F {dir}/logs/app.log
a1.sources.r1.restart = true
a1.sources.r1.restartThrottle = 300
a1.sources.r1.logStdErr = true
a1.sources.r1.batchSize = 20
a1.sources.r1.batchTimeout = 100
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
a1.sinks.k1.sink.rollInterval = 0
"#;

/// Appends `lines` to `path` (a few lines per write, as a logger would).
fn append_lines(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    for chunk in lines.chunks(7) {
        let mut buf = String::new();
        for l in chunk {
            buf.push_str(l);
            buf.push('\n');
        }
        f.write_all(buf.as_bytes()).unwrap();
    }
}

/// The first occurrences of the lines starting with `prefix`, in arrival order.
fn first_seen(lines: &[String], prefix: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    lines
        .iter()
        .filter(|l| l.starts_with(prefix) && seen.insert(l.as_str()))
        .cloned()
        .collect()
}

#[test]
fn exec_tail_follows_rotation() {
    let Some(_) = programs("exec_tail_follows_rotation", &["tail"]) else {
        return;
    };
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_path_buf();
    let logs = d.join("logs");
    mkdir(&logs);
    let log = logs.join("app.log");
    std::fs::write(&log, "").unwrap();
    let conf = d.join("flume.conf");
    std::fs::write(&conf, render(EXEC_PIPELINE, &d)).unwrap();
    let agent = Agent::start_in(tmp, conf);
    let out = agent.path("out");
    let log_arg = log.display().to_string();

    // `tail -F` starts at the end of the file: write markers until one comes through, so
    // that everything written afterwards is surely followed.
    let mut k = 0;
    let following = wait_for(|| {
        append_lines(&log, &[format!("warmup{k}")]);
        k += 1;
        lines_in(&out).iter().any(|l| l.starts_with("warmup"))
    });
    assert!(
        following,
        "tail -F never followed; {}",
        context(&agent, None)
    );

    // Before rotation, then rename + create, then after.
    let a = numbered("a", 500);
    append_lines(&log, &a);
    assert!(
        wait_for(|| lines_in(&out).iter().filter(|l| l.starts_with('a')).count() >= a.len()),
        "lines before rotation missing; {}",
        context(&agent, None)
    );
    std::fs::rename(&log, logs.join("app.log.1")).unwrap();
    let b = numbered("b", 500);
    append_lines(&log, &b);
    assert!(
        wait_for(|| first_seen(&lines_in(&out), "b").len() >= b.len()),
        "lines after rename + create missing; {}",
        context(&agent, None)
    );

    // The command dies: it is restarted, and the new `tail -F` prints the last 10 lines again
    // (tail's documented start), then follows.
    let pids = pids_of("tail", &log_arg);
    assert_eq!(pids.len(), 1, "expected one tail process, found {pids:?}");
    signal(pids[0], "KILL");
    assert!(
        wait_for(|| lines_in(&out).iter().filter(|l| *l == "b499").count() >= 2),
        "the command was not restarted (no second b499); {}",
        context(&agent, None)
    );
    let c = numbered("c", 300);
    append_lines(&log, &c);
    assert!(
        wait_for(|| first_seen(&lines_in(&out), "c").len() >= c.len()),
        "lines after the restart missing; {}",
        context(&agent, None)
    );

    let lines = lines_in(&out);
    assert_eq!(first_seen(&lines, "a"), a, "a-lines out of order");
    assert_eq!(first_seen(&lines, "b"), b, "b-lines out of order");
    assert_eq!(first_seen(&lines, "c"), c, "c-lines out of order");
    let count = |l: &str| lines.iter().filter(|x| *x == l).count();
    assert!(a.iter().all(|l| count(l) == 1), "a-lines duplicated");
    assert!(c.iter().all(|l| count(l) == 1), "c-lines duplicated");
    for (i, l) in b.iter().enumerate() {
        let expected = if i >= b.len() - 10 { 2 } else { 1 };
        assert_eq!(count(l), expected, "{l} arrived {} times", count(l));
    }
    agent.expect_log("Command started.");
    eprintln!(
        "exec_tail_follows_rotation: {} lines across a rename + create and a restart of tail in \
         {:.1} s",
        a.len() + b.len() + c.len(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// Position file compatibility
// ---------------------------------------------------------------------------------------------

const POSITION_PIPELINE: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = TAILDIR
a1.sources.r1.channels = c1
a1.sources.r1.filegroups = f1
a1.sources.r1.filegroups.f1 = {dir}/data/app\.log
a1.sources.r1.positionFile = {dir}/state/taildir_position.json
a1.sources.r1.skipToEnd = false
a1.channels.c1.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
a1.sinks.k1.sink.rollInterval = 0
"#;

#[test]
fn flume_position_file_is_read_and_ours_is_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_path_buf();
    mkdir(&d.join("data"));
    mkdir(&d.join("state"));
    let log = d.join("data/app.log");
    let lines: Vec<String> = (0..100).map(|i| format!("p{i:03}")).collect();
    append_lines(&log, &lines);
    let inode = std::fs::metadata(&log).unwrap().ino();
    // Mid-file: the start of line 40 (each line is 5 bytes).
    let pos = 40 * 5;
    // Exactly what Flume 1.11 writes: `new Gson().toJson(posInfos)` of
    // `ImmutableMap.of("inode", inode, "pos", pos, "file", path)`.
    let pos_file = d.join("state/taildir_position.json");
    std::fs::write(
        &pos_file,
        format!(
            r#"[{{"inode":{inode},"pos":{pos},"file":"{}"}}]"#,
            log.display()
        ),
    )
    .unwrap();

    let conf = d.join("flume.conf");
    std::fs::write(&conf, render(POSITION_PIPELINE, &d)).unwrap();
    let mut agent = Agent::start_in(tmp, conf);
    let out = agent.path("out");
    let got = wait_lines(&out, 60);
    assert_eq!(got, lines[40..].to_vec(), "{}", context(&agent, None));

    let more: Vec<String> = (100..110).map(|i| format!("p{i:03}")).collect();
    append_lines(&log, &more);
    wait_lines(&out, 70);
    assert!(agent.terminate().success(), "{}", context(&agent, None));
    let got = lines_in(&out);
    assert_eq!(
        got.len(),
        70,
        "lines before the recorded position were read"
    );
    assert!(
        !agent.log().contains("damaged"),
        "{}",
        context(&agent, None)
    );

    // Ours, in the shape Flume's `loadPositionFile` reads (a JSON array of objects with a
    // number `inode`, a number `pos` and a string `file`; Gson's compact form).
    let text = std::fs::read_to_string(&pos_file).unwrap();
    let re = regex::Regex::new(r#"^\[\{"inode":(\d+),"pos":(\d+),"file":"((?:[^"\\]|\\.)*)"\}\]$"#)
        .unwrap();
    let caps = re
        .captures(text.trim_end())
        .unwrap_or_else(|| panic!("position file not in Flume's form: {text}"));
    assert_eq!(caps[1].parse::<u64>().unwrap(), inode, "{text}");
    assert_eq!(
        caps[2].parse::<u64>().unwrap(),
        std::fs::metadata(&log).unwrap().len(),
        "{text}"
    );
    assert_eq!(&caps[3], log.display().to_string(), "{text}");
}
