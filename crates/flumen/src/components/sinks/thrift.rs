//! The `thrift` sink (Flume's `ThriftSink`): sends each batch as one `appendBatch` call to a
//! Thrift source (flumen's or Flume's) over `TFramedTransport`, compact (default) or binary.
//!
//! Invariants:
//! - `deliver` returns `Ok` only after the server answered `OK`; `FAILED`/`ERROR`/`UNKNOWN`,
//!   an exception, a timeout or a broken connection is a transient failure: the driver rolls
//!   the batch back, and the connection is dropped and re-opened on the next call (the runner
//!   backs off exponentially in between);
//! - one connection at a time (Flume forces `maxConnections = 1` for this sink); counted in
//!   `ConnectionCreated`/`Closed`/`Failed`;
//! - `reset-connection-interval` > 0 re-opens the connection that often (seconds), so a load
//!   balancer in front of several sources spreads the load.
//!
//! Differences from Flume: `ssl` and `kerberos` are not supported yet (configuration error).
//! Like Flume's client, `protocol` is checked case-insensitively but only the exact value
//! `binary` selects the binary protocol; other values fall back to compact with a warning.

use std::time::Duration;

use async_trait::async_trait;
use flumen_config::{Diagnostic, Props};
use flumen_core::{DeliveryError, Event, Sink, SinkCounters};
use flumen_rpc::thrift::{ClientConfig, DEFAULT_MAX_FRAME, Protocol, Status, ThriftClient};
use serde::Deserialize;
use std::sync::Arc;
use tokio::time::Instant;

use crate::components::{BuildResult, SinkBuildContext, SinkDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: SinkDescriptor = SinkDescriptor {
    name: "thrift",
    classes: &["org.apache.flume.sink.ThriftSink"],
    description: "Sends batches to a Thrift source (another agent's thrift source)",
    batch_size_key: Some("batch-size"),
    build,
};

/// Flume's default for both timeouts, and what it uses instead of values below 1000 ms.
const DEFAULT_TIMEOUT_MS: u64 = 20_000;

/// Configuration of the `thrift` sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ThriftSinkConfig {
    /// Host of the Thrift source. Flume key: `hostname`. Required.
    pub hostname: Option<String>,
    /// Port of the Thrift source. Flume key: `port`. Required.
    pub port: Option<u16>,
    /// Events per transaction and per `appendBatch`. Flume key: `batch-size`. Default: 100.
    #[serde(rename = "batch-size")]
    pub batch_size: usize,
    /// Connect timeout in ms (values below 1000 mean the default). Flume key:
    /// `connect-timeout`. Default: 20000.
    #[serde(rename = "connect-timeout")]
    pub connect_timeout: u64,
    /// Reply timeout in ms (values below 1000 mean the default). Flume key:
    /// `request-timeout`. Default: 20000.
    #[serde(rename = "request-timeout")]
    pub request_timeout: u64,
    /// Re-open the connection every this many seconds; 0 = never. Flume key:
    /// `reset-connection-interval`. Default: 0.
    #[serde(rename = "reset-connection-interval")]
    pub reset_connection_interval: u64,
    /// `compact` or `binary`. Flume key: `protocol`. Default: `compact`.
    pub protocol: String,
    /// TLS. Flume key: `ssl`. Default: false. Not supported yet.
    pub ssl: bool,
    /// Kerberos SASL. Flume key: `kerberos`. Default: false. Not supported.
    pub kerberos: bool,
    /// Largest accepted reply frame (flumen only). Key: `max-frame-length`. Default: 16384000.
    #[serde(rename = "max-frame-length")]
    pub max_frame_length: usize,
}

impl Default for ThriftSinkConfig {
    fn default() -> Self {
        Self {
            hostname: None,
            port: None,
            batch_size: 100,
            connect_timeout: DEFAULT_TIMEOUT_MS,
            request_timeout: DEFAULT_TIMEOUT_MS,
            reset_connection_interval: 0,
            protocol: "compact".into(),
            ssl: false,
            kerberos: false,
            max_frame_length: DEFAULT_MAX_FRAME,
        }
    }
}

impl ThriftSinkConfig {
    fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.hostname.as_deref().is_none_or(|h| h.trim().is_empty()) {
            errors.push(props.error("hostname", "missing required property `hostname`"));
        }
        if self.port.is_none() {
            errors.push(props.error("port", "missing required property `port`"));
        }
        if self.ssl {
            errors.push(props.error(
                "ssl",
                "`ssl = true` is not yet supported by the thrift sink",
            ));
        }
        if self.kerberos {
            errors.push(props.error(
                "kerberos",
                "`kerberos = true` is not supported by the thrift sink",
            ));
        }
        if self.max_frame_length == 0 {
            errors.push(props.error("max-frame-length", "`max-frame-length` must be at least 1"));
        }
        errors
    }

    /// The protocol as Flume's client picks it: exact `binary`, otherwise compact.
    fn wire_protocol(&self) -> Protocol {
        let p = self.protocol.trim();
        if p == "binary" {
            Protocol::Binary
        } else {
            if !p.eq_ignore_ascii_case("compact") {
                tracing::warn!(protocol = %p, "Unknown or non-lower-case thrift protocol; using compact, as Flume does.");
            }
            Protocol::Compact
        }
    }
}

/// Flume replaces timeouts below one second by the default.
fn timeout(ms: u64) -> Duration {
    Duration::from_millis(if ms < 1000 { DEFAULT_TIMEOUT_MS } else { ms })
}

fn build(props: &Props, cx: &SinkBuildContext) -> BuildResult<Box<dyn Sink>> {
    build_with(props, ThriftSinkConfig::validate, |c: ThriftSinkConfig| {
        let client = ClientConfig {
            protocol: c.wire_protocol(),
            connect_timeout: timeout(c.connect_timeout),
            request_timeout: timeout(c.request_timeout),
            max_frame: c.max_frame_length,
        };
        let sink: Box<dyn Sink> = Box::new(ThriftSink {
            name: cx.name.clone(),
            hostname: c.hostname.unwrap_or_default().trim().to_string(),
            port: c.port.unwrap_or_default(),
            // Flume: batch sizes below 1 mean the default.
            batch_size: if c.batch_size == 0 { 100 } else { c.batch_size },
            reset_interval: (c.reset_connection_interval > 0)
                .then(|| Duration::from_secs(c.reset_connection_interval)),
            client,
            counters: cx.counters.clone(),
            conn: None,
        });
        Ok(sink)
    })
}

/// The `thrift` sink. Called by a single task (its driver).
#[derive(Debug)]
pub struct ThriftSink {
    name: String,
    hostname: String,
    port: u16,
    batch_size: usize,
    reset_interval: Option<Duration>,
    client: ClientConfig,
    counters: Arc<SinkCounters>,
    /// The open connection and when it was opened.
    conn: Option<(ThriftClient, Instant)>,
}

impl ThriftSink {
    async fn connection(&mut self) -> Result<&mut ThriftClient, DeliveryError> {
        if let (Some((_, opened)), Some(every)) = (&self.conn, self.reset_interval)
            && opened.elapsed() >= every
        {
            tracing::debug!(sink = %self.name, "Resetting the thrift connection.");
            self.close();
        }
        if self.conn.is_none() {
            match ThriftClient::connect(&self.hostname, self.port, &self.client).await {
                Ok(c) => {
                    self.counters.connection_created.inc();
                    tracing::info!(sink = %self.name, host = %self.hostname, port = self.port, "Thrift sink connected.");
                    self.conn = Some((c, Instant::now()));
                }
                Err(e) => {
                    self.counters.connection_failed.inc();
                    return Err(DeliveryError::transient(e));
                }
            }
        }
        match &mut self.conn {
            Some((c, _)) => Ok(c),
            None => Err(DeliveryError::transient("thrift connection unavailable")),
        }
    }

    fn close(&mut self) {
        if self.conn.take().is_some() {
            self.counters.connection_closed.inc();
        }
    }
}

#[async_trait]
impl Sink for ThriftSink {
    fn batch_size(&self) -> usize {
        self.batch_size
    }

    async fn start(&mut self) -> Result<(), DeliveryError> {
        // Connect lazily: a source that is not up yet must not fail the sink's start.
        Ok(())
    }

    async fn deliver(&mut self, batch: &[Event]) -> Result<(), DeliveryError> {
        if batch.is_empty() {
            return Ok(());
        }
        let batch_size = self.batch_size;
        for chunk in batch.chunks(batch_size) {
            let client = self.connection().await?;
            let outcome = client.append_batch(chunk).await;
            match outcome {
                Ok(Status::Ok) => {}
                Ok(status) => {
                    // Flume's client marks itself dead on any non-OK answer: reconnect.
                    self.close();
                    return Err(DeliveryError::transient(format!(
                        "thrift source answered {status:?}"
                    )));
                }
                Err(e) => {
                    self.close();
                    return Err(DeliveryError::transient(e));
                }
            }
        }
        Ok(())
    }

    async fn stop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flumen_rpc::thrift::Call;
    use flumen_rpc::thrift::server::serve_connection;
    use std::sync::Mutex;
    use tokio::net::TcpListener;
    use tokio_util::sync::CancellationToken;

    fn props(pairs: &[(&str, &str)]) -> Props {
        let mut p = Props::new("a1.sinks.k1.", "sink k1");
        for (i, (k, v)) in pairs.iter().enumerate() {
            p.insert(*k, *v, i as u32 + 1);
        }
        p
    }

    fn sink(pairs: &[(&str, &str)]) -> Result<Box<dyn Sink>, String> {
        let cx = SinkBuildContext {
            name: "k1".into(),
            counters: Default::default(),
        };
        (DESCRIPTOR.build)(&props(pairs), &cx)
            .map(|(s, _)| s)
            .map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn config_checks() {
        let s = sink(&[("hostname", "h"), ("port", "1"), ("batch-size", "7")]).unwrap();
        assert_eq!(s.batch_size(), 7);
        assert!(
            sink(&[("port", "1")])
                .err()
                .unwrap_or_default()
                .contains("hostname")
        );
        assert!(
            sink(&[("hostname", "h"), ("port", "1"), ("ssl", "true")])
                .err()
                .unwrap_or_default()
                .contains("not yet supported")
        );
        assert_eq!(timeout(10), Duration::from_millis(20_000));
        assert_eq!(timeout(1500), Duration::from_millis(1500));
    }

    /// A server answering each call with the next status of `script` (then OK), recording
    /// the bodies of the batches it answered OK.
    async fn server(protocol: Protocol, script: Vec<Status>) -> (u16, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let g = got.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let (g, script) = (g.clone(), script.clone());
                tokio::spawn(async move {
                    let _ =
                        serve_connection(s, protocol, 1 << 20, CancellationToken::new(), |call| {
                            let next = script.lock().unwrap().next().unwrap_or(Status::Ok);
                            if let (Call::AppendBatch(v), Status::Ok) = (&call, next) {
                                let mut g = g.lock().unwrap();
                                g.extend(
                                    v.iter()
                                        .map(|e| String::from_utf8_lossy(&e.body).into_owned()),
                                );
                            }
                            async move { next }
                        })
                        .await;
                });
            }
        });
        (port, got)
    }

    #[tokio::test]
    async fn delivers_and_retries_after_failed_and_dropped_connections() {
        for (proto_key, protocol) in [("compact", Protocol::Compact), ("binary", Protocol::Binary)]
        {
            let (port, got) = server(protocol, vec![Status::Ok, Status::Failed]).await;
            let cx = SinkBuildContext {
                name: "k1".into(),
                counters: Default::default(),
            };
            let port_s = port.to_string();
            let (mut s, _) = (DESCRIPTOR.build)(
                &props(&[
                    ("hostname", "127.0.0.1"),
                    ("port", &port_s),
                    ("protocol", proto_key),
                    ("request-timeout", "1000"),
                ]),
                &cx,
            )
            .unwrap();
            let a = [Event::new("a1"), Event::new("a2")];
            s.deliver(&a).await.unwrap();
            let b = [Event::new("b1")];
            assert!(s.deliver(&b).await.is_err(), "FAILED must be an error");
            s.deliver(&b).await.unwrap();
            assert_eq!(*got.lock().unwrap(), ["a1", "a2", "b1"]);
            assert_eq!(cx.counters.connection_created.get(), 2);
            assert_eq!(cx.counters.connection_closed.get(), 1);
            s.stop().await;
        }
    }

    #[tokio::test]
    async fn a_dropped_connection_mid_batch_is_redelivered() {
        use tokio::io::AsyncReadExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        tokio::spawn(async move {
            // First connection: read part of the batch, then drop the socket unanswered.
            let (mut s, _) = listener.accept().await.unwrap();
            let mut part = [0u8; 8];
            s.read_exact(&mut part).await.unwrap();
            drop(s);
            let (s, _) = listener.accept().await.unwrap();
            let _ = serve_connection(
                s,
                Protocol::Compact,
                1 << 20,
                CancellationToken::new(),
                |c| {
                    if let Call::AppendBatch(v) = &c {
                        let mut g = g.lock().unwrap();
                        g.extend(
                            v.iter()
                                .map(|e| String::from_utf8_lossy(&e.body).into_owned()),
                        );
                    }
                    async { Status::Ok }
                },
            )
            .await;
        });
        let cx = SinkBuildContext {
            name: "k1".into(),
            counters: Default::default(),
        };
        let port_s = port.to_string();
        let (mut s, _) =
            (DESCRIPTOR.build)(&props(&[("hostname", "127.0.0.1"), ("port", &port_s)]), &cx)
                .unwrap();
        let a = [Event::new("x".repeat(100))];
        assert!(s.deliver(&a).await.is_err());
        s.deliver(&a).await.unwrap();
        assert_eq!(*got.lock().unwrap(), ["x".repeat(100)]);
        assert_eq!(cx.counters.connection_created.get(), 2);
    }

    #[tokio::test]
    async fn connection_refused_counts_a_failure() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port().to_string();
        drop(l);
        let cx = SinkBuildContext {
            name: "k1".into(),
            counters: Default::default(),
        };
        let (mut s, _) =
            (DESCRIPTOR.build)(&props(&[("hostname", "127.0.0.1"), ("port", &port)]), &cx).unwrap();
        assert!(s.deliver(&[Event::new("x")]).await.is_err());
        assert_eq!(cx.counters.connection_failed.get(), 1);
    }
}
