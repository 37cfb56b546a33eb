//! `flumen avro-client` against a real flumen collector (avro source -> file_roll): lines and
//! headers arrive as sent, and the exit status tells whether they did.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::util::*;

const COLLECTOR: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = avro
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = {capacity}
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = {sink}
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = HEADER_AND_TEXT
a1.sinks.k1.hostname = 127.0.0.1
a1.sinks.k1.port = {dead}
"#;

/// A collector on a fresh port, listening when this returns. With `sink = "avro"` towards a
/// port nobody listens on, its channel only fills.
fn collector(sink: &str, capacity: usize) -> (Agent, u16) {
    let port = free_port();
    let agent = Agent::start(
        &COLLECTOR
            .replace("{port}", &port.to_string())
            .replace("{sink}", sink)
            .replace("{capacity}", &capacity.to_string())
            .replace("{dead}", &free_port().to_string()),
    );
    drop(connect(port));
    (agent, port)
}

fn client(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(bin())
        .arg("avro-client")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_file_with_headers_arrives_line_for_line() {
    let (collector, port) = collector("file_roll", 10_000);
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..1000).map(|i| format!("ligne-{i} é ✓")).collect();
    // Mixed terminators, as files from several systems have them.
    let mut text = String::new();
    for (i, l) in lines.iter().enumerate() {
        text.push_str(l);
        text.push_str(["\n", "\r\n", "\r"][i % 3]);
    }
    let file = dir.path().join("events.txt");
    std::fs::write(&file, text).unwrap();
    let headers = dir.path().join("headers.properties");
    std::fs::write(
        &headers,
        "# sent with every event\nhost = web-1\nrégion: Zürich\n",
    )
    .unwrap();

    let out = client(
        &[
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-F",
            file.to_str().unwrap(),
            "-R",
            headers.to_str().unwrap(),
            "--batch-size",
            "64",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sent 1000 events"),
        "{}",
        stderr(&out)
    );
    let got = wait_lines(&collector.path("out"), 1000);
    let want: Vec<String> = lines
        .iter()
        .map(|l| format!("{{host=web-1, région=Zürich}} {l}"))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn standard_input_is_sent_when_no_file_is_given() {
    let (collector, port) = collector("file_roll", 10_000);
    let lines = numbered("stdin-", 500);
    let input = lines.join("\n") + "\n";
    let out = client(
        &["-H", "127.0.0.1", "-p", &port.to_string()],
        Some(input.as_bytes()),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let got = wait_lines(&collector.path("out"), 500);
    let want: Vec<String> = lines.iter().map(|l| format!("{{}} {l}")).collect();
    assert_eq!(got, want);
}

#[test]
fn nobody_listening_exits_non_zero_and_says_nothing_was_delivered() {
    let port = free_port();
    let out = client(
        &["-H", "127.0.0.1", "-p", &port.to_string()],
        Some(b"one\ntwo\n"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("delivery failed"), "{err}");
    assert!(
        err.contains("no event from standard input was acknowledged"),
        "{err}"
    );
}

#[test]
fn a_failed_reply_stops_the_client_and_reports_what_was_acknowledged() {
    // The collector's channel holds 150 events and never drains: the first batch of 100 is
    // kept, the second is answered FAILED.
    let (_collector, port) = collector("avro", 150);
    let input = numbered("full-", 500).join("\n");
    let out = client(
        &[
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--batch-size",
            "100",
        ],
        Some(input.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the first 100 events from standard input (lines 1 to 100) were acknowledged"),
        "{err}"
    );
}

#[test]
fn rpc_properties_choose_a_failover_client() {
    let (collector, port) = collector("file_roll", 10_000);
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("rpc.properties");
    std::fs::write(
        &props,
        format!(
            "client.type = default_failover\nhosts = dead live\nhosts.dead = 127.0.0.1:{}\n\
             hosts.live = 127.0.0.1:{port}\nbatch-size = 50\nconnect-timeout = 2000\n",
            free_port()
        ),
    )
    .unwrap();
    let input = numbered("failover-", 300).join("\n");
    let out = client(&["-P", props.to_str().unwrap()], Some(input.as_bytes()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(wait_lines(&collector.path("out"), 300).len(), 300);
}

#[test]
fn missing_address_or_unreadable_inputs_are_usage_errors() {
    let out = client(&[], Some(b""));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("-H HOST -p PORT"), "{}", stderr(&out));

    let out = client(
        &[
            "-H",
            "127.0.0.1",
            "-p",
            "1",
            "-F",
            "/nonexistent/events.txt",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/nonexistent/events.txt"),
        "{}",
        stderr(&out)
    );
}
