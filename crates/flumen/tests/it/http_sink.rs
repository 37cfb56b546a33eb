//! The `http` sink against a real HTTP server nobody here wrote: Python's `http.server`, driven
//! by a small handler script that records every POST (body, headers, client port) to a file and
//! answers the status the body asks for: a body `S503x2:...` is answered 503 twice, then 200;
//! `S400:...` always 400; anything else 200.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::util::*;

const PYTHON: &str = "/usr/bin/python3";

const SERVER: &str = r#"
import http.server, json, os, ssl, sys, threading
log_path, port_file, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
certfile = sys.argv[4] if len(sys.argv) > 4 else None
seen, lock = {}, threading.Lock()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        status, head = 200, body.split(":", 1)[0]
        if head.startswith("S"):
            code, _, times = head[1:].partition("x")
            with lock:
                k = seen.get(body, 0)
                seen[body] = k + 1
            if not times or k < int(times):
                status = int(code)
        record = {"body": body, "status": status, "peer": self.client_address[1],
                  "ct": self.headers.get("Content-Type"), "accept": self.headers.get("Accept")}
        with lock, open(log_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
if certfile:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
"#;

/// The recording HTTP server; killed on drop.
struct Server {
    child: Child,
    log: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server on `port` (0: any), with TLS from `keystore` (PEM chain + key).
    /// `None` when Python is missing outside CI.
    fn start(port: u16, keystore: Option<&str>) -> Option<Server> {
        if !Path::new(PYTHON).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{PYTHON} is required for the http sink tests in CI"
            );
            eprintln!("SKIPPED: {PYTHON} not installed; http sink not tested");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("server.py");
        std::fs::write(&script, SERVER).unwrap();
        let (log, port_file) = (dir.path().join("posts.jsonl"), dir.path().join("port"));
        let mut cmd = Command::new(PYTHON);
        cmd.arg(&script)
            .arg(&log)
            .arg(&port_file)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(k) = keystore {
            cmd.arg(k);
        }
        let child = cmd.spawn().unwrap();
        let mut server = Server {
            child,
            log,
            port: 0,
            _dir: dir,
        };
        assert!(
            wait_for(|| port_file.exists()),
            "the Python HTTP server did not start"
        );
        server.port = std::fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Some(server)
    }

    /// Every POST recorded so far.
    fn posts(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Bodies answered with a status in `200..300`, in arrival order.
    fn accepted(&self) -> Vec<String> {
        self.posts()
            .iter()
            .filter(|p| (200..300).contains(&p["status"].as_u64().unwrap()))
            .map(|p| p["body"].as_str().unwrap().to_owned())
            .collect()
    }

    /// How often `body` was posted.
    fn count(&self, body: &str) -> usize {
        self.posts().iter().filter(|p| p["body"] == body).count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// netcat (acked) → memory → http sink, with the metrics server on `mport`.
fn agent(endpoint: &str, port: u16, mport: u16, sink_extra: &str) -> Agent {
    let conf = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = http\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.endpoint = {endpoint}\n\
         {sink_extra}"
    );
    Agent::start_with(
        &conf,
        &[
            "-Dflume.monitoring.type=http",
            &format!("-Dflume.monitoring.port={mport}"),
        ],
    )
}

/// The `SINK.k1` counters from `/metrics`, `Null` while the server is not up.
fn sink_metrics(mport: u16) -> Value {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", mport)) else {
        return Value::Null;
    };
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    if s.read_to_string(&mut raw).is_err() {
        return Value::Null;
    }
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str::<Value>(body).map_or(Value::Null, |d| d["SINK.k1"].clone())
}

fn counter(m: &Value, name: &str) -> Option<u64> {
    m[name].as_str().and_then(|v| v.parse().ok())
}

/// Waits until the sink's counters satisfy `ok` and returns them.
fn wait_metrics(mport: u16, ok: impl Fn(&Value) -> bool) -> Value {
    let mut m = Value::Null;
    let done = wait_for(|| {
        m = sink_metrics(mport);
        ok(&m)
    });
    assert!(done, "sink counters never matched: {m}");
    m
}

fn send(port: u16, lines: &[&str]) {
    let lines: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let mut s = connect(port);
    let replies = send_acked(&mut s, &lines);
    assert!(replies.iter().all(|r| r == "OK"), "{replies:?}");
}

#[test]
fn every_event_is_one_post_with_the_headers_on_one_kept_alive_connection() {
    let Some(server) = Server::start(0, None) else {
        return;
    };
    let (port, mport) = (free_port(), free_port());
    let _agent = agent(
        &format!("http://127.0.0.1:{}/ingest", server.port),
        port,
        mport,
        "a1.sinks.k1.contentTypeHeader = application/json\n\
         a1.sinks.k1.acceptHeader = application/x-flumen-test\n",
    );
    let bodies: Vec<String> = (0..30).map(|i| format!("{{\"n\":{i}}}")).collect();
    // Several connections and batches; an empty line is an empty event: consumed, never posted.
    for chunk in bodies.chunks(7) {
        let mut lines: Vec<&str> = chunk.iter().map(String::as_str).collect();
        lines.push("");
        send(port, &lines);
    }
    assert!(
        wait_for(|| server.posts().len() >= bodies.len()),
        "posts: {:?}",
        server.posts()
    );
    let m = wait_metrics(mport, |m| {
        counter(m, "EventDrainSuccessCount") == Some(30)
            && counter(m, "EventDrainAttemptCount") == Some(30)
    });
    let posts = server.posts();
    assert_eq!(server.accepted(), bodies, "one POST per event, in order");
    for p in &posts {
        assert_eq!(p["ct"], "application/json", "{p}");
        assert_eq!(p["accept"], "application/x-flumen-test", "{p}");
    }
    let peers: std::collections::BTreeSet<u64> =
        posts.iter().map(|p| p["peer"].as_u64().unwrap()).collect();
    assert_eq!(
        peers.len(),
        1,
        "requests should share one kept-alive connection: {:?}",
        posts
            .iter()
            .map(|p| format!("{}:{}", p["peer"], p["body"]))
            .collect::<Vec<_>>()
    );
    assert_eq!(counter(&m, "ConnectionCreatedCount"), Some(1), "{m}");
    assert_eq!(counter(&m, "ConnectionFailedCount"), Some(0), "{m}");
}

#[test]
fn status_503_rolls_the_batch_back_and_nothing_is_lost() {
    let Some(server) = Server::start(0, None) else {
        return;
    };
    let (port, mport) = (free_port(), free_port());
    let agent = agent(
        &format!("http://127.0.0.1:{}/", server.port),
        port,
        mport,
        "",
    );
    let lines = ["a1", "a2", "S503x2:b", "c1", "c2"];
    send(port, &lines);
    assert!(
        wait_for(|| {
            let got: std::collections::BTreeSet<String> = server.accepted().into_iter().collect();
            lines.iter().all(|l| got.contains(*l))
        }),
        "posts: {:?}",
        server.posts()
    );
    // 503 twice, then accepted: the body went out three times; events after it were never
    // consumed before it was.
    assert_eq!(server.count("S503x2:b"), 3, "{:?}", server.posts());
    let accepted = server.accepted();
    let pos = |b: &str| accepted.iter().position(|a| a == b).unwrap();
    assert!(pos("S503x2:b") < pos("c1") && pos("c1") < pos("c2"));
    agent.expect_log("Sink failed");
}

#[test]
fn status_400_with_overrides_is_consumed_and_not_retried() {
    let Some(server) = Server::start(0, None) else {
        return;
    };
    let (port, mport) = (free_port(), free_port());
    let _agent = agent(
        &format!("http://127.0.0.1:{}/", server.port),
        port,
        mport,
        "a1.sinks.k1.rollback.4XX = false\na1.sinks.k1.backoff.4XX = false\n",
    );
    send(port, &["S400:bad", "good1"]);
    send(port, &["good2"]);
    let m = wait_metrics(mport, |m| {
        counter(m, "EventDrainAttemptCount") == Some(3)
            && counter(m, "EventDrainSuccessCount") == Some(2)
    });
    assert!(
        wait_for(|| server.posts().len() >= 3),
        "{:?}",
        server.posts()
    );
    assert_eq!(server.accepted(), ["good1", "good2"]);
    assert_eq!(server.count("S400:bad"), 1);
    // 4XX does not count as drained (defaultIncrementMetrics = false); 2XX does.
    assert_eq!(counter(&m, "EventDrainSuccessCount"), Some(2), "{m}");
}

#[test]
fn increment_metrics_follows_the_most_specific_override() {
    let Some(server) = Server::start(0, None) else {
        return;
    };
    let (port, mport) = (free_port(), free_port());
    let _agent = agent(
        &format!("http://127.0.0.1:{}/", server.port),
        port,
        mport,
        "a1.sinks.k1.rollback.4XX = false\n\
         a1.sinks.k1.backoff.4XX = false\n\
         a1.sinks.k1.incrementMetrics.404 = true\n\
         a1.sinks.k1.incrementMetrics.2XX = false\n\
         a1.sinks.k1.incrementMetrics.201 = true\n",
    );
    send(port, &["S404:x", "S418:t", "S201:y", "a", "", "b"]);
    let m = wait_metrics(mport, |m| {
        counter(m, "EventDrainAttemptCount") == Some(5)
            && counter(m, "EventDrainSuccessCount") == Some(2)
    });
    assert_eq!(server.posts().len(), 5, "{:?}", server.posts());
    // The counts stay put (no late correction).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let again = sink_metrics(mport);
    assert_eq!(
        counter(&again, "EventDrainSuccessCount"),
        Some(2),
        "{m} {again}"
    );
    assert_eq!(counter(&again, "EventDrainAttemptCount"), Some(5));
}

#[test]
fn server_down_rolls_back_until_it_comes_up() {
    let (port, mport, hport) = (free_port(), free_port(), free_port());
    if !Path::new(PYTHON).exists() {
        let _ = Server::start(0, None);
        return;
    }
    let _agent = agent(
        &format!("http://127.0.0.1:{hport}/"),
        port,
        mport,
        "a1.sinks.k1.connectTimeout = 1000\n",
    );
    send(port, &["d1", "d2", "d3"]);
    wait_metrics(mport, |m| {
        counter(m, "ConnectionFailedCount").is_some_and(|n| n >= 2)
    });
    let server = Server::start(hport, None).unwrap();
    assert!(
        wait_for(|| server.accepted().len() >= 3),
        "posts: {:?}",
        server.posts()
    );
    assert_eq!(server.accepted(), ["d1", "d2", "d3"]);
    wait_metrics(mport, |m| {
        counter(m, "EventDrainSuccessCount") == Some(3)
            && counter(m, "ConnectionCreatedCount") == Some(1)
    });
}

/// A CA and a server certificate for 127.0.0.1 (`keystore.pem` = chain + key) in `dir`.
fn certs_for_loopback(dir: &Path) -> Option<(String, String)> {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let split = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .ok()?;
    let steps = [
        format!("req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=http-test-CA"),
        format!("req {ec} -keyout leaf.key -out leaf.csr -subj /CN=localhost"),
        "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem \
         -days 2 -extfile leaf.ext"
            .to_owned(),
    ];
    for s in &steps {
        let args = split(s);
        if !run(&args.iter().map(String::as_str).collect::<Vec<_>>()) {
            assert!(
                std::env::var_os("CI").is_none(),
                "the openssl CLI is required in CI"
            );
            eprintln!("SKIPPED: openssl CLI unavailable; https not tested");
            return None;
        }
    }
    let mut keystore = std::fs::read(dir.join("leaf.pem")).ok()?;
    keystore.extend(std::fs::read(dir.join("leaf.key")).ok()?);
    std::fs::write(dir.join("keystore.pem"), keystore).ok()?;
    let path = |f: &str| dir.join(f).display().to_string();
    Some((path("keystore.pem"), path("ca.pem")))
}

#[test]
fn https_with_a_pem_truststore_checks_the_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let Some((keystore, ca)) = certs_for_loopback(certs.path()) else {
        return;
    };
    let Some(server) = Server::start(0, Some(&keystore)) else {
        return;
    };
    let (port, mport) = (free_port(), free_port());
    let _agent = agent(
        &format!("https://127.0.0.1:{}/tls", server.port),
        port,
        mport,
        &format!("a1.sinks.k1.truststore = {ca}\n"),
    );
    send(port, &["secret1", "secret2"]);
    assert!(
        wait_for(|| server.accepted().len() >= 2),
        "{:?}",
        server.posts()
    );
    assert_eq!(server.accepted(), ["secret1", "secret2"]);
}

#[test]
fn https_rejects_a_certificate_for_another_host_unless_trust_all_certs() {
    let certs = tempfile::tempdir().unwrap();
    // Signed by the trusted CA, but for `flumen.test`, not 127.0.0.1.
    let Some((keystore, ca)) = crate::rpc_avro::test_certs(certs.path()) else {
        return;
    };
    let Some(server) = Server::start(0, Some(&keystore)) else {
        return;
    };
    let endpoint = format!("https://127.0.0.1:{}/", server.port);
    let (port, mport) = (free_port(), free_port());
    let agent1 = agent(
        &endpoint,
        port,
        mport,
        &format!("a1.sinks.k1.truststore = {ca}\n"),
    );
    send(port, &["refused"]);
    wait_metrics(mport, |m| {
        counter(m, "ConnectionFailedCount").is_some_and(|n| n >= 2)
    });
    assert!(server.posts().is_empty(), "{:?}", server.posts());
    drop(agent1);

    let (port, mport) = (free_port(), free_port());
    let _agent2 = agent(
        &endpoint,
        port,
        mport,
        "a1.sinks.k1.trust-all-certs = true\n",
    );
    send(port, &["trusted"]);
    assert!(
        wait_for(|| !server.accepted().is_empty()),
        "{:?}",
        server.posts()
    );
    assert_eq!(server.accepted(), ["trusted"]);
}
