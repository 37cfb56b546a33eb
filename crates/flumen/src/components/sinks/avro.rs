//! The `avro` sink (Flume's `AvroSink`): sends each batch to the next agent's avro source (or
//! any Avro RPC server speaking `AvroSourceProtocol`) with `appendBatch` calls.
//!
//! Invariants:
//! - `deliver` returns `Ok` only after every call of the batch was answered `OK`; a `FAILED`
//!   status, an error reply, a timeout or a broken connection is a transient failure: the
//!   driver rolls the take back and the runner backs off exponentially;
//! - after any failure the connection is dropped (its state is unknown, as Flume's client
//!   marks itself dead) and the next call reconnects;
//! - `start` tries to connect but never fails (as Flume's `AbstractRpcSink`): a peer that is
//!   not up yet is a warning, and the first delivery connects;
//! - counters: `ConnectionCreated` per successful connect (TCP + handshake),
//!   `ConnectionFailed` per failed connect, `ConnectionClosed` per connection dropped.
//!
//! Built on [`flumen_rpc::client::RpcClient`] (`client.type = default`, one host =
//! `hostname:port`), which splits batches by `batch-size`, drops a failed connection and
//! reconnects on the next call.
//!
//! Differences from Flume: the trust store is a PEM file (not JKS) and defaults to the system
//! CA bundle. Like Flume, timeouts below 1000 ms are replaced by the default (with a warning
//! here), the server's host name is not verified, and deflate together with TLS runs zlib
//! outside TLS (Flume 1.11's layering).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flumen_config::{Diagnostic, Props};
use flumen_core::{DeliveryError, Event, Sink, SinkCounters};
use flumen_rpc::avro::ClientOptions;
use flumen_rpc::client::{ClientType, RpcClient, RpcClientConfig};
use serde::Deserialize;

use crate::components::sinks::tls_keys::TlsClientKeys;
use crate::components::sources::avro::CompressionType;
use crate::components::{BuildResult, SinkBuildContext, SinkDescriptor, build_with};

/// Registry entry of the `avro` sink.
pub const DESCRIPTOR: SinkDescriptor = SinkDescriptor {
    name: "avro",
    classes: &["org.apache.flume.sink.AvroSink"],
    description: "Sends events to an Avro RPC server (the next agent's avro source)",
    batch_size_key: Some("batch-size"),
    build,
};

/// Flume's default connect and request timeout, in milliseconds.
const DEFAULT_TIMEOUT_MS: u64 = 20_000;

/// Configuration of the `avro` sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AvroSinkConfig {
    /// Host to send to. Flume key: `hostname`. Required.
    pub hostname: Option<String>,
    /// Port to send to. Flume key: `port`. Required.
    pub port: Option<u16>,
    /// Events per transaction and per call. Flume key: `batch-size`. Default: 100.
    #[serde(rename = "batch-size")]
    pub batch_size: i64,
    /// Connect plus handshake limit, ms. Flume key: `connect-timeout`. Default: 20000.
    #[serde(rename = "connect-timeout")]
    pub connect_timeout: u64,
    /// One call's limit, ms. Flume key: `request-timeout`. Default: 20000.
    #[serde(rename = "request-timeout")]
    pub request_timeout: u64,
    /// Reconnect after this many seconds (0 = never). Flume key: `reset-connection-interval`.
    /// Default: 0.
    #[serde(rename = "reset-connection-interval")]
    pub reset_connection_interval: u64,
    /// `none` or `deflate`. Flume key: `compression-type`. Default: `none`.
    #[serde(rename = "compression-type")]
    pub compression_type: CompressionType,
    /// zlib level 0-9. Flume key: `compression-level`. Default: 6.
    #[serde(rename = "compression-level")]
    pub compression_level: u32,
    /// TLS: `ssl`, `truststore`, `trust-all-certs` and Flume's other TLS keys
    /// ([`TlsClientKeys`]).
    #[serde(rename = "*")]
    pub tls: TlsClientKeys,
    /// Flume key: `maxIoWorkers`; ignored by Flume 1.11 too.
    #[serde(rename = "maxIoWorkers")]
    pub max_io_workers: Option<String>,
}

impl Default for AvroSinkConfig {
    fn default() -> Self {
        Self {
            hostname: None,
            port: None,
            batch_size: 100,
            connect_timeout: DEFAULT_TIMEOUT_MS,
            request_timeout: DEFAULT_TIMEOUT_MS,
            reset_connection_interval: 0,
            compression_type: CompressionType::None,
            compression_level: 6,
            tls: TlsClientKeys::default(),
            max_io_workers: None,
        }
    }
}

impl AvroSinkConfig {
    /// Required keys and range checks.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.hostname.as_deref().is_none_or(|h| h.trim().is_empty()) {
            errors.push(props.error("hostname", "missing required property `hostname`"));
        }
        if self.port.is_none() {
            errors.push(props.error("port", "missing required property `port`"));
        }
        if self.compression_level > 9 {
            errors.push(props.error("compression-level", "`compression-level` must be 0 to 9"));
        }
        errors
    }
}

/// Flume replaces timeouts below one second by the default.
fn timeout(ms: u64, key: &str, props: &Props, warnings: &mut Vec<Diagnostic>) -> Duration {
    if ms < 1000 {
        warnings.push(props.warning(
            key,
            format!(
                "`{key}` = {ms} ms is below 1000 ms; using {DEFAULT_TIMEOUT_MS} ms as Flume does"
            ),
        ));
        Duration::from_millis(DEFAULT_TIMEOUT_MS)
    } else {
        Duration::from_millis(ms)
    }
}

fn build(props: &Props, cx: &SinkBuildContext) -> BuildResult<Box<dyn Sink>> {
    let (sink, mut warnings) =
        build_with(props, AvroSinkConfig::validate, |c: AvroSinkConfig| Ok(c))?;
    let c = sink;
    let tls = c.tls.connector(props)?;
    warnings.extend(TlsClientKeys::warnings(props));
    let connect_timeout = timeout(c.connect_timeout, "connect-timeout", props, &mut warnings);
    let request_timeout = timeout(c.request_timeout, "request-timeout", props, &mut warnings);
    // Flume's client replaces batch sizes below 1 by its default.
    let batch_size = if c.batch_size < 1 {
        100
    } else {
        usize::try_from(c.batch_size).unwrap_or(100)
    };
    let host = c.hostname.unwrap_or_default().trim().to_string();
    let config = RpcClientConfig {
        batch_size,
        connect_timeout,
        request_timeout,
        avro: ClientOptions {
            tls,
            deflate_level: (c.compression_type == CompressionType::Deflate)
                .then_some(c.compression_level),
            ..Default::default()
        },
        ..RpcClientConfig::single(ClientType::Default, &host, c.port.unwrap_or_default())
    };
    let reset_interval =
        (c.reset_connection_interval > 0).then(|| Duration::from_secs(c.reset_connection_interval));
    let sink = AvroSink::new(cx.name.clone(), config, reset_interval, cx.counters.clone());
    Ok((Box::new(sink) as Box<dyn Sink>, warnings))
}

/// The avro RPC sink.
#[derive(Debug)]
pub struct AvroSink {
    name: String,
    client: RpcClient,
    reset_interval: Option<Duration>,
}

impl AvroSink {
    fn new(
        name: String,
        config: RpcClientConfig,
        reset_interval: Option<Duration>,
        counters: Arc<SinkCounters>,
    ) -> Self {
        Self {
            client: RpcClient::new(config)
                .with_counters(counters)
                .with_name(name.clone()),
            name,
            reset_interval,
        }
    }
}

#[async_trait]
impl Sink for AvroSink {
    fn batch_size(&self) -> usize {
        self.client.batch_size()
    }

    async fn start(&mut self) -> Result<(), DeliveryError> {
        // Like Flume's AbstractRpcSink: try to connect now, but a peer that is not up yet only
        // earns a warning (counted as ConnectionFailed by the client); the first delivery
        // connects again.
        if let Err(error) = self.client.connect().await {
            tracing::warn!(sink = %self.name, %error, "Avro sink cannot connect yet; will retry on the first delivery.");
        }
        Ok(())
    }

    async fn deliver(&mut self, batch: &[Event]) -> Result<(), DeliveryError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let (Some(every), Some(age)) = (self.reset_interval, self.client.connection_age())
            && age >= every
        {
            tracing::debug!(sink = %self.name, "Resetting the connection (reset-connection-interval).");
            self.client.close().await;
        }
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
pub(crate) mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, bodies, context};
    use bytes::Bytes;
    use flumen_rpc::avro::{AvroHandler, Call, ServerOptions, Status};
    use futures_util::future::BoxFuture;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    fn props(pairs: &[(&str, &str)]) -> Props {
        let mut p = Props::new("a1.sinks.k1.", "sink k1");
        for (i, (k, v)) in pairs.iter().enumerate() {
            p.insert(*k, *v, i as u32 + 1);
        }
        p
    }

    fn build_props(pairs: &[(&str, &str)]) -> BuildResult<Box<dyn Sink>> {
        let cx = SinkBuildContext {
            name: "k1".into(),
            counters: Default::default(),
        };
        (DESCRIPTOR.build)(&props(pairs), &cx)
    }

    fn sink(port: u16) -> (AvroSink, Arc<SinkCounters>) {
        sink_with(port, Duration::from_secs(5))
    }

    /// The sink and its counters.
    fn sink_with(port: u16, request_timeout: Duration) -> (AvroSink, Arc<SinkCounters>) {
        let config = RpcClientConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout,
            ..RpcClientConfig::single(ClientType::Default, "127.0.0.1", port)
        };
        let counters = Arc::new(SinkCounters::default());
        let sink = AvroSink::new("k1".into(), config, None, counters.clone());
        (sink, counters)
    }

    fn events(n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event::new(Bytes::from(format!("e{i}"))))
            .collect()
    }

    #[test]
    fn config_keys_defaults_and_errors() {
        let errs = build_props(&[]).err().unwrap();
        let msgs: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
        assert!(
            msgs.contains(&"missing required property `hostname`"),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"missing required property `port`"),
            "{msgs:?}"
        );
        // TLS with deflate works (zlib outside TLS, as Flume 1.11).
        assert!(
            build_props(&[
                ("hostname", "h"),
                ("port", "1"),
                ("ssl", "true"),
                ("trust-all-certs", "true"),
                ("compression-type", "deflate"),
            ])
            .is_ok()
        );
        let errs = build_props(&[
            ("hostname", "h"),
            ("port", "1"),
            ("ssl", "true"),
            ("exclude-protocols", "TLSv1.2 TLSv1.3"),
        ])
        .err()
        .unwrap();
        assert!(
            errs[0].message.contains("no TLS protocol version"),
            "{errs:?}"
        );
        let (s, w) = build_props(&[
            ("hostname", "h"),
            ("port", "1"),
            ("batch-size", "0"),
            ("connect-timeout", "500"),
            ("request-timeout", "3000"),
            ("reset-connection-interval", "60"),
            ("compression-type", "deflate"),
            ("compression-level", "9"),
            ("trust-all-certs", "true"),
        ])
        .unwrap();
        assert_eq!(s.batch_size(), 100);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("below 1000 ms"));
        let (c, _) = props(&[]).deserialize::<AvroSinkConfig>().unwrap();
        assert_eq!(c, AvroSinkConfig::default());
        let table = crate::components::sinks::SINKS;
        for name in ["avro", "org.apache.flume.sink.AvroSink"] {
            assert_eq!(
                crate::components::lookup(table, name).map(|d| d.name).ok(),
                Some("avro")
            );
        }
    }

    /// A real avro source over loopback; FAILED when its channel refuses.
    #[tokio::test]
    async fn delivers_to_the_avro_source_and_fails_on_a_full_channel() {
        use crate::components::sources::{SOURCES, avro as src};
        let _ = (SOURCES, src::DESCRIPTOR.name);
        let ch = TestChannel::new(1000, 100);
        let cx = context(ch.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (source, _) = (src::DESCRIPTOR.build)(
            &{
                let mut p = Props::new("a1.sources.r1.", "source r1");
                p.insert("bind", "127.0.0.1", 1);
                p.insert("port", port.to_string(), 2);
                p
            },
            &crate::components::SourceBuildContext {
                name: "r1".into(),
                counters: Default::default(),
            },
        )
        .unwrap();
        drop(listener); // the source binds the port itself
        let task = tokio::spawn(source.run(cx.clone()));
        let (mut k, counters) = sink(port);
        let mut started = false;
        for _ in 0..200 {
            k.start().await.unwrap(); // never fails: a missing peer is only a warning
            if k.client.connection_age().is_some() {
                started = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(started);
        let failed_at_start = counters.connection_failed.get();
        k.deliver(&events(150)).await.unwrap();
        assert_eq!(ch.drain().len(), 150);
        ch.set_refusing(true);
        assert!(matches!(
            k.deliver(&events(3)).await,
            Err(DeliveryError::Transient(_))
        ));
        assert_eq!(counters.connection_closed.get(), 1);
        ch.set_refusing(false);
        k.deliver(&events(3)).await.unwrap();
        assert_eq!(bodies(&ch.drain()), ["e0", "e1", "e2"]);
        assert_eq!(counters.connection_created.get(), 2);
        // reset-connection-interval: an expired connection is replaced before the next call.
        k.reset_interval = Some(Duration::from_millis(1));
        tokio::time::sleep(Duration::from_millis(5)).await;
        k.deliver(&events(1)).await.unwrap();
        assert_eq!(counters.connection_created.get(), 3);
        assert_eq!(counters.connection_failed.get(), failed_at_start);
        assert_eq!(counters.connection_closed.get(), 2);
        k.stop().await;
        assert_eq!(counters.connection_closed.get(), 3);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    /// Stalls the first `drops` calls past the request timeout; records and answers OK
    /// otherwise.
    struct Flaky {
        drops: AtomicUsize,
        got: Mutex<Vec<Event>>,
    }

    impl AvroHandler for Flaky {
        fn call(&self, call: Call) -> BoxFuture<'_, Status> {
            Box::pin(async move {
                if self.drops.load(Ordering::SeqCst) > 0 {
                    self.drops.fetch_sub(1, Ordering::SeqCst);
                    // Answers too late: the sink's request timeout fires first.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    return Status::Failed;
                }
                if let Call::AppendBatch(es) = call {
                    self.got.lock().unwrap().extend(es);
                }
                Status::Ok
            })
        }
    }

    #[tokio::test]
    async fn redelivers_after_a_lost_connection_and_timeouts() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let h = Arc::new(Flaky {
            drops: AtomicUsize::new(1),
            got: Mutex::default(),
        });
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(flumen_rpc::avro::serve(
            listener,
            h.clone(),
            ServerOptions::default(),
            None,
            stop.clone(),
        ));
        // Below Flume's 1000 ms floor, which only the config parser applies.
        let (mut k, counters) = sink_with(port, Duration::from_millis(300));
        let batch = events(10);
        assert!(k.deliver(&batch).await.is_err(), "timed out");
        k.deliver(&batch).await.unwrap();
        assert_eq!(h.got.lock().unwrap().len(), 10);
        stop.cancel();
        server.await.unwrap();
        // Server gone: a transient error, counted as a failed connection.
        assert!(k.deliver(&batch).await.is_err());
        assert!(matches!(
            k.deliver(&batch).await,
            Err(DeliveryError::Transient(_))
        ));
        assert!(counters.connection_failed.get() >= 1);
    }

    /// A self-signed certificate for `flumen.test` and its key in one PEM file (a keystore
    /// for a test server; clients use `trust-all-certs`), made with the `openssl` CLI; `None`
    /// (with a note) when it is missing.
    pub(crate) fn self_signed_keystore(dir: &std::path::Path) -> Option<std::path::PathBuf> {
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-subj",
                "/CN=flumen.test",
            ])
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            eprintln!("SKIPPED: openssl CLI unavailable; TLS not tested");
            return None;
        }
        let mut keystore = std::fs::read(dir.join("cert.pem")).ok()?;
        keystore.extend(std::fs::read(dir.join("key.pem")).ok()?);
        let ks = dir.join("keystore.pem");
        std::fs::write(&ks, keystore).ok()?;
        Some(ks)
    }

    /// `ssl` + `compression-type = deflate` from the sink's keys to a TLS+deflate server
    /// (zlib outside TLS). Skipped when the `openssl` CLI is missing.
    #[tokio::test]
    async fn tls_with_deflate_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let Some(ks) = self_signed_keystore(dir.path()) else {
            return;
        };
        let versions = flumen_rpc::tls::versions(&[], &[]).unwrap();
        let acceptor = flumen_rpc::tls::TlsAcceptor::from(
            flumen_rpc::tls::server_config(&ks, &versions).unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let h = Arc::new(Flaky {
            drops: AtomicUsize::new(0),
            got: Mutex::default(),
        });
        let stop = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(flumen_rpc::avro::serve(
            listener,
            h.clone(),
            ServerOptions {
                tls: Some(acceptor),
                deflate: true,
                ..Default::default()
            },
            None,
            stop.clone(),
        ));
        let port_s = port.to_string();
        let (mut k, w) = build_props(&[
            ("hostname", "127.0.0.1"),
            ("port", &port_s),
            ("ssl", "true"),
            ("trust-all-certs", "true"),
            ("compression-type", "deflate"),
            ("compression-level", "9"),
            ("batch-size", "4"),
        ])
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        k.deliver(&events(10)).await.unwrap();
        assert_eq!(h.got.lock().unwrap().len(), 10);
        k.stop().await;
        stop.cancel();
        server.await.unwrap();
    }
}
