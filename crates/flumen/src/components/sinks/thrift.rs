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
//! Built on [`flumen_rpc::client::RpcClient`] (`client.type = thrift`, one host =
//! `hostname:port`), which splits batches by `batch-size`, drops a failed connection and
//! reconnects on the next call.
//!
//! TLS (`ssl = true`): TLS from the first byte with the frames inside, as Flume's thrift
//! sink; the server's chain is checked against `truststore` (a PEM file; default: the system
//! CA bundle), the host name is not.
//!
//! Differences from Flume: `kerberos` is not supported (configuration error); the trust
//! store is PEM, not JKS (`truststore-password`/`-type` are ignored with a warning);
//! `trust-all-certs` works here too (Flume has it on the avro sink only); the user guide's
//! `connection-reset-interval` is honoured when `reset-connection-interval` is not set
//! (Flume's code reads only the latter). Like Flume's client, `protocol` is checked case-insensitively but only the exact value
//! `binary` selects the binary protocol; other values fall back to compact with a warning.

use std::time::Duration;

use async_trait::async_trait;
use flumen_config::{Diagnostic, Props};
use flumen_core::{DeliveryError, Event, Sink};
use flumen_rpc::client::{ClientType, RpcClient, RpcClientConfig};
use flumen_rpc::thrift::{ClientConfig, DEFAULT_MAX_FRAME, Protocol};
use serde::Deserialize;

use crate::components::sinks::tls_keys::TlsClientKeys;
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
    /// The user guide's name of `reset-connection-interval` (Flume's code ignores it); used
    /// when `reset-connection-interval` is not set. Key: `connection-reset-interval`.
    #[serde(rename = "connection-reset-interval")]
    pub connection_reset_interval: Option<u64>,
    /// `compact` or `binary`. Flume key: `protocol`. Default: `compact`.
    pub protocol: String,
    /// TLS: `ssl`, `truststore`, `trust-all-certs` and Flume's other TLS keys
    /// ([`TlsClientKeys`]).
    #[serde(rename = "*")]
    pub tls: TlsClientKeys,
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
            connection_reset_interval: None,
            protocol: "compact".into(),
            tls: TlsClientKeys::default(),
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

    /// `reset-connection-interval`, or the user guide's `connection-reset-interval` when only
    /// that one is set; `None` = never.
    fn reset_interval(&self) -> Option<Duration> {
        let every = match (
            self.reset_connection_interval,
            self.connection_reset_interval,
        ) {
            (0, Some(s)) => s,
            (s, _) => s,
        };
        (every > 0).then(|| Duration::from_secs(every))
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
    let (c, mut warnings) =
        build_with(props, ThriftSinkConfig::validate, |c: ThriftSinkConfig| {
            Ok(c)
        })?;
    let tls = c.tls.connector(props)?;
    warnings.extend(TlsClientKeys::warnings(props));
    let host = c.hostname.as_deref().unwrap_or_default().trim().to_string();
    let config = RpcClientConfig {
        // Flume: batch sizes below 1 mean the default.
        batch_size: if c.batch_size == 0 { 100 } else { c.batch_size },
        connect_timeout: timeout(c.connect_timeout),
        request_timeout: timeout(c.request_timeout),
        thrift: ClientConfig {
            protocol: c.wire_protocol(),
            max_frame: c.max_frame_length,
            tls,
            ..Default::default()
        },
        ..RpcClientConfig::single(ClientType::Thrift, &host, c.port.unwrap_or_default())
    };
    let sink: Box<dyn Sink> = Box::new(ThriftSink {
        name: cx.name.clone(),
        client: RpcClient::new(config)
            .with_counters(cx.counters.clone())
            .with_name(cx.name.clone()),
        reset_interval: c.reset_interval(),
    });
    Ok((sink, warnings))
}

/// The `thrift` sink. Called by a single task (its driver).
#[derive(Debug)]
pub struct ThriftSink {
    name: String,
    client: RpcClient,
    reset_interval: Option<Duration>,
}

#[async_trait]
impl Sink for ThriftSink {
    fn batch_size(&self) -> usize {
        self.client.batch_size()
    }

    async fn start(&mut self) -> Result<(), DeliveryError> {
        // Connect lazily: a source that is not up yet must not fail the sink's start.
        Ok(())
    }

    async fn deliver(&mut self, batch: &[Event]) -> Result<(), DeliveryError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let (Some(every), Some(age)) = (self.reset_interval, self.client.connection_age())
            && age >= every
        {
            tracing::debug!(sink = %self.name, "Resetting the thrift connection.");
            self.client.close().await;
        }
        // Any non-OK answer or failure drops the connection (Flume's client marks itself
        // dead); the next call reconnects.
        self.client
            .append_batch(batch)
            .await
            .map_err(DeliveryError::transient)
    }

    async fn stop(&mut self) {
        self.client.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flumen_rpc::thrift::server::serve_connection;
    use flumen_rpc::thrift::{Call, Status};
    use std::sync::Arc;
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
            sink(&[
                ("hostname", "h"),
                ("port", "1"),
                ("ssl", "true"),
                ("trust-all-certs", "true"),
            ])
            .is_ok()
        );
        let e = sink(&[
            ("hostname", "h"),
            ("port", "1"),
            ("ssl", "true"),
            ("truststore", "/nonexistent/ca.pem"),
        ])
        .err()
        .unwrap_or_default();
        assert!(e.contains("truststore") && e.contains("cannot read"), "{e}");
        let e = sink(&[
            ("hostname", "h"),
            ("port", "1"),
            ("ssl", "true"),
            ("include-protocols", "TLSv1.1"),
        ])
        .err()
        .unwrap_or_default();
        assert!(e.contains("no TLS protocol version"), "{e}");
        assert_eq!(timeout(10), Duration::from_millis(20_000));
        assert_eq!(timeout(1500), Duration::from_millis(1500));
        let interval = |pairs: &[(&str, &str)]| {
            let (c, _) = props(pairs).deserialize::<ThriftSinkConfig>().unwrap();
            c.reset_interval()
        };
        assert_eq!(interval(&[]), None);
        assert_eq!(
            interval(&[("connection-reset-interval", "5")]),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            interval(&[
                ("connection-reset-interval", "5"),
                ("reset-connection-interval", "7")
            ]),
            Some(Duration::from_secs(7))
        );
        let cx = SinkBuildContext {
            name: "k1".into(),
            counters: Default::default(),
        };
        let (_, w) = (DESCRIPTOR.build)(
            &props(&[
                ("hostname", "h"),
                ("port", "1"),
                ("truststore-type", "JKS"),
                ("include-cipher-suites", "X"),
            ]),
            &cx,
        )
        .unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].message.contains("is ignored"), "{w:?}");
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

    /// Batches longer than `batch-size` go out in several calls; a failure in any fails the
    /// delivery. `reset-connection-interval` replaces an old connection before a call.
    #[tokio::test]
    async fn splits_batches_and_resets_the_connection() {
        let (port, got) = server(
            Protocol::Compact,
            vec![Status::Ok, Status::Ok, Status::Failed],
        )
        .await;
        let cx = SinkBuildContext {
            name: "k1".into(),
            counters: Default::default(),
        };
        let port_s = port.to_string();
        let (mut s, _) = (DESCRIPTOR.build)(
            &props(&[
                ("hostname", "127.0.0.1"),
                ("port", &port_s),
                ("batch-size", "2"),
                ("reset-connection-interval", "1"),
            ]),
            &cx,
        )
        .unwrap();
        let five: Vec<Event> = (0..5).map(|i| Event::new(format!("e{i}"))).collect();
        assert!(
            s.deliver(&five).await.is_err(),
            "the third call is answered FAILED"
        );
        assert_eq!(*got.lock().unwrap(), ["e0", "e1", "e2", "e3"]);
        s.deliver(&five).await.unwrap();
        assert_eq!(got.lock().unwrap().len(), 9);
        assert_eq!(
            (
                cx.counters.connection_created.get(),
                cx.counters.connection_closed.get()
            ),
            (2, 1)
        );
        // The connection is one second old after this wait: the next delivery replaces it.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        s.deliver(&five[..1]).await.unwrap();
        assert_eq!(
            (
                cx.counters.connection_created.get(),
                cx.counters.connection_closed.get()
            ),
            (3, 2)
        );
    }

    /// `ssl = true` against a TLS thrift server, both protocols; a plain-text sink gets
    /// nowhere with it.
    #[tokio::test]
    async fn delivers_over_tls() {
        let dir = tempfile::tempdir().unwrap();
        let Some(ks) = crate::components::sinks::avro::tests::self_signed_keystore(dir.path())
        else {
            return;
        };
        let versions = flumen_rpc::tls::versions(&[], &[]).unwrap();
        let acceptor = flumen_rpc::tls::TlsAcceptor::from(
            flumen_rpc::tls::server_config(&ks, &versions).unwrap(),
        );
        for (key, protocol) in [("compact", Protocol::Compact), ("binary", Protocol::Binary)] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let got = Arc::new(Mutex::new(Vec::new()));
            let (g, acceptor) = (got.clone(), acceptor.clone());
            tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    let (g, acceptor) = (g.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        let _ =
                            flumen_rpc::thrift::server::serve_accepted(
                                s,
                                Some(&acceptor),
                                protocol,
                                1 << 20,
                                CancellationToken::new(),
                                |call| {
                                    if let Call::AppendBatch(v) = &call {
                                        g.lock().unwrap().extend(v.iter().map(|e| {
                                            String::from_utf8_lossy(&e.body).into_owned()
                                        }));
                                    }
                                    async { Status::Ok }
                                },
                            )
                            .await;
                    });
                }
            });
            let port_s = port.to_string();
            let base = [
                ("hostname", "127.0.0.1"),
                ("port", port_s.as_str()),
                ("protocol", key),
                ("connect-timeout", "2000"),
                ("request-timeout", "2000"),
            ];
            let mut plain = sink(&base).unwrap();
            assert!(
                plain.deliver(&[Event::new("plain")]).await.is_err(),
                "{key}"
            );
            let with_tls: Vec<_> = base
                .iter()
                .copied()
                .chain([("ssl", "true"), ("trust-all-certs", "true")])
                .collect();
            let mut s = sink(&with_tls).unwrap();
            s.deliver(&[Event::new("t1"), Event::new("t2")])
                .await
                .unwrap();
            assert_eq!(*got.lock().unwrap(), ["t1", "t2"], "{key}");
            s.stop().await;
        }
    }
}
