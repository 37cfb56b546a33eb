//! The web console against the real binary: `/config` (wiring, masking, reload outcome and
//! time, a rejected reload's errors), and the page itself in real headless Chromium, driven
//! over the WebDriver HTTP protocol (chromedriver) with a small std-only client: every
//! component drawn with its edges, a sink's rate rising under load, the side panel, a
//! 100-component configuration, and screenshots under `target/` for a person to look at.
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` the browser tests print
//! "SKIPPED: ..." and pass, except under CI (`CI` set), where they fail: CI installs them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::util::*;

/// netcat → memory → failover group (null, null), seq → memory → logger.
const TWO_FLOWS: &str = r#"
a1.sources = r1 r2
a1.channels = c1 c2
a1.sinks = k1 k2 k3
a1.sinkgroups = g1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.sources.r1.interceptors = i1 i2
a1.sources.r1.interceptors.i1.type = timestamp
a1.sources.r1.interceptors.i2.type = host
a1.sources.r2.type = seq
a1.sources.r2.totalEvents = 20
a1.sources.r2.channels = c2
a1.channels.c1.type = memory
a1.channels.c1.capacity = 10000
a1.channels.c1.transactionCapacity = 1000
a1.channels.c2.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
a1.sinks.k1.password = hunter2
a1.sinks.k2.type = null
a1.sinks.k2.channel = c1
a1.sinks.k3.type = logger
a1.sinks.k3.channel = c2
a1.sinkgroups.g1.sinks = k1 k2
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k1 = 10
a1.sinkgroups.g1.processor.priority.k2 = 5
"#;

/// One HTTP/1.1 exchange on a fresh connection: (status, body).
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("server listens");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    // Read by Content-Length: chromedriver keeps the connection open despite `close`.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let (head, body_start) = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break (String::from_utf8_lossy(&raw[..i]).into_owned(), i + 4);
        }
        let n = s.read(&mut buf).expect("response");
        assert!(n > 0, "connection closed before the response header");
        raw.extend_from_slice(&buf[..n]);
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    let lower = head.to_ascii_lowercase();
    let length = lower.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    let mut body = raw.split_off(body_start);
    match length {
        Some(len) => {
            while body.len() < len {
                let n = s.read(&mut buf).expect("response body");
                assert!(n > 0, "connection closed before the end of the body");
                body.extend_from_slice(&buf[..n]);
            }
            body.truncate(len);
        }
        None => {
            s.read_to_end(&mut body).expect("response body");
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let body = if lower.contains("transfer-encoding: chunked") {
        dechunk(&body)
    } else {
        body
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn config(port: u16) -> Value {
    let (status, body) = http(port, "GET", "/config", None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

fn names(doc: &Value, kind: &str) -> Vec<String> {
    doc[kind]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn start_agent(template: &str) -> (Agent, u16, u16) {
    start_agent_on(template, free_port())
}

/// Starts agent `a1` with its HTTP server on `http`; returns it, `http` and the netcat port.
fn start_agent_on(template: &str, http: u16) -> (Agent, u16, u16) {
    let port = free_port();
    let agent = Agent::start_with(
        &template.replace("{port}", &port.to_string()),
        &["--http", &format!("127.0.0.1:{http}")],
    );
    assert!(
        wait_for(|| TcpStream::connect(("127.0.0.1", http)).is_ok()),
        "HTTP server never listened; log:\n{}",
        agent.log()
    );
    (agent, http, port)
}

#[test]
fn config_shows_wiring_masking_and_reloads() {
    let (agent, http_port, port) = start_agent(TWO_FLOWS);
    let mut doc = Value::Null;
    assert!(
        wait_for(|| {
            doc = config(http_port);
            doc["reload"]["outcome"] == "applied"
        }),
        "no applied configuration: {doc:#}"
    );
    assert_eq!(doc["agent"], "a1");
    assert_eq!(doc["file"], agent.conf.display().to_string());
    assert_eq!(names(&doc, "sources"), ["r1", "r2"]);
    assert_eq!(names(&doc, "channels"), ["c1", "c2"]);
    assert_eq!(names(&doc, "sinks"), ["k1", "k2", "k3"]);
    assert_eq!(names(&doc, "sinkgroups"), ["g1"]);
    let r1 = &doc["sources"][0];
    assert_eq!(r1["type"], "netcat");
    assert_eq!(r1["channels"], json!(["c1"]));
    assert_eq!(r1["selector"]["type"], "replicating");
    assert_eq!(r1["interceptors"][0]["type"], "timestamp");
    assert_eq!(r1["interceptors"][1]["type"], "host");
    assert_eq!(r1["properties"]["port"], port.to_string());
    assert_eq!(doc["sinks"][0]["channel"], "c1");
    assert_eq!(doc["sinks"][0]["group"], "g1");
    assert_eq!(doc["sinks"][0]["properties"]["password"], "******");
    assert_eq!(doc["sinks"][2]["channel"], "c2");
    assert_eq!(doc["sinkgroups"][0]["processor"]["type"], "failover");
    assert_eq!(doc["sinkgroups"][0]["sinks"], json!(["k1", "k2"]));
    assert!(!doc.to_string().contains("hunter2"), "{doc:#}");
    // The null sink has no `password` key: a warning with the file and line.
    let warnings = doc["reload"]["warnings"].to_string();
    assert!(
        warnings.contains("flume.conf:") && warnings.contains("password"),
        "{doc:#}"
    );
    let first_time = doc["reload"]["time"].as_str().expect("time").to_owned();

    // A new sink appears after a reload, with a later reload time.
    let added = TWO_FLOWS
        .replace("a1.sinks = k1 k2 k3", "a1.sinks = k1 k2 k3 k4")
        .replace("{port}", &port.to_string())
        + "a1.sinks.k4.type = null\na1.sinks.k4.channel = c2\n";
    agent.rewrite_conf(&added);
    assert!(
        wait_for(|| {
            doc = config(http_port);
            names(&doc, "sinks").contains(&"k4".to_owned())
        }),
        "k4 never shown: {doc:#}\nlog:\n{}",
        agent.log()
    );
    assert_eq!(doc["reload"]["outcome"], "applied");
    let second_time = doc["reload"]["time"].as_str().expect("time").to_owned();
    assert!(second_time > first_time, "{first_time} then {second_time}");

    // A broken reload is rejected: errors with file:line, the running components stay.
    let broken = added.replace("a1.sinks.k4.type = null", "a1.sinks.k4.type = nosuchsink");
    agent.rewrite_conf(&broken);
    assert!(
        wait_for(|| {
            doc = config(http_port);
            doc["reload"]["outcome"] == "rejected"
        }),
        "rejection never shown: {doc:#}\nlog:\n{}",
        agent.log()
    );
    let errors = doc["reload"]["errors"].to_string();
    assert!(
        errors.contains("flume.conf:") && errors.contains("nosuchsink"),
        "{doc:#}"
    );
    assert!(doc["reload"]["time"].as_str().expect("time") > second_time.as_str());
    assert!(names(&doc, "sinks").contains(&"k4".to_owned()), "{doc:#}");
}

// ---------------------------------------------------------------------------------------
// A minimal WebDriver client.

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session; the driver is killed on drop.
struct Browser {
    driver: Child,
    port: u16,
    session: String,
}

impl Browser {
    /// Starts chromedriver and a session, or `None` (after printing why) when Chromium is not
    /// installed outside CI.
    fn start() -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            let msg = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)";
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install them: {msg}"
            );
            eprintln!("SKIPPED: {msg}; the console browser test did not run");
            return None;
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut b = Browser {
            driver,
            port,
            session: String::new(),
        };
        assert!(
            wait_for(|| TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http(port, "GET", "/status", None)
                    .1
                    .contains("\"ready\":true")),
            "chromedriver never became ready"
        );
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1600,1000"],
            },
        }}});
        let v = b.call("POST", "/session", Some(&caps));
        b.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        Some(b)
    }

    /// One WebDriver command; returns its `value`, panicking on WebDriver errors.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let (status, text) = http(self.port, method, path, body);
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "{method} {path}: {text}");
        v["value"].clone()
    }

    fn cmd(&self, method: &str, rest: &str, body: Option<&Value>) -> Value {
        self.call(method, &format!("/session/{}{rest}", self.session), body)
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(&json!({ "url": url })));
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
    }

    fn click(&self, css: &str) {
        let e = self.cmd(
            "POST",
            "/element",
            Some(&json!({ "using": "css selector", "value": css })),
        );
        let id = e[ELEMENT].as_str().expect("element id").to_owned();
        self.cmd("POST", &format!("/element/{id}/click"), Some(&json!({})));
    }

    /// Saves a PNG screenshot of the window to `path`.
    fn screenshot(&self, path: &Path) {
        let b64 = self.cmd("GET", "/screenshot", None);
        let png = base64_decode(b64.as_str().expect("base64"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }

    /// Polls `script` until it returns `true`; panics with `what` and the last value otherwise.
    fn wait_js(&self, what: &str, script: &str) {
        let mut last = Value::Null;
        let ok = wait_for_within(Duration::from_secs(30), || {
            last = self.js(script);
            last == Value::Bool(true)
        });
        assert!(ok, "{what}: {last}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The workspace's `target/` directory (where CI collects artifacts).
fn target_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// Node ids on the page.
const NODE_IDS: &str =
    "return [...document.querySelectorAll('#nodes .node')].map(n => n.dataset.id).sort();";

#[test]
fn console_in_headless_chromium() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let (mut agent, http_port, port) = start_agent(TWO_FLOWS);
    browser.goto(&format!("http://127.0.0.1:{http_port}/"));
    browser.wait_js(
        "every component drawn",
        "return document.querySelectorAll('#nodes .node').length === 8;",
    );
    assert_eq!(
        browser.js(NODE_IDS),
        json!([
            "channel:c1",
            "channel:c2",
            "sink:k1",
            "sink:k2",
            "sink:k3",
            "sinkgroup:g1",
            "source:r1",
            "source:r2"
        ])
    );
    let edges = browser.js(
        "return [...document.querySelectorAll('#edges path.edge')].map(p => p.dataset.from + '>' + p.dataset.to).sort();",
    );
    assert_eq!(
        edges,
        json!([
            "channel:c1>sinkgroup:g1",
            "channel:c2>sink:k3",
            "sinkgroup:g1>sink:k1",
            "sinkgroup:g1>sink:k2",
            "source:r1>channel:c1",
            "source:r2>channel:c2"
        ])
    );
    // Every edge is a drawn path.
    assert_eq!(
        browser.js("return [...document.querySelectorAll('#edges path.edge')].every(p => p.getTotalLength() > 10);"),
        Value::Bool(true)
    );
    browser.wait_js(
        "header shows the agent and the live connection",
        "return document.getElementById('agent').textContent === 'a1' && document.getElementById('conn').textContent === 'live';",
    );
    let rate = "return Number(document.querySelector(\"[data-id='sink:k1'] .rate\").dataset.rate);";
    assert_eq!(browser.js(rate), json!(0), "no load yet");

    // Load on the netcat source until the sink's displayed rate rises.
    let stop = Arc::new(AtomicBool::new(false));
    let loader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut s = connect(port);
            let batch: String = (0..50).map(|i| format!("event {i}\n")).collect();
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(batch.as_bytes()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    browser.wait_js(
        "sink k1's displayed rate rises above 0",
        "return Number(document.querySelector(\"[data-id='sink:k1'] .rate\").dataset.rate) > 0;",
    );
    browser.wait_js(
        "source r1 and group g1 show a rate too",
        "return ['source:r1', 'sinkgroup:g1'].every(id => Number(document.querySelector(`[data-id='${id}'] .rate`).dataset.rate) > 0);",
    );

    // The side panel shows the clicked node's masked config and its counters.
    browser.click("[data-id='sink:k1']");
    browser.wait_js(
        "side panel for k1",
        "const p = document.getElementById('panel'); return !p.hidden && p.dataset.id === 'sink:k1' && document.getElementById('panel-counters').textContent.includes('EventDrainSuccessCount');",
    );
    let panel = browser.js("return document.getElementById('panel').innerText;");
    let panel = panel.as_str().expect("text");
    assert!(panel.contains("channel") && panel.contains("c1"), "{panel}");
    assert!(
        panel.contains("******") && !panel.contains("hunter2"),
        "{panel}"
    );
    assert!(panel.contains("failover"), "{panel}");
    // Let the sparklines gather a few seconds of history for the screenshot.
    browser.wait_js(
        "sparkline history",
        "return (document.querySelector(\"[data-id='sink:k1'] .spark polyline\").getAttribute('points') || '').trim().split(' ').length >= 12;",
    );

    // A reload adds a flow whose sink cannot start (its directory is under a file): the new
    // components appear, the sink is highlighted with its rising ConnectionFailed count.
    let failing = TWO_FLOWS
        .replace("a1.sources = r1 r2", "a1.sources = r1 r2 r3")
        .replace("a1.channels = c1 c2", "a1.channels = c1 c2 c3")
        .replace("a1.sinks = k1 k2 k3", "a1.sinks = k1 k2 k3 k4")
        .replace("{port}", &port.to_string())
        + "a1.sources.r3.type = seq\na1.sources.r3.totalEvents = 100\na1.sources.r3.channels = c3\n\
           a1.channels.c3.type = memory\n\
           a1.sinks.k4.type = file_roll\na1.sinks.k4.channel = c3\n\
           a1.sinks.k4.sink.directory = {dir}/flume.conf/out\n";
    agent.rewrite_conf(&failing);
    browser.wait_js(
        "the reloaded flow is drawn",
        "return document.querySelectorAll('#nodes .node').length === 11 && !!document.querySelector(\"#edges path[data-from='channel:c3'][data-to='sink:k4']\");",
    );
    browser.wait_js(
        "the failing sink is highlighted",
        "const n = document.querySelector(\"[data-id='sink:k4']\"); return n.classList.contains('bad') && n.querySelector('.errs').textContent.includes('ConnectionFailed') && n.querySelector('.errs').classList.contains('rising-any') && n.querySelector('.since').textContent.startsWith('failing');",
    );
    browser.wait_js(
        "the side panel survives the reload",
        "return document.getElementById('panel').dataset.id === 'sink:k1' && !document.getElementById('panel').hidden;",
    );
    browser.screenshot(&target_dir().join("console-screenshot.png"));

    // A rejected reload: the header says so and lists the error with its file and line.
    agent.rewrite_conf(&failing.replace(
        "a1.sinks.k4.type = file_roll",
        "a1.sinks.k4.type = nosuchsink",
    ));
    browser.wait_js(
        "the rejected reload in the header",
        "const d = document.getElementById('reload-details'); return document.getElementById('reload').dataset.outcome === 'rejected' && !d.hidden && d.textContent.includes('nosuchsink') && d.textContent.includes('flume.conf:');",
    );
    assert_eq!(
        browser.js("return document.querySelectorAll('#nodes .node').length;"),
        json!(11),
        "the running components stay"
    );
    // A rejected reload changes no component: the graph is not rebuilt (no blank values).
    assert_ne!(
        browser.js("return document.querySelector(\"[data-id='sink:k1'] .rate\").textContent;"),
        json!("–")
    );
    browser.screenshot(&target_dir().join("console-screenshot-rejected.png"));
    stop.store(true, Ordering::Relaxed);
    loader.join().expect("loader");

    // The agent restarts on the same address: the page reconnects by itself.
    agent.kill9();
    browser.wait_js(
        "the page notices the agent is gone",
        "return document.getElementById('conn').textContent.startsWith('reconnecting');",
    );
    let (_again, _, _) = start_agent_on(TWO_FLOWS, http_port);
    browser.wait_js(
        "the page reconnects and shows the restarted agent",
        "return document.getElementById('conn').textContent === 'live' && document.querySelectorAll('#nodes .node').length === 8 && document.getElementById('reload').dataset.outcome === 'applied';",
    );
}

#[test]
fn console_renders_100_components() {
    let Some(browser) = Browser::start() else {
        return;
    };
    // 34 flows of seq → memory → null: 102 components.
    let n = 34;
    let list = |p: &str| {
        (0..n)
            .map(|i| format!("{p}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut conf = format!(
        "a1.sources = {}\na1.channels = {}\na1.sinks = {}\n",
        list("source_with_a_long_name_"),
        list("c"),
        list("k")
    );
    for i in 0..n {
        conf.push_str(&format!(
            "a1.sources.source_with_a_long_name_{i}.type = seq\n\
             a1.sources.source_with_a_long_name_{i}.totalEvents = 5\n\
             a1.sources.source_with_a_long_name_{i}.channels = c{i}\n\
             a1.channels.c{i}.type = memory\n\
             a1.sinks.k{i}.type = null\na1.sinks.k{i}.channel = c{i}\n"
        ));
    }
    let (_agent, http_port, _) = start_agent(&conf);
    browser.goto(&format!("http://127.0.0.1:{http_port}/"));
    browser.wait_js(
        "102 nodes",
        "return document.querySelectorAll('#nodes .node').length === 102;",
    );
    assert_eq!(
        browser.js("return document.querySelectorAll('#edges path.edge').length;"),
        json!(2 * n)
    );
    // Every node is laid out (non-empty box) and no two overlap.
    let ok = browser.js(
        "const r = [...document.querySelectorAll('#nodes .node')].map(n => n.getBoundingClientRect());\
         const keys = new Set(r.map(b => Math.round(b.left) + ',' + Math.round(b.top)));\
         return r.every(b => b.width > 100 && b.height > 50) && keys.size === r.length;",
    );
    assert_eq!(ok, Value::Bool(true));
    // Long names are truncated with the full name as a tooltip.
    assert_eq!(
        browser.js("const e = document.querySelector(\"[data-id='source:source_with_a_long_name_0'] .name\"); return e.title === 'source_with_a_long_name_0';"),
        Value::Bool(true)
    );
    browser.wait_js(
        "metrics arrived for every sink",
        "return [...document.querySelectorAll(\"#nodes .node[data-kind='sink'] .since\")].every(e => e.textContent !== '');",
    );
    browser.screenshot(&target_dir().join("console-screenshot-100.png"));
}
