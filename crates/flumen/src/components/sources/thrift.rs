//! The `thrift` source (Flume's `ThriftSource`): a Thrift server for the
//! `ThriftSourceProtocol` service (`append`, `appendBatch`) over `TFramedTransport`, with the
//! compact (default) or binary protocol. Other Flume agents' thrift sinks and Thrift RPC
//! clients send to it.
//!
//! Each accepted connection runs in its own task (the shared accept loop and TLS handshake in
//! [`super::tcp_listener`]), so shutdown waits for every connection to answer the call in hand.
//! The wire work is in [`flumen_rpc::thrift`].
//!
//! Invariants:
//! - a call is answered `OK` only after its events are committed to every required channel;
//!   `FAILED` otherwise (channel full, ...): never `OK` for events the source did not keep.
//!   An `appendBatch` is one channel transaction;
//! - `append` keeps `AppendReceived/Accepted`, `appendBatch` keeps
//!   `AppendBatchReceived/Accepted`; both keep `EventReceived/Accepted`, and a refused call
//!   counts `ChannelWriteFail`; `OpenConnectionCount` follows the live connections;
//! - garbage, a frame over the limit, a wrong protocol or a failed TLS handshake closes that
//!   connection only.
//!
//! TLS (`ssl = true`, `flume-rpc.md` B.3): TLS from the first byte, frames inside; the keys
//! and their checks are the avro source's ([`super::avro::TlsServerKeys`]): a PEM keystore
//! (certificate chain + key; a JKS is refused with the conversion commands),
//! include/exclude-protocols; `keystore-password`, `keystore-type` and the cipher lists are
//! ignored with a warning.
//!
//! Differences from Flume: `kerberos` is not supported (a configuration error rather than a
//! silently unauthenticated server). `threads` bounds the calls handled at once instead of
//! Flume's worker threads. The keystore is PEM, not JKS.

use std::sync::Arc;

use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Source, SourceContext, SourceError};
use flumen_rpc::thrift::{Call, DEFAULT_MAX_FRAME, Protocol, Status, server::serve_stream};
use flumen_rpc::tls::TlsAcceptor;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::tcp_listener::{self, ServeOptions};
use crate::components::sources::tls_keys::TlsServerKeys;
use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

/// Registry entry of the `thrift` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "thrift",
    classes: &["org.apache.flume.source.ThriftSource"],
    description: "Thrift RPC server (framed, compact or binary) for Flume's thrift sinks and clients",
    batch_size_key: None,
    build,
};

/// Configuration of the `thrift` source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ThriftSourceConfig {
    /// Host name or IP address to listen on. Flume key: `bind`. Required.
    pub bind: Option<String>,
    /// TCP port to listen on. Flume key: `port`. Required.
    pub port: Option<u16>,
    /// Most calls handled at once. Flume key: `threads`. Default: unlimited.
    pub threads: Option<usize>,
    /// `compact` or `binary`, compared exactly like Flume. Flume key: `protocol`.
    /// Default: `compact`.
    pub protocol: String,
    /// TLS: `ssl`, `keystore` and Flume's other TLS keys ([`TlsServerKeys`]).
    #[serde(rename = "*")]
    pub tls: TlsServerKeys,
    /// Kerberos SASL. Flume key: `kerberos`. Default: false. Not supported.
    pub kerberos: bool,
    /// Largest accepted frame in bytes (flumen only). Key: `max-frame-length`.
    /// Default: 16384000 (Flume's `TFastFramedTransport` limit).
    #[serde(rename = "max-frame-length")]
    pub max_frame_length: usize,
}

impl Default for ThriftSourceConfig {
    fn default() -> Self {
        Self {
            bind: None,
            port: None,
            threads: None,
            protocol: "compact".into(),
            tls: TlsServerKeys::default(),
            kerberos: false,
            max_frame_length: DEFAULT_MAX_FRAME,
        }
    }
}

impl ThriftSourceConfig {
    /// Required keys and unsupported options; every problem found, located at its key.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.bind.as_deref().is_none_or(|b| b.trim().is_empty()) {
            errors.push(props.error("bind", "missing required property `bind`"));
        }
        if self.port.is_none() {
            errors.push(props.error("port", "missing required property `port`"));
        }
        if self.threads == Some(0) {
            errors.push(props.error("threads", "`threads` must be at least 1"));
        }
        if !matches!(self.protocol.trim(), "compact" | "binary") {
            errors.push(props.error(
                "protocol",
                format!(
                    "unsupported protocol `{}`: use `compact` or `binary`",
                    self.protocol
                ),
            ));
        }
        errors.extend(self.tls.validate(props));
        if self.kerberos {
            errors.push(props.error(
                "kerberos",
                "`kerberos = true` is not supported by the thrift source",
            ));
        }
        if self.max_frame_length == 0 {
            errors.push(props.error("max-frame-length", "`max-frame-length` must be at least 1"));
        }
        errors
    }
}

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    let (source, mut warnings) = build_with(props, ThriftSourceConfig::validate, |c| {
        let tls = c.tls.acceptor(props)?;
        Ok(Box::new(ThriftSource {
            bind: c.bind.unwrap_or_default().trim().to_string(),
            port: c.port.unwrap_or_default(),
            protocol: if c.protocol.trim() == "binary" {
                Protocol::Binary
            } else {
                Protocol::Compact
            },
            threads: c.threads,
            max_frame: c.max_frame_length,
            tls,
        }) as Box<dyn Source>)
    })?;
    warnings.extend(TlsServerKeys::warnings(props));
    Ok((source, warnings))
}

/// The thrift source.
pub struct ThriftSource {
    bind: String,
    port: u16,
    protocol: Protocol,
    threads: Option<usize>,
    max_frame: usize,
    /// `ssl = true`: the handshake runs first on every accepted connection.
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for ThriftSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThriftSource")
            .field("bind", &self.bind)
            .field("port", &self.port)
            .field("protocol", &self.protocol)
            .field("threads", &self.threads)
            .field("max_frame", &self.max_frame)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

#[async_trait::async_trait]
impl Source for ThriftSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let listener = tcp_listener::bind(&self.bind, self.port).await?;
        self.serve(listener, cx).await
    }
}

impl ThriftSource {
    /// Accepts connections on `listener` until shutdown, then waits for every connection task.
    async fn serve(
        self: Box<Self>,
        listener: TcpListener,
        cx: SourceContext,
    ) -> Result<(), SourceError> {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(source = %cx.name, %addr, protocol = ?self.protocol, ssl = self.tls.is_some(), "Thrift source listening.");
        }
        let limit = self
            .threads
            .map(|n| Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS))));
        let options = ServeOptions {
            tls: self.tls.clone(),
            // Every call waits for its small reply.
            nodelay: true,
        };
        let (protocol, max_frame) = (self.protocol, self.max_frame);
        let conn_cx = cx.clone();
        tcp_listener::serve(vec![listener], &cx, options, move |a| {
            let (cx, limit) = (conn_cx.clone(), limit.clone());
            async move {
                let shutdown = cx.shutdown.clone();
                let result = serve_stream(a.stream, protocol, max_frame, shutdown, |call| {
                    handle(cx.clone(), limit.clone(), call)
                })
                .await;
                if let Err(error) = result {
                    tracing::warn!(source = %cx.name, peer = %a.peer, %error, "Thrift connection closed on an error.");
                }
            }
        })
        .await;
        Ok(())
    }
}

/// Commits one call's events and returns the status to answer.
async fn handle(cx: SourceContext, limit: Option<Arc<Semaphore>>, call: Call) -> Status {
    let _permit = match &limit {
        Some(s) => s.acquire().await.ok(),
        None => None,
    };
    match call {
        Call::AppendBatch(events) => match cx.deliver(events).await {
            Ok(()) => Status::Ok,
            Err(error) => {
                tracing::warn!(source = %cx.name, %error, "Thrift source could not commit a batch; answering FAILED.");
                Status::Failed
            }
        },
        Call::Append(event) => append_one(&cx, event).await,
        Call::Unknown => Status::Unknown,
    }
}

/// `append`: counted in Flume's `Append*` counters by `deliver_append`.
async fn append_one(cx: &SourceContext, event: Event) -> Status {
    match cx.deliver_append(event).await {
        Ok(()) => Status::Ok,
        Err(error) => {
            tracing::warn!(source = %cx.name, %error, "Thrift source could not commit an event; answering FAILED.");
            Status::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, bodies, context};
    use flumen_rpc::thrift::{ClientConfig, ThriftClient};
    use std::time::Duration;

    fn props(pairs: &[(&str, &str)]) -> Props {
        let mut p = Props::new("a1.sources.r1.", "source r1");
        for (i, (k, v)) in pairs.iter().enumerate() {
            p.insert(*k, *v, i as u32 + 1);
        }
        p
    }

    fn build_props(pairs: &[(&str, &str)]) -> BuildResult<Box<dyn Source>> {
        let cx = SourceBuildContext {
            name: "r1".into(),
            counters: Default::default(),
        };
        (DESCRIPTOR.build)(&props(pairs), &cx)
    }

    fn errors(pairs: &[(&str, &str)]) -> String {
        match build_props(pairs) {
            Ok(_) => String::new(),
            Err(e) => e.iter().map(|d| format!("{d:?}")).collect(),
        }
    }

    #[test]
    fn config_checks() {
        assert!(build_props(&[("bind", "127.0.0.1"), ("port", "1")]).is_ok());
        assert!(build_props(&[("bind", "0.0.0.0"), ("port", "1"), ("protocol", "binary")]).is_ok());
        assert!(errors(&[("port", "1")]).contains("bind"));
        assert!(errors(&[("bind", "h"), ("port", "1"), ("protocol", "json")]).contains("json"));
        assert!(
            errors(&[("bind", "h"), ("port", "1"), ("ssl", "true")]).contains("needs `keystore`")
        );
        assert!(errors(&[("bind", "h"), ("port", "1"), ("kerberos", "true")]).contains("kerberos"));
    }

    #[tokio::test]
    async fn answers_ok_after_commit_and_failed_when_refused() {
        for protocol in [Protocol::Compact, Protocol::Binary] {
            let ch = TestChannel::new(100, 100);
            let cx = context(ch.clone());
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let src = Box::new(ThriftSource {
                bind: "127.0.0.1".into(),
                port,
                protocol,
                threads: Some(2),
                max_frame: DEFAULT_MAX_FRAME,
                tls: None,
            });
            let task = tokio::spawn(src.serve(listener, cx.clone()));
            let config = ClientConfig {
                protocol,
                ..ClientConfig::default()
            };
            let mut c = ThriftClient::connect("127.0.0.1", port, &config)
                .await
                .unwrap();
            assert_eq!(c.append(&Event::new("one")).await.unwrap(), Status::Ok);
            let batch = [Event::new("two"), Event::new("three")];
            assert_eq!(c.append_batch(&batch).await.unwrap(), Status::Ok);
            assert_eq!(bodies(&ch.drain()), ["one", "two", "three"]);
            ch.set_refusing(true);
            assert_eq!(c.append_batch(&batch).await.unwrap(), Status::Failed);
            assert_eq!(c.append(&batch[0]).await.unwrap(), Status::Failed);
            assert!(ch.drain().is_empty());
            let k = &cx.counters;
            assert_eq!(k.append_received.get(), 2);
            assert_eq!(k.append_accepted.get(), 1);
            assert_eq!(k.append_batch_received.get(), 2);
            assert_eq!(k.append_batch_accepted.get(), 1);
            assert_eq!(k.event_received.get(), 6);
            assert_eq!(k.event_accepted.get(), 3);
            assert_eq!(k.channel_write_fail.get(), 2);
            assert_eq!(k.open_connection.get(), 1);
            cx.shutdown.cancel();
            task.await.unwrap().unwrap();
            assert_eq!(k.open_connection.get(), 0);
        }
    }

    #[tokio::test]
    async fn tls_source_serves_tls_clients_and_refuses_plain_ones() {
        let dir = tempfile::tempdir().unwrap();
        let Some((keystore, ca)) = super::super::avro::tests::test_certs(dir.path()) else {
            return;
        };
        let ks = keystore.display().to_string();
        // Keys: a PEM keystore works; the ignored Flume keys warn; a JKS is refused with the
        // conversion hint.
        let (_, warnings) = build_props(&[
            ("bind", "127.0.0.1"),
            ("port", "0"),
            ("ssl", "true"),
            ("keystore", &ks),
            ("keystore-password", "secret"),
            ("keystore-type", "JKS"),
            ("include-protocols", "TLSv1.2 TLSv1.3"),
            ("exclude-cipher-suites", "X"),
        ])
        .unwrap();
        let w: Vec<&str> = warnings.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w.iter().all(|m| m.contains("is ignored")), "{w:?}");
        std::fs::write(dir.path().join("ks.jks"), [0xfe, 0xed, 0xfe, 0xed]).unwrap();
        let jks = dir.path().join("ks.jks").display().to_string();
        let e = errors(&[
            ("bind", "h"),
            ("port", "1"),
            ("ssl", "true"),
            ("keystore", &jks),
        ]);
        assert!(e.contains("not a PEM file") && e.contains("keytool"), "{e}");
        let e = errors(&[
            ("bind", "h"),
            ("port", "1"),
            ("ssl", "true"),
            ("keystore", &ks),
            ("exclude-protocols", "TLSv1.2 TLSv1.3"),
        ]);
        assert!(e.contains("no TLS protocol version"), "{e}");

        let (c, _) = props(&[("ssl", "true"), ("keystore", &ks)])
            .deserialize::<ThriftSourceConfig>()
            .unwrap();
        let tls = c.tls.acceptor(&props(&[])).unwrap();
        let ch = TestChannel::new(100, 100);
        let cx = context(ch.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let src = Box::new(ThriftSource {
            bind: "127.0.0.1".into(),
            port,
            protocol: Protocol::Compact,
            threads: None,
            max_frame: DEFAULT_MAX_FRAME,
            tls,
        });
        let task = tokio::spawn(src.serve(listener, cx.clone()));
        let v = flumen_rpc::tls::versions(&[], &[]).unwrap();
        let config = ClientConfig {
            tls: Some(flumen_rpc::tls::TlsConnector::from(
                flumen_rpc::tls::client_config(Some(&ca), false, &v).unwrap(),
            )),
            ..ClientConfig::default()
        };
        // A plain client first: refused, and the source keeps serving.
        let plain = ClientConfig {
            request_timeout: Duration::from_secs(5),
            ..ClientConfig::default()
        };
        let mut p = ThriftClient::connect("127.0.0.1", port, &plain)
            .await
            .unwrap();
        assert!(p.append(&Event::new("plain")).await.is_err());
        let mut c = ThriftClient::connect("127.0.0.1", port, &config)
            .await
            .unwrap();
        assert_eq!(c.append(&Event::new("one")).await.unwrap(), Status::Ok);
        let batch = [Event::new("two"), Event::new("three")];
        assert_eq!(c.append_batch(&batch).await.unwrap(), Status::Ok);
        assert_eq!(bodies(&ch.drain()), ["one", "two", "three"]);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
