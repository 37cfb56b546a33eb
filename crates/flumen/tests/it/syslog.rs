//! The syslog sources end to end, with real senders: util-linux `logger` over TCP (newline and
//! octet-counted framing) and UDP in both RFC 3164 and RFC 5424, rsyslog forwarding with
//! `omfwd` (octet-counted TCP), `openssl s_client` over TLS, plus malformed input, the
//! multiport source's `portHeader`, `keepFields`, `clientIPHeader`, and the cost of thousands
//! of idle connections. Events land in a `file_roll` sink with `HEADER_AND_TEXT`, and the test
//! reads the headers back from there.
//!
//! A program that is not installed skips its test with `SKIPPED: ...` when `CI` is unset, and
//! fails it when `CI` is set (`.ci/run` installs bsdutils, rsyslog and openssl).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::util::*;

/// The program's path, or `None` after printing `SKIPPED` (outside CI); panics in CI.
fn require(program: &str, package: &str) -> Option<PathBuf> {
    match find_program(program) {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => {
            panic!("`{program}` (Debian package {package}) is required in CI")
        }
        None => {
            eprintln!("SKIPPED: `{program}` (Debian package {package}) is not installed");
            None
        }
    }
}

/// One `HEADER_AND_TEXT` line split into its headers and its body.
fn parse_line(line: &str) -> (BTreeMap<String, String>, String) {
    let rest = line
        .strip_prefix('{')
        .unwrap_or_else(|| panic!("not a header line: {line}"));
    let (headers, body) = rest
        .split_once("} ")
        .or_else(|| rest.strip_suffix('}').map(|h| (h, "")))
        .unwrap_or_else(|| panic!("not a header line: {line}"));
    let map = headers
        .split(", ")
        .filter(|kv| !kv.is_empty())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (map, body.to_owned())
}

/// Waits for `n` events in the agent's `out` directory and returns them parsed.
fn wait_events(agent: &Agent, n: usize) -> Vec<(BTreeMap<String, String>, String)> {
    wait_lines(&agent.path("out"), n)
        .iter()
        .map(|l| parse_line(l))
        .collect()
}

/// The event whose body contains `needle`.
fn find<'a>(
    events: &'a [(BTreeMap<String, String>, String)],
    needle: &str,
) -> &'a (BTreeMap<String, String>, String) {
    events
        .iter()
        .find(|(_, b)| b.contains(needle))
        .unwrap_or_else(|| panic!("no event with {needle:?} in {events:#?}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Memory channel + `file_roll` (`HEADER_AND_TEXT`) into `{dir}/out`, for source `r1`.
const SINK: &str = r#"
a1.channels = c1
a1.sinks = k1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1
a1.sinks.k1.sink.serializer = HEADER_AND_TEXT
"#;

/// An agent with the given source lines (`a1.sources = ...` included) and [`SINK`].
fn agent(sources: &str) -> Agent {
    let agent = Agent::start(&format!("{sources}{SINK}"));
    agent.expect_log("listening");
    agent
}

/// Runs `logger` with `args` and the message; asserts it succeeded.
fn logger(bin: &Path, args: &[&str], port: u16, message: &str) {
    let out = Command::new(bin)
        .args(args)
        .args([
            "-n",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-t",
            "app",
            message,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "logger {args:?}: {out:?}");
}

#[test]
fn logger_over_tcp_and_udp_in_both_formats() {
    let Some(logger_bin) = require("logger", "bsdutils") else {
        return;
    };
    let (tcp, udp) = (free_port(), free_port());
    let a = agent(
        &r#"
a1.sources = t u
a1.sources.t.type = syslogtcp
a1.sources.t.host = 127.0.0.1
a1.sources.t.port = {tcp}
a1.sources.t.clientIPHeader = clientip
a1.sources.t.channels = c1
a1.sources.u.type = syslogudp
a1.sources.u.host = 127.0.0.1
a1.sources.u.port = {udp}
a1.sources.u.clientIPHeader = clientip
a1.sources.u.channels = c1
"#
        .replace("{tcp}", &tcp.to_string())
        .replace("{udp}", &udp.to_string()),
    );
    a.expect_log("Syslog UDP source listening.");
    let before = now_ms();
    /// logger arguments, port, priority, message, Facility, Severity.
    type Case<'a> = (&'a [&'a str], u16, &'a str, &'a str, u32, u32);
    let cases: [Case; 5] = [
        (
            &["--tcp", "--rfc3164"],
            tcp,
            "local3.warning",
            "tcp-3164",
            19,
            4,
        ),
        (&["--tcp", "--rfc5424"], tcp, "user.err", "tcp-5424", 1, 3),
        (
            &["--tcp", "--octet-count", "--rfc5424"],
            tcp,
            "daemon.info",
            "tcp-octet-5424",
            3,
            6,
        ),
        (
            &["--udp", "--rfc3164"],
            udp,
            "local7.debug",
            "udp-3164",
            23,
            7,
        ),
        (&["--udp", "--rfc5424"], udp, "auth.crit", "udp-5424", 4, 2),
    ];
    for (args, port, prio, msg, _, _) in &cases {
        let mut all = args.to_vec();
        all.extend(["-p", prio]);
        logger(&logger_bin, &all, *port, &format!("hello {msg} end"));
    }
    let events = wait_events(&a, cases.len());
    let after = now_ms();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let short = host.split('.').next().unwrap_or_default().to_owned();
    for (_, _, _, msg, facility, severity) in &cases {
        let (h, body) = find(&events, &format!("hello {msg} end"));
        assert_eq!(h["Facility"], facility.to_string(), "{msg}: {h:?}");
        assert_eq!(h["Severity"], severity.to_string(), "{msg}: {h:?}");
        assert!(h["host"] == host || h["host"] == short, "{msg}: {h:?}");
        assert_eq!(h["clientip"], "127.0.0.1", "{msg}: {h:?}");
        assert!(!h.contains_key("flume.syslog.status"), "{msg}: {h:?}");
        // RFC 3164 has whole seconds and no year: allow a second of slack either way.
        let ts: i64 = h["timestamp"].parse().unwrap();
        assert!(
            (before - 1000..=after + 1000).contains(&ts),
            "{msg}: timestamp {ts} outside [{before}, {after}]"
        );
        // keepFields = none: the body starts at the tag.
        assert!(body.starts_with("app"), "{msg}: {body:?}");
    }
}

#[test]
fn rsyslog_forwards_octet_counted_over_tcp() {
    let Some(rsyslogd) = require("rsyslogd", "rsyslog") else {
        return;
    };
    const N: usize = 500;
    let port = free_port();
    let a = agent(
        &r#"
a1.sources = r1
a1.sources.r1.type = syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
"#
        .replace("{port}", &port.to_string()),
    );
    let dir = tempfile::tempdir().unwrap();
    let rs_port = free_port();
    let conf = dir.path().join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{dir}\")\n\
             module(load=\"imtcp\")\n\
             ruleset(name=\"fwd\") {{\n\
               action(type=\"omfwd\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" \
                      target=\"127.0.0.1\" port=\"{port}\")\n\
             }}\n\
             input(type=\"imtcp\" port=\"{rs_port}\" address=\"127.0.0.1\" ruleset=\"fwd\")\n",
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let _rsyslog = Reaped(
        Command::new(rsyslogd)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut s = connect(rs_port);
    let mut data = String::new();
    for i in 0..N {
        data.push_str(&format!("<134>Nov 21 14:00:00 relayed app[7]: rs-{i:04}\n"));
    }
    s.write_all(data.as_bytes()).unwrap();
    drop(s);
    let events = wait_events(&a, N);
    assert_eq!(events.len(), N);
    let mut seen: Vec<String> = events
        .iter()
        .map(|(h, body)| {
            assert_eq!(h["Facility"], "16", "{h:?} {body}");
            assert_eq!(h["Severity"], "6", "{h:?} {body}");
            assert_eq!(h["host"], "relayed", "{h:?} {body}");
            assert!(!h.contains_key("flume.syslog.status"), "{h:?} {body}");
            body.rsplit(' ').next().unwrap().to_owned()
        })
        .collect();
    seen.sort();
    let want: Vec<String> = (0..N).map(|i| format!("rs-{i:04}")).collect();
    assert_eq!(seen, want);
}

/// Kills (by its own id) and reaps the child on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn multiport_port_header_and_keep_fields() {
    let (p1, p2) = (free_port(), free_port());
    let a = agent(
        &r#"
a1.sources = r1
a1.sources.r1.type = multiport_syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.ports = {p1} {p2}
a1.sources.r1.portHeader = port
a1.sources.r1.keepFields = timestamp hostname
a1.sources.r1.charset.port.{p2} = ISO-8859-1
a1.sources.r1.channels = c1
"#
        .replace("{p1}", &p1.to_string())
        .replace("{p2}", &p2.to_string()),
    );
    for port in [p1, p2] {
        let mut s = connect(port);
        s.write_all(format!("<13>Nov 21 14:00:00 web1 app: via {port}\n").as_bytes())
            .unwrap();
    }
    let events = wait_events(&a, 2);
    for port in [p1, p2] {
        let (h, body) = find(&events, &format!("via {port}"));
        assert_eq!(h["port"], port.to_string(), "{h:?}");
        assert_eq!(h["host"], "web1", "{h:?}");
        // Flume's multiport parser: `Priority` with a capital P.
        assert_eq!(h.get("Priority").map(String::as_str), Some("13"), "{h:?}");
        assert_eq!(body, &format!("Nov 21 14:00:00 web1 app: via {port}"));
    }
}

#[test]
fn malformed_input_is_delivered_flagged_on_a_kept_connection() {
    let port = free_port();
    let a = agent(
        &r#"
a1.sources = r1
a1.sources.r1.type = syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.eventSize = 100
a1.sources.r1.channels = c1
"#
        .replace("{port}", &port.to_string()),
    );
    let mut s = connect(port);
    s.write_all(b"garbage without priority\n").unwrap();
    let long = format!("<13>Nov 21 14:00:00 h app: long {}\n", "x".repeat(5000));
    s.write_all(long.as_bytes()).unwrap();
    s.write_all(b"<13>Nov 21 14:00:00 h app: still here\n")
        .unwrap();
    let events = wait_events(&a, 3);
    let (h, body) = find(&events, "garbage");
    assert_eq!(h["flume.syslog.status"], "Invalid", "{h:?}");
    assert_eq!(body, "garbage without priority");
    let (h, body) = find(&events, "long");
    assert_eq!(h["flume.syslog.status"], "Incomplete", "{h:?}");
    assert!(body.len() < 100, "{body}");
    let (h, _) = find(&events, "still here");
    assert!(!h.contains_key("flume.syslog.status"), "{h:?}");
    // The connection is still open and served.
    s.write_all(b"<13>Nov 21 14:00:00 h app: after\n").unwrap();
    let events = wait_events(&a, 4);
    find(&events, "after");
}

#[test]
fn tls_with_openssl_s_client() {
    let Some(openssl) = require("openssl", "openssl") else {
        return;
    };
    let certs = tempfile::tempdir().unwrap();
    let Some((keystore, ca)) = crate::rpc_avro::test_certs(certs.path()) else {
        assert!(std::env::var_os("CI").is_none(), "openssl failed in CI");
        return;
    };
    let port = free_port();
    let a = agent(
        &r#"
a1.sources = r1
a1.sources.r1.type = syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ssl = true
a1.sources.r1.keystore = {keystore}
a1.sources.r1.channels = c1
"#
        .replace("{port}", &port.to_string())
        .replace("{keystore}", &keystore),
    );
    let mut client = Command::new(openssl)
        .args(["s_client", "-quiet", "-no_ign_eof", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-CAfile",
            &ca,
            "-servername",
            "flumen.test",
            "-verify_return_error",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin
        .write_all(
            b"<13>Nov 21 14:00:00 h app: over tls 1\n<13>Nov 21 14:00:00 h app: over tls 2\n",
        )
        .unwrap();
    let events = wait_events(&a, 2);
    find(&events, "over tls 1");
    find(&events, "over tls 2");
    drop(stdin);
    let mut err = String::new();
    client
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = client.wait().unwrap();
    assert!(status.success(), "s_client: {status:?} {err}");
    // A plain-text client on the TLS port is refused and delivers nothing.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.set_read_timeout(Some(DEADLINE)).unwrap();
    let _ = plain.write_all(b"<13>Nov 21 14:00:00 h app: plain\n");
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert_eq!(lines_in(&a.path("out")).len(), 2);
}

/// `VmRSS` of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The soft limit on open files, raised to the hard limit when it is below `want`.
fn ensure_open_files(want: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    let soft = lim.current.unwrap_or(u64::MAX);
    if soft >= want {
        return soft;
    }
    let raised = Rlimit {
        current: lim.maximum,
        maximum: lim.maximum,
    };
    if setrlimit(Resource::Nofile, raised).is_ok() {
        lim.maximum.unwrap_or(u64::MAX)
    } else {
        soft
    }
}

#[test]
fn two_thousand_idle_connections_cost_little() {
    const CONNS: usize = 2000;
    if ensure_open_files(2 * CONNS as u64 + 200) < 2 * CONNS as u64 + 200 {
        eprintln!("SKIPPED: the open-files limit is below {}", 2 * CONNS + 200);
        return;
    }
    let port = free_port();
    let a = agent(
        &r#"
a1.sources = r1
a1.sources.r1.type = syslogtcp
a1.sources.r1.host = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
"#
        .replace("{port}", &port.to_string()),
    );
    let pid = a.child.id();
    // Warm up: one message through the whole pipeline, so the baseline has every lazy
    // allocation already made.
    let mut first = connect(port);
    first
        .write_all(b"<13>Nov 21 14:00:00 h app: warm-up\n")
        .unwrap();
    wait_events(&a, 1);
    let before = rss_kib(pid);
    let mut conns = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        conns.push(TcpStream::connect(("127.0.0.1", port)).unwrap());
    }
    // Every connection is accepted and served: the last one delivers.
    let last = conns.last_mut().unwrap();
    last.write_all(b"<13>Nov 21 14:00:00 h app: from the last connection\n")
        .unwrap();
    find(&wait_events(&a, 2), "from the last connection");
    let idle = rss_kib(pid);
    // Half of them send part of a message: the framer's current message is all they hold.
    for c in conns.iter_mut().step_by(2) {
        c.write_all(b"<13>Nov 21 14:00:00 h app: partial").unwrap();
    }
    let last = conns.last_mut().unwrap();
    last.write_all(b"<13>Nov 21 14:00:00 h app: still served\n")
        .unwrap();
    find(&wait_events(&a, 3), "still served");
    let partial = rss_kib(pid);
    let per_conn = |kib: u64| kib.saturating_sub(before) * 1024 / CONNS as u64;
    eprintln!(
        "RSS {before} KiB, {idle} KiB with {CONNS} idle connections ({} bytes each), {partial} KiB \
         with half of them holding a partial message ({} bytes each)",
        per_conn(idle),
        per_conn(partial)
    );
    for kib in [idle, partial] {
        assert!(
            per_conn(kib) < 64 * 1024,
            "{} bytes per idle connection (RSS {before} -> {kib} KiB)",
            per_conn(kib)
        );
    }
    drop(conns);
    // A client that never sends a newline: 64 MiB of one line cost no more than a message.
    let mut endless = connect(port);
    let chunk = vec![b'x'; 1 << 20];
    endless
        .write_all(b"<13>Nov 21 14:00:00 h app: endless ")
        .unwrap();
    for _ in 0..64 {
        endless.write_all(&chunk).unwrap();
    }
    endless
        .write_all(b"\n<13>Nov 21 14:00:00 h app: after the endless line\n")
        .unwrap();
    // (The closed connections above delivered their partial messages at end of stream.)
    let mut events = Vec::new();
    let found = wait_for(|| {
        events = lines_in(&a.path("out"))
            .iter()
            .map(|l| parse_line(l))
            .collect();
        events
            .iter()
            .any(|(_, b)| b.contains("after the endless line"))
    });
    assert!(found, "the message after the endless line never arrived");
    let (h, body) = find(&events, "endless");
    assert_eq!(h["flume.syslog.status"], "Incomplete", "{h:?}");
    assert!(body.len() <= 2500, "{}", body.len());
    find(&events, "after the endless line");
    let endless_rss = rss_kib(pid);
    eprintln!("RSS {endless_rss} KiB after a 64 MiB line");
    assert!(
        endless_rss < partial + 16 * 1024,
        "a 64 MiB line grew RSS from {partial} to {endless_rss} KiB"
    );
}
