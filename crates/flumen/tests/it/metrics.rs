//! The HTTP metrics server against the real binary: Flume's `/metrics` JSON with every counter
//! checked against the events sent, the Prometheus text parsed back and compared with it,
//! `/health` and `/ready` (a full channel and a failing sink make it 503), both ways of
//! turning the server on, a taken port, and counters across a reload.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use crate::util::*;

/// A netcat → memory → file_roll flow; the sink takes one event per batch, so every non-empty
/// batch is complete and the batch counters are exact.
const FLOW: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.batchSize = 1
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.directory = {dir}/out
"#;

/// One HTTP/1.1 exchange on a fresh connection: (status, headers, body).
fn http(port: u16, method: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("metrics server listens");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("response");
    let raw = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    (status, head.to_owned(), body.to_owned())
}

fn get(port: u16, path: &str) -> (u16, String) {
    let (status, _, body) = http(port, "GET", path, None);
    (status, body)
}

/// Waits until the server answers.
fn wait_server(port: u16) {
    assert!(
        wait_for(|| TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "metrics server never listened on {port}"
    );
}

fn metrics_json(port: u16) -> Value {
    let (status, body) = get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("valid JSON")
}

/// Polls `/metrics` until two consecutive documents are equal and `ok` holds.
fn settled(port: u16, ok: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let mut doc = Value::Null;
    let done = wait_for(|| {
        doc = metrics_json(port);
        let same = doc == last;
        last = doc.clone();
        same && ok(&doc)
    });
    assert!(done, "metrics never settled: {doc:#}");
    doc
}

/// `key.attr` as a number, `None` while the component is not registered yet.
fn try_num(doc: &Value, key: &str, attr: &str) -> Option<u64> {
    doc[key][attr].as_str()?.parse().ok()
}

fn num(doc: &Value, key: &str, attr: &str) -> u64 {
    let v = doc[key][attr]
        .as_str()
        .unwrap_or_else(|| panic!("{key}.{attr} missing or not a string in {doc:#}"));
    v.parse().unwrap_or_else(|_| panic!("{key}.{attr} = {v}"))
}

/// Attribute names of component `key` in the order the raw document has them (a JSON map
/// would sort them).
fn attr_names(raw: &str, key: &str) -> Vec<String> {
    let start = raw
        .find(&format!("\"{key}\":{{"))
        .unwrap_or_else(|| panic!("{key} missing in {raw}"))
        + key.len()
        + 4;
    let end = start + raw[start..].find('}').expect("object end");
    raw[start..end]
        .split(',')
        .map(|kv| {
            kv.split(':')
                .next()
                .expect("name")
                .trim_matches('"')
                .to_owned()
        })
        .collect()
}

fn prom_value(v: &prometheus_parse::Value) -> f64 {
    match v {
        prometheus_parse::Value::Counter(x)
        | prometheus_parse::Value::Gauge(x)
        | prometheus_parse::Value::Untyped(x) => *x,
        other => panic!("unexpected sample {other:?}"),
    }
}

fn parse_prometheus(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("Prometheus text parses")
}

/// Every numeric JSON attribute (but the times and the percentage) equals its Prometheus
/// sample `flumen_<snake_case>[_total]` for the same component.
fn assert_prometheus_matches(doc: &Value, scrape: &prometheus_parse::Scrape) {
    let gauges = ["ChannelSize", "ChannelCapacity", "OpenConnectionCount"];
    let skipped = ["Type", "StartTime", "StopTime", "ChannelFillPercentage"];
    let mut compared = 0;
    for (key, attrs) in doc.as_object().expect("object") {
        let (kind, name) = key.split_once('.').expect("TYPE.name");
        for (attr, value) in attrs.as_object().expect("object") {
            if skipped.contains(&attr.as_str()) {
                continue;
            }
            let mut metric = String::from("flumen");
            for c in attr.chars() {
                if c.is_ascii_uppercase() {
                    metric.push('_');
                }
                metric.push(c.to_ascii_lowercase());
            }
            if !gauges.contains(&attr.as_str()) {
                metric.push_str("_total");
            }
            let sample = scrape
                .samples
                .iter()
                .find(|s| {
                    s.metric == metric
                        && s.labels.get("component") == Some(name)
                        && s.labels.get("type") == Some(kind.to_ascii_lowercase().as_str())
                })
                .unwrap_or_else(|| panic!("no {metric} for {key}"));
            assert_eq!(sample.labels.get("agent"), Some("a1"));
            let want: f64 = value.as_str().expect("string").parse().expect("number");
            assert_eq!(prom_value(&sample.value), want, "{metric} of {key}");
            compared += 1;
        }
    }
    assert!(compared >= 25, "only {compared} values compared");
}

#[test]
fn every_counter_matches_the_events_sent_and_prometheus_agrees() {
    const N: usize = 40;
    let port = free_port();
    let mport = free_port();
    let agent = Agent::start_with(
        &FLOW.replace("{port}", &port.to_string()),
        &[
            "-Dflume.monitoring.type=http",
            &format!("-Dflume.monitoring.port={mport}"),
        ],
    );
    wait_server(mport);
    let mut s = connect(port);
    for l in numbered("m", N) {
        assert_eq!(send_acked(&mut s, &[l]), ["OK"]);
    }
    wait_lines(&agent.path("out"), N);
    let n = N as u64;
    let doc = settled(mport, |d| {
        try_num(d, "SINK.k1", "EventDrainSuccessCount") == Some(n)
            // The only number not fixed by N: takes that found the channel empty, one per
            // empty sink round.
            && try_num(d, "CHANNEL.c1", "EventTakeAttemptCount")
                == try_num(d, "SINK.k1", "BatchEmptyCount").map(|e| n + e)
    });

    let (_, raw) = get(mport, "/metrics");
    let order: Vec<usize> = ["\"CHANNEL.c1\":", "\"SINK.k1\":", "\"SOURCE.r1\":"]
        .iter()
        .map(|k| {
            raw.find(k)
                .unwrap_or_else(|| panic!("{k} missing in {raw}"))
        })
        .collect();
    assert!(order.is_sorted(), "components not in key order: {raw}");
    assert_eq!(doc.as_object().expect("object").len(), 3);
    for (key, kind) in [
        ("SOURCE.r1", "SOURCE"),
        ("CHANNEL.c1", "CHANNEL"),
        ("SINK.k1", "SINK"),
    ] {
        assert_eq!(doc[key]["Type"], kind);
        assert_eq!(num(&doc, key, "StopTime"), 0);
        let start = num(&doc, key, "StartTime");
        assert!(start > 1_600_000_000_000 && start <= chrono_ms(), "{start}");
        // Every value is a string, as in Flume.
        assert!(
            doc[key]
                .as_object()
                .expect("object")
                .values()
                .all(Value::is_string)
        );
    }

    let source = [
        ("EventReceivedCount", n),
        ("EventAcceptedCount", n),
        ("AppendReceivedCount", 0),
        ("AppendAcceptedCount", 0),
        // One batch per acknowledged line.
        ("AppendBatchReceivedCount", n),
        ("AppendBatchAcceptedCount", n),
        ("OpenConnectionCount", 1),
        ("EventReadFail", 0),
        ("ChannelWriteFail", 0),
        ("GenericProcessingFail", 0),
    ];
    let channel = [
        ("ChannelSize", 0),
        ("ChannelCapacity", 1000),
        ("EventPutAttemptCount", n),
        ("EventPutSuccessCount", n),
        ("EventTakeSuccessCount", n),
    ];
    let sink = [
        ("ConnectionCreatedCount", 1),
        ("ConnectionClosedCount", 0),
        ("ConnectionFailedCount", 0),
        ("BatchUnderflowCount", 0),
        ("BatchCompleteCount", n),
        ("EventDrainAttemptCount", n),
        ("EventDrainSuccessCount", n),
        ("EventWriteFail", 0),
        ("ChannelReadFail", 0),
    ];
    for (key, expected) in [
        ("SOURCE.r1", &source[..]),
        ("CHANNEL.c1", &channel[..]),
        ("SINK.k1", &sink[..]),
    ] {
        for (attr, want) in expected {
            assert_eq!(num(&doc, key, attr), *want, "{key}.{attr} in {doc:#}");
        }
    }
    assert_eq!(doc["CHANNEL.c1"]["ChannelFillPercentage"], "0.0");
    // Flume's attribute lists, complete and in order.
    assert_eq!(
        attr_names(&raw, "SOURCE.r1"),
        [
            "Type",
            "StartTime",
            "StopTime",
            "EventReceivedCount",
            "EventAcceptedCount",
            "AppendReceivedCount",
            "AppendAcceptedCount",
            "AppendBatchReceivedCount",
            "AppendBatchAcceptedCount",
            "OpenConnectionCount",
            "EventReadFail",
            "ChannelWriteFail",
            "GenericProcessingFail"
        ]
    );
    assert_eq!(
        attr_names(&raw, "CHANNEL.c1"),
        [
            "Type",
            "StartTime",
            "StopTime",
            "ChannelSize",
            "ChannelCapacity",
            "ChannelFillPercentage",
            "EventPutAttemptCount",
            "EventPutSuccessCount",
            "EventTakeAttemptCount",
            "EventTakeSuccessCount"
        ]
    );
    assert_eq!(
        attr_names(&raw, "SINK.k1"),
        [
            "Type",
            "StartTime",
            "StopTime",
            "ConnectionCreatedCount",
            "ConnectionClosedCount",
            "ConnectionFailedCount",
            "BatchEmptyCount",
            "BatchUnderflowCount",
            "BatchCompleteCount",
            "EventDrainAttemptCount",
            "EventDrainSuccessCount",
            "EventWriteFail",
            "ChannelReadFail"
        ]
    );

    // The same numbers in the Prometheus text, both ways of asking for it.
    let (status, head, text) = http(mport, "GET", "/metrics/prometheus", None);
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let scrape = parse_prometheus(&text);
    assert_prometheus_matches(&doc, &scrape);
    let find = |metric: &str, component: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == metric && s.labels.get("component") == Some(component))
            .unwrap_or_else(|| panic!("{metric} {component} missing:\n{text}"))
    };
    assert_eq!(
        find("flumen_event_accepted_count_total", "r1")
            .labels
            .get("component_type"),
        Some("netcat")
    );
    assert_eq!(
        find("flumen_channel_size", "c1")
            .labels
            .get("component_type"),
        Some("memory")
    );
    assert_eq!(
        find("flumen_event_drain_success_count_total", "k1")
            .labels
            .get("component_type"),
        Some("file_roll")
    );
    assert_eq!(
        prom_value(&find("flumen_channel_fill_ratio", "c1").value),
        0.0
    );
    assert_eq!(
        prom_value(&find("flumen_channel_oldest_event_age_seconds", "c1").value),
        0.0
    );
    let prometheus_parse::Value::Histogram(buckets) =
        &find("flumen_sink_batch_delivery_seconds", "k1").value
    else {
        panic!("latency is not a histogram:\n{text}");
    };
    let inf = buckets
        .iter()
        .find(|b| b.less_than == f64::INFINITY)
        .expect("+Inf bucket");
    assert_eq!(inf.count, N as f64);
    for p in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == p)
            .unwrap_or_else(|| panic!("{p} missing"));
        // CPU time may still be 0 ticks in a fresh, idle agent.
        assert!(
            prom_value(&s.value) > 0.0 || p == "process_cpu_seconds_total",
            "{p}"
        );
    }
    let (_, head, negotiated) = http(
        mport,
        "GET",
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
    );
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert_prometheus_matches(&doc, &parse_prometheus(&negotiated));

    assert_eq!(get(mport, "/health"), (200, r#"{"status":"UP"}"#.into()));
    assert_eq!(get(mport, "/ready"), (200, r#"{"status":"READY"}"#.into()));
    drop(agent);
}

/// Epoch milliseconds now.
fn chrono_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

#[test]
fn http_flag_serves_only_get_and_head_on_known_paths() {
    let mport = free_port();
    let conf = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = 5
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
"#;
    let mut agent = Agent::start_with(conf, &["--http", &format!("127.0.0.1:{mport}")]);
    wait_server(mport);
    agent.expect_log("HTTP metrics server listening");
    agent.expect_log(&format!("address=127.0.0.1:{mport}"));
    let doc = settled(mport, |d| {
        try_num(d, "SINK.k1", "EventDrainSuccessCount") == Some(5)
    });
    assert_eq!(num(&doc, "SOURCE.r1", "EventAcceptedCount"), 5);
    let (status, head, body) = http(mport, "GET", "/metrics", Some("*/*"));
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json;charset=utf-8"),
        "{head}"
    );
    assert!(body.starts_with('{') && !body.ends_with('\n'));
    let (status, head, body) = http(mport, "HEAD", "/metrics", None);
    assert_eq!(status, 200, "{head}");
    assert!(body.is_empty());
    assert_eq!(http(mport, "POST", "/metrics", None).0, 405);
    assert_eq!(http(mport, "DELETE", "/ready", None).0, 405);
    assert_eq!(get(mport, "/nope").0, 404);
    assert_eq!(get(mport, "/metrics/other").0, 404);
    assert_eq!(get(mport, "/health").0, 200);
    let status = agent.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_taken_port_stops_the_agent_with_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    for args in [
        vec!["--http".to_owned(), format!("127.0.0.1:{port}")],
        vec![
            "-Dflume.monitoring.type=http".to_owned(),
            format!("-Dflume.monitoring.port={port}"),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut agent = Agent::start_with(&FLOW.replace("{port}", &free_port().to_string()), &args);
        let status = agent
            .wait_exit(DEADLINE)
            .unwrap_or_else(|| panic!("agent kept running; log:\n{}", agent.log()));
        assert_eq!(status.code(), Some(3), "log:\n{}", agent.log());
        let log = agent.log();
        assert!(
            log.contains(&format!(
                "cannot start the HTTP metrics server on 127.0.0.1:{port}"
            )),
            "{log}"
        );
    }
    drop(taken);
}

#[test]
fn unsupported_monitoring_types_are_warned_about() {
    let mut agent = Agent::start_with(
        &FLOW.replace("{port}", &free_port().to_string()),
        &["-Dflume.monitoring.type=ganglia"],
    );
    agent.expect_log("flume.monitoring.type=ganglia is not supported");
    agent.expect_log("Agent started");
    assert!(agent.terminate().success());
}

const FULL: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10
a1.channels.c1.transactionCapacity = 10
a1.channels.c1.keep-alive = 1
{sink}
"#;

#[test]
fn ready_is_503_while_a_channel_is_full_or_a_sink_fails_then_200() {
    let port = free_port();
    let mport = free_port();
    let dead = free_port();
    let conf = FULL.replace("{port}", &port.to_string());
    let dead_sink = format!(
        "a1.sinks.k1.type = avro\na1.sinks.k1.channel = c1\na1.sinks.k1.hostname = 127.0.0.1\na1.sinks.k1.port = {dead}\na1.sinks.k1.batch-size = 10\n"
    );
    let agent = Agent::start_with(
        &conf.replace("{sink}", &dead_sink),
        &[
            "--http",
            &mport.to_string(),
            "--ready-sink-failure-secs",
            "1",
        ],
    );
    wait_server(mport);
    assert!(wait_for(|| get(mport, "/ready").0 == 200), "never ready");
    let mut s = connect(port);
    for l in numbered("f", 10) {
        assert_eq!(send_acked(&mut s, &[l]), ["OK"]);
    }
    // Full channel, and a sink failing for more than 1 s: both reasons, in JSON.
    let mut body = String::new();
    let ok = wait_for(|| {
        let (status, b) = get(mport, "/ready");
        body = b;
        status == 503 && body.contains("SINK.k1")
    });
    assert!(ok, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["status"], "NOT_READY");
    let reasons = v["reasons"].as_array().expect("reasons");
    assert!(
        reasons
            .iter()
            .any(|r| r["component"] == "CHANNEL.c1" && r["fillPercentage"] == 100.0),
        "{body}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r["component"] == "SINK.k1" && r["reason"] == "sink failing"),
        "{body}"
    );
    // The queued events age while nothing drains them.
    let mut age = 0.0;
    let aged = wait_for(|| {
        let (_, _, text) = http(mport, "GET", "/metrics/prometheus", None);
        age = parse_prometheus(&text)
            .samples
            .iter()
            .find(|s| s.metric == "flumen_channel_oldest_event_age_seconds")
            .map_or(0.0, |s| prom_value(&s.value));
        age >= 1.0
    });
    assert!(aged, "oldest event age stayed at {age}");
    let doc = metrics_json(mport);
    assert_eq!(num(&doc, "CHANNEL.c1", "ChannelSize"), 10);
    assert_eq!(doc["CHANNEL.c1"]["ChannelFillPercentage"], "100.0");
    assert!(num(&doc, "SINK.k1", "ConnectionFailedCount") >= 1);

    // Give the channel a working sink: it drains and the agent is ready again.
    agent.rewrite_conf(&conf.replace(
        "{sink}",
        "a1.sinks.k1.type = file_roll\na1.sinks.k1.channel = c1\na1.sinks.k1.sink.batchSize = 10\na1.sinks.k1.sink.directory = {dir}/out\n",
    ));
    agent.expect_log("Configuration reloaded");
    wait_lines(&agent.path("out"), 10);
    let mut body = String::new();
    assert!(
        wait_for(|| {
            let (status, b) = get(mport, "/ready");
            body = b;
            status == 200
        }),
        "{body}"
    );
}

#[test]
fn reload_keeps_unchanged_counters_resets_edited_ones_and_drops_removed_ones() {
    let port = free_port();
    let port2 = free_port();
    let mport = free_port();
    let base = FLOW.replace("{port}", &port.to_string());
    let with_r2 = base.replace("a1.sources = r1", "a1.sources = r1 r2")
        + &format!(
            "a1.sources.r2.type = netcat\na1.sources.r2.bind = 127.0.0.1\na1.sources.r2.port = {port2}\na1.sources.r2.channels = c1\n"
        );
    let agent = Agent::start_with(&with_r2, &["--http", &mport.to_string()]);
    wait_server(mport);
    let mut s = connect(port);
    for l in numbered("r", 5) {
        assert_eq!(send_acked(&mut s, &[l]), ["OK"]);
    }
    let before = settled(mport, |d| {
        d.get("SOURCE.r2").is_some() && try_num(d, "SINK.k1", "EventDrainSuccessCount") == Some(5)
    });

    // Remove r2, edit k1 (a different batch size), keep r1 and c1.
    agent.rewrite_conf(&base.replace("sink.batchSize = 1", "sink.batchSize = 2"));
    agent.expect_log("Configuration reloaded");
    let after = settled(mport, |d| d.get("SOURCE.r2").is_none());
    assert_eq!(
        after
            .as_object()
            .expect("object")
            .keys()
            .collect::<Vec<_>>(),
        ["CHANNEL.c1", "SINK.k1", "SOURCE.r1"]
    );
    for (key, attr) in [
        ("SOURCE.r1", "EventAcceptedCount"),
        ("SOURCE.r1", "StartTime"),
        ("CHANNEL.c1", "EventPutSuccessCount"),
        ("CHANNEL.c1", "EventTakeSuccessCount"),
        ("CHANNEL.c1", "StartTime"),
    ] {
        assert_eq!(
            num(&after, key, attr),
            num(&before, key, attr),
            "{key}.{attr}"
        );
    }
    assert_eq!(num(&after, "SOURCE.r1", "EventAcceptedCount"), 5);
    assert_eq!(num(&after, "SINK.k1", "EventDrainSuccessCount"), 0);
    assert!(num(&after, "SINK.k1", "StartTime") >= num(&before, "SINK.k1", "StartTime"));

    // The rebuilt sink counts from zero.
    for l in numbered("s", 4) {
        assert_eq!(send_acked(&mut s, &[l]), ["OK"]);
    }
    let doc = settled(mport, |d| {
        try_num(d, "SINK.k1", "EventDrainSuccessCount") == Some(4)
    });
    assert_eq!(num(&doc, "SOURCE.r1", "EventAcceptedCount"), 9);
    assert_eq!(num(&doc, "CHANNEL.c1", "EventPutSuccessCount"), 9);
}

#[test]
fn ready_is_503_while_a_source_cannot_bind_its_port_then_200() {
    // Another process holds the netcat port: the source fails and is restarted with back-off.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mport = free_port();
    let agent = Agent::start_with(
        &FLOW.replace("{port}", &port.to_string()),
        &["--http", &mport.to_string()],
    );
    wait_server(mport);
    let mut body = String::new();
    let ok = wait_for(|| {
        let (status, b) = get(mport, "/ready");
        body = b;
        status == 503 && body.contains("SOURCE.r1")
    });
    assert!(
        ok,
        "/ready never reported the source: {body}\n{}",
        agent.log()
    );
    let stop = num(&metrics_json(mport), "SOURCE.r1", "StopTime");
    assert!(stop > 0, "a failed source shows a StopTime");
    drop(taken);
    assert!(
        wait_for(|| get(mport, "/ready").0 == 200),
        "never ready after the port was freed: {}\n{}",
        get(mport, "/ready").1,
        agent.log()
    );
    assert_eq!(num(&metrics_json(mport), "SOURCE.r1", "StopTime"), 0);
}
