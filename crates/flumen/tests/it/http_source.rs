//! The `http` source in the real binary, driven by real HTTP clients: curl (single events,
//! batches, non-ASCII headers, malformed input, gzip, ndjson, HTTPS with `--cacert`, 413) and
//! wrk at high concurrency against a channel that fills (only 200s and 503s, and exactly 100
//! events kept per 200).
//!
//! curl and wrk are Debian packages; without them a test prints "SKIPPED: ..." and passes,
//! except under CI (`CI` set), where it fails: CI installs them.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::rpc_avro::test_certs;
use crate::util::{Agent, find_program, free_port, lines_in, wait_for, wait_lines};

/// Whether `program` is installed; prints SKIPPED (or panics under CI) when it is not.
fn have(program: &str, test: &str) -> bool {
    if find_program(program).is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{program} is not installed but CI is set"
    );
    eprintln!("SKIPPED: {program} not installed; {test} did not run");
    false
}

/// Source r1 (http on `port` with `extra` keys) -> memory c1 -> file_roll k1 in `{dir}/out`
/// with headers.
fn config(port: u16, extra: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = http\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = {port}\n\
         a1.sources.r1.channels = c1\n\
         {extra}\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {{dir}}/out\n\
         a1.sinks.k1.sink.rollInterval = 0\n\
         a1.sinks.k1.sink.batchSize = 1\n\
         a1.sinks.k1.sink.serializer = header_and_text\n"
    )
}

fn start(port: u16, extra: &str) -> Agent {
    let agent = Agent::start(&config(port, extra));
    std::fs::create_dir_all(agent.path("out")).unwrap();
    agent.expect_log("HTTP source listening.");
    agent
}

/// Runs curl with `args`; returns (HTTP status, response body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (
        code.trim().parse().unwrap_or(0),
        format!("{body}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

fn post(port: u16, extra: &[&str], data: &str) -> (u16, String) {
    let url = format!("http://127.0.0.1:{port}/");
    let mut args = vec!["--data-binary", data];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args)
}

#[test]
fn curl_single_batch_headers_malformed_gzip_ndjson_and_413() {
    if !have(
        "curl",
        "curl_single_batch_headers_malformed_gzip_ndjson_and_413",
    ) {
        return;
    }
    let port = free_port();
    let agent = start(port, "a1.sources.r1.maxRequestSize = 4096\n");
    let out = agent.path("out");

    let (s, body) = post(port, &[], r#"[{"headers":{"a":"b"},"body":"single"}]"#);
    assert_eq!(s, 200, "{body}");
    assert_eq!(wait_lines(&out, 1), ["{a=b} single"]);

    let batch: Vec<String> = (0..50)
        .map(|i| format!(r#"{{"headers":{{"n":"{i}"}},"body":"batch {i}"}}"#))
        .collect();
    let (s, body) = post(
        port,
        &["-H", "Content-Type: application/json"],
        &format!("[{}]", batch.join(",")),
    );
    assert_eq!(s, 200, "{body}");
    let lines = wait_lines(&out, 51);
    assert_eq!(lines[1], "{n=0} batch 0");
    assert_eq!(lines[50], "{n=49} batch 49");

    // Non-ASCII header keys and values, and body, in UTF-8.
    let (s, body) = post(
        port,
        &["-H", "Content-Type: application/json; charset=UTF-8"],
        r#"[{"headers":{"städt":"Zürich ✓","日本":"語"},"body":"grüße 🌍"}]"#,
    );
    assert_eq!(s, 200, "{body}");
    let lines = wait_lines(&out, 52);
    assert!(
        lines[51] == "{städt=Zürich ✓, 日本=語} grüße 🌍"
            || lines[51] == "{日本=語, städt=Zürich ✓} grüße 🌍",
        "{}",
        lines[51]
    );

    // Malformed: 400 with what and where; nothing of the request kept.
    let (s, body) = post(
        port,
        &[],
        r#"[{"body":"ok"},{"body":"ok"},{"body":"ok"},{"body":{"nested":1}}]"#,
    );
    assert_eq!(s, 400, "{body}");
    assert!(
        body.starts_with("element 3: body is not a string (found an object)"),
        "{body}"
    );
    let (s, body) = post(port, &[], "[{\"body\": \"unterminated");
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("EOF while parsing"), "{body}");
    let (s, body) = post(
        port,
        &["-H", "Content-Type: application/json; charset=ISO-8859-1"],
        "[]",
    );
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("unsupported charset"), "{body}");

    // gzip request body.
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("events.json.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(br#"[{"body":"gz 1"},{"body":"gz 2"}]"#)
        .unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let at = format!("@{}", gz.display());
    let (s, body) = post(port, &["-H", "Content-Encoding: gzip"], &at);
    assert_eq!(s, 200, "{body}");
    // ndjson.
    let (s, body) = post(
        port,
        &["-H", "Content-Type: application/x-ndjson"],
        "{\"body\":\"nd 1\"}\n{\"headers\":{\"k\":\"v\"},\"body\":\"nd 2\"}\n",
    );
    assert_eq!(s, 200, "{body}");
    let lines = wait_lines(&out, 56);
    assert_eq!(lines[52..], ["{} gz 1", "{} gz 2", "{} nd 1", "{k=v} nd 2"]);

    // 413: over maxRequestSize (4096 bytes), plain and as a gzip bomb.
    let big = format!(r#"[{{"body":"{}"}}]"#, "x".repeat(5000));
    let (s, body) = post(port, &[], &big);
    assert_eq!(s, 413, "{body}");
    assert!(body.contains("maxRequestSize (4096 bytes)"), "{body}");
    let bomb = dir.path().join("bomb.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![b' '; 2_000_000]).unwrap();
    let packed = enc.finish().unwrap();
    assert!(packed.len() < 4096, "{}", packed.len());
    std::fs::write(&bomb, packed).unwrap();
    let at = format!("@{}", bomb.display());
    let (s, body) = post(port, &["-H", "Content-Encoding: gzip"], &at);
    assert_eq!(s, 413, "{body}");
    assert!(body.contains("decompressed"), "{body}");

    // Only POST.
    let (s, _) = curl(&[&format!("http://127.0.0.1:{port}/")]);
    assert_eq!(s, 405);

    // Nothing refused was kept.
    assert!(wait_for(|| lines_in(&out).len() >= 56));
    assert_eq!(lines_in(&out).len(), 56);
}

#[test]
fn curl_over_tls_with_cacert() {
    if !have("curl", "curl_over_tls_with_cacert") {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let Some((keystore, ca)) = test_certs(certs.path()) else {
        assert!(std::env::var_os("CI").is_none(), "openssl missing under CI");
        return;
    };
    let port = free_port();
    let agent = start(
        port,
        &format!("a1.sources.r1.ssl = true\na1.sources.r1.keystore = {keystore}\n"),
    );
    let url = format!("https://flumen.test:{port}/");
    let resolve = format!("flumen.test:{port}:127.0.0.1");
    let (s, body) = curl(&[
        "--cacert",
        &ca,
        "--resolve",
        &resolve,
        "--data-binary",
        r#"[{"headers":{"t":"tls"},"body":"secret"}]"#,
        &url,
    ]);
    assert_eq!(s, 200, "{body}");
    assert_eq!(wait_lines(&agent.path("out"), 1), ["{t=tls} secret"]);
    // Plain HTTP to the TLS port gets nowhere, and a client that does not trust the CA fails.
    let (s, _) = post(port, &[], "[]");
    assert_ne!(s, 200);
    let (s, _) = curl(&["--resolve", &resolve, "--data-binary", "[]", &url]);
    assert_eq!(s, 0, "an untrusted certificate must fail the handshake");
    assert_eq!(lines_in(&agent.path("out")).len(), 1);
}

/// The wrk script: POSTs a JSON array of 100 events per request, counts statuses per thread
/// (`response`), stops a thread after `per_thread` responses so no request is cut off in
/// flight, and prints the totals (`done`).
fn wrk_script(dir: &Path, per_thread: u32) -> std::path::PathBuf {
    let events: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"headers":{{"i":"{i}"}},"body":"load event {i}"}}"#))
        .collect();
    let script = format!(
        r#"wrk.method = "POST"
wrk.body = '[{}]'
wrk.headers["Content-Type"] = "application/json"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; busy = 0; other = 0 end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 503 then busy = busy + 1 else other = other + 1 end
  if ok + busy + other >= {per_thread} then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local o, b, x = 0, 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); b = b + t:get("busy"); x = x + t:get("other") end
  local e = summary.errors
  io.write(string.format("STATUS ok=%d busy=%d other=%d errors=%d\n", o, b, x, e.connect + e.read + e.write + e.timeout))
end
"#,
        events.join(",")
    );
    let path = dir.join("post.lua");
    std::fs::write(&path, script).unwrap();
    path
}

/// `key=<n>` from wrk's STATUS line.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

#[test]
fn wrk_while_the_channel_fills_gets_only_200_and_503_and_every_200_is_kept() {
    if !have(
        "wrk",
        "wrk_while_the_channel_fills_gets_only_200_and_503_and_every_200_is_kept",
    ) {
        return;
    }
    let port = free_port();
    let dead = free_port();
    // Phase 1: the sink sends to a port nobody listens on, so the channel (5,000 events = 50
    // requests) fills while 64 connections post; keep-alive 0 answers 503 at once when full.
    let template = |sink: &str| {
        format!(
            "a1.sources = r1\n\
             a1.channels = c1\n\
             a1.sinks = k1\n\
             a1.sources.r1.type = http\n\
             a1.sources.r1.bind = 127.0.0.1\n\
             a1.sources.r1.port = {port}\n\
             a1.sources.r1.channels = c1\n\
             a1.channels.c1.type = memory\n\
             a1.channels.c1.capacity = 5000\n\
             a1.channels.c1.transactionCapacity = 100\n\
             a1.channels.c1.keep-alive = 0\n\
             a1.sinks.k1.channel = c1\n\
             {sink}"
        )
    };
    let dead_sink = format!(
        "a1.sinks.k1.type = avro\na1.sinks.k1.hostname = 127.0.0.1\na1.sinks.k1.port = {dead}\n"
    );
    let mut agent = Agent::start(&template(&dead_sink));
    agent.expect_log("HTTP source listening.");
    let script = wrk_script(agent.dir.path(), 20);
    let out = Command::new("wrk")
        .args([
            "-t",
            "64",
            "-c",
            "64",
            "-d",
            "10s",
            "--timeout",
            "30s",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wrk failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("STATUS"))
        .unwrap_or_else(|| panic!("no STATUS line: {stdout}"));
    eprintln!("wrk done: {line}");
    let (ok, busy) = (field(line, "ok"), field(line, "busy"));
    assert_eq!(field(line, "other"), 0, "{stdout}");
    assert_eq!(field(line, "errors"), 0, "{stdout}");
    assert_eq!(ok + busy, 64 * 20, "{stdout}");
    assert!(ok >= 1 && busy >= 1, "the channel never filled: {stdout}");
    assert!(ok <= 50, "more accepted than the channel holds: {stdout}");

    // Phase 2: a sink that writes lines; the unchanged channel keeps its events over the
    // reload. Every event of every 200 arrives, nothing of a 503.
    std::fs::create_dir_all(agent.path("out")).unwrap();
    agent.rewrite_conf(&template(
        "a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.sink.directory = {dir}/out\n\
         a1.sinks.k1.sink.rollInterval = 0\n",
    ));
    let want = (ok * 100) as usize;
    wait_lines(&agent.path("out"), want);
    // Stop with a drain: whatever was still queued is written before exit.
    assert!(agent.terminate().success());
    let lines = lines_in(&agent.path("out"));
    assert_eq!(lines.len(), want, "{line}");
    assert!(lines.iter().all(|l| l.starts_with("load event ")));
}
