//! The `avro` sink (Flume's `AvroSink`): sends each batch to the next agent's avro source (or
//! any Avro RPC server speaking `AvroSourceProtocol`) with `appendBatch` calls.
//!
//! Invariants:
//! - `deliver` returns `Ok` only after every call of the batch was answered `OK`; a `FAILED`
//!   status, an error reply, a timeout or a broken connection is a transient failure: the
//!   driver rolls the take back and the runner backs off exponentially;
//! - after any failure the connection is dropped (its state is unknown, as Flume's client
//!   marks itself dead) and the next call reconnects;
//! - counters: `ConnectionCreated` per successful connect (TCP + handshake),
//!   `ConnectionFailed` per failed connect, `ConnectionClosed` per connection dropped.
//!
//! Differences from Flume: the trust store is a PEM file (not JKS) and defaults to the system
//! CA bundle; TLS together with deflate is refused (Flume 1.11 puts zlib outside TLS). Like
//! Flume, timeouts below 1000 ms are replaced by the default (with a warning here), and the
//! server's host name is not verified.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use flumen_config::{Diagnostic, Props};
use flumen_core::{DeliveryError, Event, Sink, SinkCounters};
use flumen_rpc::avro::tls::{self, TlsConnector};
use flumen_rpc::avro::{AvroClient, ClientOptions};
use serde::Deserialize;

use crate::components::sources::avro::{CompressionType, list};
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
    /// Connect with TLS. Flume key: `ssl`. Default: false.
    pub ssl: bool,
    /// Accept any server certificate. Flume key: `trust-all-certs`. Default: false.
    #[serde(rename = "trust-all-certs")]
    pub trust_all_certs: bool,
    /// PEM file of trusted CA certificates; without it the system CA bundle is used. Flume key:
    /// `truststore`.
    pub truststore: Option<String>,
    /// Flume key: `truststore-password`. Unused: PEM needs none.
    #[serde(rename = "truststore-password")]
    pub truststore_password: Option<String>,
    /// Flume key: `truststore-type` (JKS). Unused: the file must be PEM.
    #[serde(rename = "truststore-type")]
    pub truststore_type: Option<String>,
    /// TLS versions not to offer. Flume key: `exclude-protocols`.
    #[serde(rename = "exclude-protocols")]
    pub exclude_protocols: Option<String>,
    /// TLS versions to offer (default TLSv1.2 and TLSv1.3). Flume key: `include-protocols`.
    #[serde(rename = "include-protocols")]
    pub include_protocols: Option<String>,
    /// Flume key: `exclude-cipher-suites`. Ignored with a warning.
    #[serde(rename = "exclude-cipher-suites")]
    pub exclude_cipher_suites: Option<String>,
    /// Flume key: `include-cipher-suites`. Ignored with a warning.
    #[serde(rename = "include-cipher-suites")]
    pub include_cipher_suites: Option<String>,
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
            ssl: false,
            trust_all_certs: false,
            truststore: None,
            truststore_password: None,
            truststore_type: None,
            exclude_protocols: None,
            include_protocols: None,
            exclude_cipher_suites: None,
            include_cipher_suites: None,
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
        if self.ssl && self.compression_type == CompressionType::Deflate {
            errors.push(props.error(
                "compression-type",
                "`compression-type = deflate` together with `ssl = true` is not supported yet",
            ));
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
    let tls = if c.ssl {
        let versions = tls::versions(&list(&c.include_protocols), &list(&c.exclude_protocols))
            .map_err(|e| vec![props.error("include-protocols", e.to_string())])?;
        let config = tls::client_config(
            c.truststore.as_deref().map(Path::new),
            c.trust_all_certs,
            &versions,
        )
        .map_err(|e| vec![props.error("truststore", e.to_string())])?;
        Some(TlsConnector::from(config))
    } else {
        None
    };
    for key in ["include-cipher-suites", "exclude-cipher-suites"] {
        if props.get(key).is_some() {
            warnings.push(props.warning(
                key,
                format!("`{key}` is ignored: flumen offers rustls' default cipher suites"),
            ));
        }
    }
    let options = ClientOptions {
        tls,
        connect_timeout: timeout(c.connect_timeout, "connect-timeout", props, &mut warnings),
        request_timeout: timeout(c.request_timeout, "request-timeout", props, &mut warnings),
        deflate_level: (c.compression_type == CompressionType::Deflate)
            .then_some(c.compression_level),
        ..Default::default()
    };
    // Flume's client replaces batch sizes below 1 by its default.
    let batch_size = if c.batch_size < 1 {
        100
    } else {
        c.batch_size as usize
    };
    let sink = AvroSink {
        name: cx.name.clone(),
        host: c.hostname.unwrap_or_default().trim().to_string(),
        port: c.port.unwrap_or_default(),
        batch_size,
        options,
        reset_interval: (c.reset_connection_interval > 0)
            .then(|| Duration::from_secs(c.reset_connection_interval)),
        client: None,
        counters: cx.counters.clone(),
    };
    Ok((Box::new(sink) as Box<dyn Sink>, warnings))
}

/// The avro RPC sink.
#[derive(Debug)]
pub struct AvroSink {
    name: String,
    host: String,
    port: u16,
    batch_size: usize,
    options: ClientOptions,
    reset_interval: Option<Duration>,
    /// The live connection and when it was made.
    client: Option<(AvroClient, Instant)>,
    counters: Arc<SinkCounters>,
}

impl AvroSink {
    async fn connect(&mut self) -> Result<(), DeliveryError> {
        match AvroClient::connect(&self.host, self.port, &self.options).await {
            Ok(c) => {
                self.counters.connection_created.inc();
                tracing::info!(sink = %self.name, host = %self.host, port = self.port, "Avro sink connected.");
                self.client = Some((c, Instant::now()));
                Ok(())
            }
            Err(e) => {
                self.counters.connection_failed.inc();
                Err(DeliveryError::transient(e))
            }
        }
    }

    fn close(&mut self) {
        if self.client.take().is_some() {
            self.counters.connection_closed.inc();
        }
    }
}

#[async_trait]
impl Sink for AvroSink {
    fn batch_size(&self) -> usize {
        self.batch_size
    }

    async fn start(&mut self) -> Result<(), DeliveryError> {
        if self.client.is_none() {
            self.connect().await?;
        }
        Ok(())
    }

    async fn deliver(&mut self, batch: &[Event]) -> Result<(), DeliveryError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let (Some(every), Some((_, since))) = (self.reset_interval, &self.client)
            && since.elapsed() >= every
        {
            tracing::debug!(sink = %self.name, "Resetting the connection (reset-connection-interval).");
            self.close();
        }
        if self.client.is_none() {
            self.connect().await?;
        }
        let Some((client, _)) = self.client.as_mut() else {
            return Err(DeliveryError::transient("not connected"));
        };
        for chunk in batch.chunks(self.batch_size) {
            if let Err(e) = client.append_batch(chunk).await {
                self.close();
                return Err(DeliveryError::transient(e));
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

    fn sink(port: u16) -> AvroSink {
        AvroSink {
            name: "k1".into(),
            host: "127.0.0.1".into(),
            port,
            batch_size: 100,
            options: ClientOptions {
                connect_timeout: Duration::from_secs(5),
                request_timeout: Duration::from_secs(5),
                ..Default::default()
            },
            reset_interval: None,
            client: None,
            counters: Arc::default(),
        }
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
        let errs = build_props(&[
            ("hostname", "h"),
            ("port", "1"),
            ("ssl", "true"),
            ("compression-type", "deflate"),
        ])
        .err()
        .unwrap();
        assert!(errs[0].message.contains("not supported yet"), "{errs:?}");
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
        let mut k = sink(port);
        let mut started = false;
        for _ in 0..200 {
            if k.start().await.is_ok() {
                started = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(started);
        k.deliver(&events(150)).await.unwrap();
        assert_eq!(ch.drain().len(), 150);
        ch.set_refusing(true);
        assert!(matches!(
            k.deliver(&events(3)).await,
            Err(DeliveryError::Transient(_))
        ));
        assert_eq!(k.counters.connection_closed.get(), 1);
        ch.set_refusing(false);
        k.deliver(&events(3)).await.unwrap();
        assert_eq!(bodies(&ch.drain()), ["e0", "e1", "e2"]);
        assert_eq!(k.counters.connection_created.get(), 2);
        // reset-connection-interval: an expired connection is replaced before the next call.
        k.reset_interval = Some(Duration::from_millis(1));
        tokio::time::sleep(Duration::from_millis(5)).await;
        k.deliver(&events(1)).await.unwrap();
        assert_eq!(k.counters.connection_created.get(), 3);
        assert_eq!(k.counters.connection_closed.get(), 2);
        k.stop().await;
        assert_eq!(k.counters.connection_closed.get(), 3);
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
        let mut k = sink(port);
        k.options.request_timeout = Duration::from_millis(300);
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
        assert!(k.counters.connection_failed.get() >= 1);
    }
}
