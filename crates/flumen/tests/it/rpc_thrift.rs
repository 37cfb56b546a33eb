//! Thrift tiers: agent A (netcat → memory → thrift sink) sending to agent B (thrift source →
//! memory → file_roll), both protocols; FAILED replies on a full channel; the collector killed
//! and restarted mid-flow; and interop with Apache Thrift's own Python library (Debian
//! `python3-thrift` + `thrift-compiler`), as client against the flumen source and as server
//! behind the flumen sink, from the IDL in `tests/data/flume.thrift`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use flumen_core::Event;
use flumen_rpc::thrift::{ClientConfig, Status, ThriftClient};

use crate::util::*;

fn collector(port: u16, protocol: &str, serializer: &str) -> Agent {
    Agent::start(
        &r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = thrift
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.protocol = {protocol}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = {serializer}
"#
        .replace("{port}", &port.to_string())
        .replace("{protocol}", protocol)
        .replace("{serializer}", serializer),
    )
}

fn forwarder(netcat_port: u16, thrift_port: u16, protocol: &str) -> Agent {
    forwarder_with(netcat_port, thrift_port, protocol, "")
}

/// The forwarder with `extra` configuration lines appended.
fn forwarder_with(netcat_port: u16, thrift_port: u16, protocol: &str, extra: &str) -> Agent {
    Agent::start(
        &(r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {nport}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = thrift
a1.sinks.k1.channel = c1
a1.sinks.k1.hostname = 127.0.0.1
a1.sinks.k1.port = {tport}
a1.sinks.k1.batch-size = 50
a1.sinks.k1.protocol = {protocol}
a1.sinks.k1.request-timeout = 2000
a1.sinks.k1.connect-timeout = 2000
"#
        .to_owned()
            + extra)
            .replace("{nport}", &netcat_port.to_string())
            .replace("{tport}", &thrift_port.to_string())
            .replace("{protocol}", protocol),
    )
}

fn send_lines(port: u16, lines: &[String]) {
    let mut s = connect(port);
    for chunk in lines.chunks(100) {
        assert!(send_acked(&mut s, chunk).iter().all(|r| r == "OK"));
    }
}

#[test]
fn thrift_tier_delivers_every_event_with_both_protocols() {
    for protocol in ["compact", "binary"] {
        let tport = free_port();
        let b = collector(tport, protocol, "TEXT");
        let nport = free_port();
        let _a = forwarder(nport, tport, protocol);
        let lines = numbered(&format!("{protocol}-"), 500);
        send_lines(nport, &lines);
        assert_eq!(wait_lines(&b.path("out"), 500), lines, "{protocol}");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn thrift_source_answers_failed_when_its_channel_is_full() {
    let port = free_port();
    // c1 has no sink draining it: it is full after 5 events (the null sink drains c2).
    let _b = Agent::start(
        &r#"
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1
a1.sources.r1.type = thrift
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 5
a1.channels.c1.transactionCapacity = 5
a1.channels.c2.type = memory
a1.sinks.k1.type = null
a1.sinks.k1.channel = c2
"#
        .replace("{port}", &port.to_string()),
    );
    let _ = connect(port);
    runtime().block_on(async {
        let mut c = ThriftClient::connect("127.0.0.1", port, &ClientConfig::default())
            .await
            .unwrap();
        let five: Vec<Event> = (0..5).map(|i| Event::new(format!("e{i}"))).collect();
        assert_eq!(c.append_batch(&five).await.unwrap(), Status::Ok);
        assert_eq!(c.append_batch(&five[..1]).await.unwrap(), Status::Failed);
        assert_eq!(c.append(&five[0]).await.unwrap(), Status::Failed);
    });
}

#[test]
fn thrift_collector_killed_mid_flow_loses_nothing() {
    let tport = free_port();
    let mut b = collector(tport, "compact", "TEXT");
    let nport = free_port();
    let _a = forwarder(nport, tport, "compact");
    let first = numbered("before-", 300);
    send_lines(nport, &first);
    assert_eq!(wait_lines(&b.path("out"), 300), first);
    b.kill9();
    // The forwarder keeps accepting while the collector is down; its sink fails and backs off.
    let second = numbered("during-", 300);
    send_lines(nport, &second);
    std::thread::sleep(Duration::from_millis(300));
    b.restart();
    let got = wait_lines(&b.path("out"), 600);
    let mut want: Vec<String> = first.iter().chain(&second).cloned().collect();
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want);
}

// ---------------------------------------------------------------------------------------------
// Interop with Apache Thrift's Python library.

/// Generates the Python code for `flume.thrift` in a temp dir, or `None` (with a message)
/// when the compiler or the library is missing.
fn python_thrift() -> Option<tempfile::TempDir> {
    if find_program("thrift").is_none() || thrift_python().is_none() {
        eprintln!(
            "SKIPPED: thrift interop needs Debian's thrift-compiler and python3-thrift \
             (apt-get install thrift-compiler python3-thrift; .ci/run installs them)"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let idl = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/flume.thrift");
    let out = Command::new("thrift")
        .args(["--gen", "py", "-out"])
        .arg(dir.path())
        .arg(&idl)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "thrift --gen py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(dir)
}

const PY_COMMON: &str = r#"
import sys, json
from thrift.transport import TSocket, TTransport
from thrift.protocol import TCompactProtocol, TBinaryProtocol
from flume import ThriftSourceProtocol
from flume.ttypes import ThriftFlumeEvent, Status

def proto_factory(name):
    if name == "binary":
        return TBinaryProtocol.TBinaryProtocolFactory()
    return TCompactProtocol.TCompactProtocolFactory()
"#;

const PY_CLIENT: &str = r#"
port, proto = int(sys.argv[1]), sys.argv[2]
sock = TSocket.TSocket("127.0.0.1", port)
transport = TTransport.TFramedTransport(sock)
client = ThriftSourceProtocol.Client(proto_factory(proto).getProtocol(transport))
transport.open()
out = []
out.append(client.append(ThriftFlumeEvent(headers={"city": "Zürich", "emoji": "☃"}, body="single-ü".encode())))
batch = [ThriftFlumeEvent(headers={"n": str(i)}, body=("batch-%d" % i).encode()) for i in range(50)]
out.append(client.appendBatch(batch))
out.append(client.appendBatch([ThriftFlumeEvent(headers={}, body=b"M" * (1024 * 1024))]))
transport.close()
print(json.dumps([Status._VALUES_TO_NAMES[s] for s in out]))
"#;

const PY_SERVER: &str = r#"
from thrift.server import TServer
port, proto, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
calls = [0]

class Handler:
    def _take(self, events):
        calls[0] += 1
        if calls[0] == 1:
            return Status.FAILED
        if calls[0] == 2:
            raise RuntimeError("handler blew up")  # answered with a TApplicationException
        if calls[0] == 3:
            # The server drops the connection mid-batch, without an answer.
            raise TTransport.TTransportException(message="dropping the connection")
        with open(log, "a", encoding="utf-8") as f:
            for e in events:
                f.write("%s\t%s\n" % (e.headers.get("city", "-"), e.body.decode("utf-8")))
        return Status.OK
    def append(self, event):
        return self._take([event])
    def appendBatch(self, events):
        return self._take(events)

processor = ThriftSourceProtocol.Processor(Handler())
server = TServer.TSimpleServer(processor, TSocket.TServerSocket("127.0.0.1", port),
                               TTransport.TFramedTransportFactory(), proto_factory(proto))
print("listening", flush=True)
server.serve()
"#;

/// The Python interpreter that can import Apache Thrift's library: Debian's `/usr/bin/python3`
/// (where `python3-thrift` installs it) before whatever `python3` is first on `PATH` (on this
/// kind of machine a pyenv CPython that cannot see Debian's packages).
fn thrift_python() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import thrift"])
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A Python command running `script` (saved as `name` in `gen_dir`) with the generated code.
fn python(gen_dir: &Path, name: &str, script: &str, args: &[&str]) -> Command {
    let file = gen_dir.join(name);
    std::fs::write(&file, format!("{PY_COMMON}\n{script}")).unwrap();
    let mut cmd = Command::new(thrift_python().unwrap_or("python3"));
    cmd.arg(&file).args(args).env("PYTHONPATH", gen_dir);
    cmd
}

#[test]
fn python_thrift_client_sends_to_the_flumen_source() {
    let Some(gen_dir) = python_thrift() else {
        return;
    };
    for protocol in ["compact", "binary"] {
        let port = free_port();
        let b = collector(port, protocol, "HEADER_AND_TEXT");
        let _ = connect(port);
        let out = python(
            gen_dir.path(),
            "client.py",
            PY_CLIENT,
            &[&port.to_string(), protocol],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "python client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            r#"["OK", "OK", "OK"]"#,
            "{protocol}"
        );
        let lines = wait_lines(&b.path("out"), 52);
        assert_eq!(lines[0], "{city=Zürich, emoji=☃} single-ü", "{protocol}");
        assert_eq!(lines[1], "{n=0} batch-0");
        assert_eq!(lines[50], "{n=49} batch-49");
        assert_eq!(lines[51], format!("{{}} {}", "M".repeat(1024 * 1024)));
    }
}

/// Kills the Python server when the test ends, however it ends.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn flumen_sink_sends_to_a_python_thrift_server() {
    let Some(gen_dir) = python_thrift() else {
        return;
    };
    for protocol in ["compact", "binary"] {
        let tport = free_port();
        let log: PathBuf = gen_dir.path().join(format!("received-{protocol}.jsonl"));
        let mut child = python(
            gen_dir.path(),
            "server.py",
            PY_SERVER,
            &[&tport.to_string(), protocol, log.to_str().unwrap()],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "listening");
        let _server = Reaper(child);
        let _ = connect(tport);
        let nport = free_port();
        // Agent A adds a non-ASCII header and takes 1 MiB lines.
        let _a = forwarder_with(
            nport,
            tport,
            protocol,
            "a1.sources.r1.max-line-length = 2000000\n\
             a1.sources.r1.interceptors = st\n\
             a1.sources.r1.interceptors.st.type = static\n\
             a1.sources.r1.interceptors.st.key = city\n\
             a1.sources.r1.interceptors.st.value = Zürich\n",
        );
        // The first call is answered FAILED, the second with an exception, and the third
        // drops the connection: each is rolled back and redelivered, so every line arrives
        // exactly once.
        let mut lines = numbered(&format!("py-{protocol}-ü-"), 200);
        lines.push("M".repeat(1024 * 1024));
        send_lines(nport, &lines);
        let mut got: Vec<String> = Vec::new();
        let ok = wait_for(|| {
            got = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            got.len() >= lines.len()
        });
        assert!(
            ok,
            "python server got {} of {} events",
            got.len(),
            lines.len()
        );
        let mut want: Vec<String> = lines.iter().map(|l| format!("Zürich\t{l}")).collect();
        want.sort();
        got.sort();
        assert!(
            got == want,
            "{protocol}: the python server did not get every line once"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// TLS (`ssl = true`): TLS from the first byte, frames inside.

/// The collector with `ssl = true` and `keystore`.
fn tls_collector(port: u16, protocol: &str, keystore: &str) -> Agent {
    Agent::start(
        &r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = thrift
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.protocol = {protocol}
a1.sources.r1.ssl = true
a1.sources.r1.keystore = {keystore}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.serializer = HEADER_AND_TEXT
"#
        .replace("{port}", &port.to_string())
        .replace("{protocol}", protocol)
        .replace("{keystore}", keystore),
    )
}

#[test]
fn thrift_tier_over_tls_with_both_protocols() {
    let certs = tempfile::tempdir().unwrap();
    let Some((keystore, ca)) = super::rpc_avro::test_certs(certs.path()) else {
        return;
    };
    for protocol in ["compact", "binary"] {
        let tport = free_port();
        let b = tls_collector(tport, protocol, &keystore);
        let nport = free_port();
        let _a = forwarder_with(
            nport,
            tport,
            protocol,
            &format!("a1.sinks.k1.ssl = true\na1.sinks.k1.truststore = {ca}\n"),
        );
        let lines = numbered(&format!("tls-{protocol}-"), 300);
        send_lines(nport, &lines);
        let want: Vec<String> = lines.iter().map(|l| format!("{{}} {l}")).collect();
        assert_eq!(wait_lines(&b.path("out"), 300), want, "{protocol}");
    }
}

#[test]
fn thrift_tls_source_refuses_plain_clients_and_keeps_serving() {
    let certs = tempfile::tempdir().unwrap();
    let Some((keystore, ca)) = super::rpc_avro::test_certs(certs.path()) else {
        return;
    };
    let port = free_port();
    let b = tls_collector(port, "compact", &keystore);
    let _ = connect(port);
    let v = flumen_rpc::tls::versions(&[], &[]).unwrap();
    let secure = ClientConfig {
        tls: Some(flumen_rpc::tls::TlsConnector::from(
            flumen_rpc::tls::client_config(Some(Path::new(&ca)), false, &v).unwrap(),
        )),
        ..ClientConfig::default()
    };
    runtime().block_on(async {
        let mut c = ThriftClient::connect("127.0.0.1", port, &secure)
            .await
            .unwrap();
        assert_eq!(c.append(&Event::new("first")).await.unwrap(), Status::Ok);
        let plain = ClientConfig {
            request_timeout: Duration::from_secs(3),
            ..ClientConfig::default()
        };
        let mut p = ThriftClient::connect("127.0.0.1", port, &plain)
            .await
            .unwrap();
        assert!(p.append(&Event::new("plain")).await.is_err());
        // Trusting the wrong certificate: the handshake fails on the client.
        let wrong = ClientConfig {
            tls: Some(flumen_rpc::tls::TlsConnector::from(
                flumen_rpc::tls::client_config(Some(Path::new(&keystore)), false, &v).unwrap(),
            )),
            ..ClientConfig::default()
        };
        let e = ThriftClient::connect("127.0.0.1", port, &wrong)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("TLS handshake"), "{e}");
        assert_eq!(
            c.append_batch(&[Event::new("second")]).await.unwrap(),
            Status::Ok
        );
    });
    assert_eq!(wait_lines(&b.path("out"), 2), ["{} first", "{} second"]);
}

const PY_TLS_CLIENT: &str = r#"
from thrift.transport import TSSLSocket
port, proto, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3]
# Full verification on the Python side: chain against the CA, host name flumen.test.
sock = TSSLSocket.TSSLSocket("127.0.0.1", port, ca_certs=ca, server_hostname="flumen.test")
transport = TTransport.TFramedTransport(sock)
client = ThriftSourceProtocol.Client(proto_factory(proto).getProtocol(transport))
transport.open()
out = []
out.append(client.append(ThriftFlumeEvent(headers={"city": "Zürich"}, body="tls-single-ü".encode())))
batch = [ThriftFlumeEvent(headers={"n": str(i)}, body=("tls-batch-%d" % i).encode()) for i in range(20)]
out.append(client.appendBatch(batch))
transport.close()
print(json.dumps([Status._VALUES_TO_NAMES[s] for s in out]))
"#;

#[test]
fn python_thrift_tls_client_sends_to_the_flumen_source() {
    let Some(gen_dir) = python_thrift() else {
        return;
    };
    let has_ssl = Command::new(thrift_python().unwrap_or("python3"))
        .args(["-c", "import thrift.transport.TSSLSocket"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_ssl {
        eprintln!("SKIPPED: this python3-thrift has no TSSLSocket");
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let Some((keystore, ca)) = super::rpc_avro::test_certs(certs.path()) else {
        return;
    };
    for protocol in ["compact", "binary"] {
        let port = free_port();
        let b = tls_collector(port, protocol, &keystore);
        let _ = connect(port);
        let out = python(
            gen_dir.path(),
            "tls_client.py",
            PY_TLS_CLIENT,
            &[&port.to_string(), protocol, &ca],
        )
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "python TLS client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            r#"["OK", "OK"]"#,
            "{protocol}"
        );
        let lines = wait_lines(&b.path("out"), 21);
        assert_eq!(lines[0], "{city=Zürich} tls-single-ü", "{protocol}");
        assert_eq!(lines[20], "{n=19} tls-batch-19", "{protocol}");
    }
}
