//! The `http` sink (Flume's `HttpSink`): POSTs each event body, as one request, to an HTTP or
//! HTTPS endpoint, and decides per response status whether the event is consumed.
//!
//! Flume's sink takes one event per transaction; flumen's [`Sink::deliver`] gets a batch, so the
//! sink walks the batch in order, one request per event:
//! - an event with an empty body is consumed without a request (Flume: "Processed empty event");
//! - a response status is looked up in `rollback.<status>`, then `rollback.<class>` (`5XX`),
//!   then the default; the same for `backoff.*` and `incrementMetrics.*`, each independently;
//! - a status that asks for a rollback stops the batch and rolls the **whole batch** back (a
//!   transient delivery failure); the events of the batch posted before it are posted again
//!   on the retry: delivery is at-least-once, exactly as with any flumen batch sink;
//! - a status that does not ask for a rollback consumes its event; when it asks for a back-off
//!   the next batch waits (100 ms doubling to 5 s, the runner's failure schedule);
//! - no response (connection refused, timeout, broken or unreadable response) rolls the batch
//!   back; the runner backs off.
//!
//! Invariants:
//! - one HTTP/1.1 connection per sink, kept alive across requests and batches (requests are
//!   sequential, so one is enough); the next request waits until the previous exchange is
//!   complete on it, and a new connection is opened only when the server closed it or after an
//!   error (hyper's low-level client: a pool would race a new connect against the return of
//!   the idle connection and open extra ones);
//! - `connectTimeout` bounds TCP connect, TLS handshake and HTTP handshake; `requestTimeout`
//!   bounds the exchange from sending the request to the end of the response (whose body is
//!   read up to 64 KiB and dropped; a longer one costs the connection);
//! - counters as Flume's: `EventDrainAttemptCount` counts requests sent (not empty events),
//!   `EventDrainSuccessCount` counts responses whose status has `incrementMetrics` (the sink
//!   counts them as it goes: `Sink::counts_drain`).
//!   `ConnectionCreated` / `ConnectionFailed` count connects, `ConnectionClosed` connections
//!   dropped (closed by the server, after an error, at stop): Flume's sink counts none.
//!
//! Differences from Flume:
//! - a `2XX` status without its own `rollback.*`/`backoff.*`/`incrementMetrics.*` entry (exact
//!   code or `2XX`) is a success (consumed, no back-off, counted); the `default*` keys govern
//!   the other statuses. Flume applies the defaults (rollback, back-off) to `2XX` too, so a
//!   Flume config without `rollback.2XX = false` re-sends every event forever;
//! - a status with rollback but no back-off is retried after the runner's back-off (100 ms and
//!   up) rather than at once;
//! - redirects are not followed: a `3XX` status is looked up like any other;
//! - flumen additions: `batchSize` (events per transaction, default 100; Flume: 1),
//!   `truststore` (PEM file of trusted CAs replacing the system CAs) and `trust-all-certs`
//!   (accept any server certificate, and any host name), as in the avro sink. Host names are
//!   verified against the certificate (Java's `HttpsURLConnection` does too).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use flumen_config::{Diagnostic, Props};
use flumen_core::{BoxError, DeliveryError, Event, Sink, SinkCounters};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use crate::components::{BuildResult, SinkBuildContext, SinkDescriptor, build_with};

/// Registry entry of the `http` sink.
pub const DESCRIPTOR: SinkDescriptor = SinkDescriptor {
    name: "http",
    classes: &["org.apache.flume.sink.http.HttpSink"],
    description: "POSTs each event body to an HTTP or HTTPS endpoint",
    batch_size_key: Some("batchSize"),
    build,
};

/// Flume's default connect and request timeouts, in milliseconds.
const DEFAULT_TIMEOUT_MS: i64 = 5000;
/// Most response body bytes read (and discarded) to keep a connection reusable; a longer body
/// closes the connection instead.
const MAX_DRAINED_BODY: usize = 64 * 1024;
/// First and longest pause after a batch whose statuses asked for a back-off.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The system CA bundle (Debian's path, as flumen-rpc's), trusted without a `truststore`.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Configuration of the `http` sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct HttpSinkConfig {
    /// URL to POST to (`http://` or `https://`). Flume key: `endpoint`. Required.
    pub endpoint: Option<String>,
    /// Connect limit (TCP and TLS), ms, above 0. Flume key: `connectTimeout`. Default: 5000.
    #[serde(rename = "connectTimeout")]
    pub connect_timeout: i64,
    /// Limit on waiting for response bytes, ms, above 0. Flume key: `requestTimeout`.
    /// Default: 5000.
    #[serde(rename = "requestTimeout")]
    pub request_timeout: i64,
    /// `Content-Type` of every request. Flume key: `contentTypeHeader`. Default: `text/plain`.
    #[serde(rename = "contentTypeHeader")]
    pub content_type_header: String,
    /// `Accept` of every request. Flume key: `acceptHeader`. Default: `text/plain`.
    #[serde(rename = "acceptHeader")]
    pub accept_header: String,
    /// Back off after a non-2XX status without an override. Flume key: `defaultBackoff`.
    /// Default: true.
    #[serde(rename = "defaultBackoff")]
    pub default_backoff: bool,
    /// Roll back on a non-2XX status without an override. Flume key: `defaultRollback`.
    /// Default: true.
    #[serde(rename = "defaultRollback")]
    pub default_rollback: bool,
    /// Count `EventDrainSuccess` for a non-2XX status without an override. Flume key:
    /// `defaultIncrementMetrics`. Default: false.
    #[serde(rename = "defaultIncrementMetrics")]
    pub default_increment_metrics: bool,
    /// Per status (`503`) or class (`5XX`) back-off. Flume keys: `backoff.<CODE>`.
    pub backoff: BTreeMap<String, bool>,
    /// Per status or class rollback. Flume keys: `rollback.<CODE>`.
    pub rollback: BTreeMap<String, bool>,
    /// Per status or class drain counting. Flume keys: `incrementMetrics.<CODE>`.
    #[serde(rename = "incrementMetrics")]
    pub increment_metrics: BTreeMap<String, bool>,
    /// Events per transaction. flumen key `batchSize` (Flume takes one event at a time).
    /// Default: 100.
    #[serde(rename = "batchSize")]
    pub batch_size: i64,
    /// PEM file of the CAs to trust instead of the system's. flumen key: `truststore`.
    pub truststore: Option<String>,
    /// Accept any server certificate and host name. flumen key: `trust-all-certs`.
    /// Default: false.
    #[serde(rename = "trust-all-certs")]
    pub trust_all_certs: bool,
}

impl Default for HttpSinkConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            connect_timeout: DEFAULT_TIMEOUT_MS,
            request_timeout: DEFAULT_TIMEOUT_MS,
            content_type_header: "text/plain".into(),
            accept_header: "text/plain".into(),
            default_backoff: true,
            default_rollback: true,
            default_increment_metrics: false,
            backoff: BTreeMap::new(),
            rollback: BTreeMap::new(),
            increment_metrics: BTreeMap::new(),
            batch_size: 100,
            truststore: None,
            trust_all_certs: false,
        }
    }
}

impl HttpSinkConfig {
    /// Required keys and range checks.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        match self.endpoint.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push(props.error("endpoint", "missing required property `endpoint`"));
            }
            Some(url) => {
                if let Err(e) = Endpoint::parse(url) {
                    errors.push(props.error("endpoint", e));
                }
            }
        }
        for (key, v) in [
            ("connectTimeout", self.connect_timeout),
            ("requestTimeout", self.request_timeout),
        ] {
            if v <= 0 {
                errors.push(props.error(key, format!("`{key}` must be above 0 (ms)")));
            }
        }
        if self.batch_size < 1 {
            errors.push(props.error("batchSize", "`batchSize` must be at least 1"));
        }
        for (key, v) in [
            ("contentTypeHeader", &self.content_type_header),
            ("acceptHeader", &self.accept_header),
        ] {
            if hyper::header::HeaderValue::from_str(v).is_err() {
                errors.push(props.error(key, format!("`{key}` is not a valid header value")));
            }
        }
        errors
    }
}

/// What one response status asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Roll the batch back (the event will be sent again).
    pub rollback: bool,
    /// Pause before the next batch.
    pub backoff: bool,
    /// Count the event in `EventDrainSuccessCount`.
    pub increment_metrics: bool,
}

/// The per-status decisions: overrides by exact status and by class, then the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusPolicy {
    defaults: Outcome,
    backoff: BTreeMap<String, bool>,
    rollback: BTreeMap<String, bool>,
    increment_metrics: BTreeMap<String, bool>,
}

impl StatusPolicy {
    /// The policy of a configuration.
    pub fn new(c: &HttpSinkConfig) -> Self {
        Self {
            defaults: Outcome {
                rollback: c.default_rollback,
                backoff: c.default_backoff,
                increment_metrics: c.default_increment_metrics,
            },
            backoff: c.backoff.clone(),
            rollback: c.rollback.clone(),
            increment_metrics: c.increment_metrics.clone(),
        }
    }

    /// The decisions for `status`: the exact code's override, else its class's (`5XX`), else
    /// the default (for a 2XX status: success).
    pub fn outcome(&self, status: u16) -> Outcome {
        let code = status.to_string();
        let class = format!("{}XX", status / 100);
        let success = (200..300).contains(&status);
        let pick = |map: &BTreeMap<String, bool>, default: bool, on_success: bool| {
            map.get(&code)
                .or_else(|| map.get(&class))
                .copied()
                .unwrap_or(if success { on_success } else { default })
        };
        Outcome {
            rollback: pick(&self.rollback, self.defaults.rollback, false),
            backoff: pick(&self.backoff, self.defaults.backoff, false),
            increment_metrics: pick(
                &self.increment_metrics,
                self.defaults.increment_metrics,
                true,
            ),
        }
    }
}

/// Where requests go: parsed from `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https`.
    pub tls: bool,
    /// Host to connect to (an IPv6 address without brackets).
    pub host: String,
    /// Port (80 or 443 by default).
    pub port: u16,
    /// The `Host` header: the URL's authority.
    pub authority: String,
    /// Path and query of every request (`/` when the URL has none).
    pub path: String,
}

impl Endpoint {
    /// Parses an `http://` or `https://` URL.
    ///
    /// # Errors
    /// Not such a URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("`endpoint` = {url} is not a URL: {e}"))?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(format!(
                    "`endpoint` = {url} is not an http:// or https:// URL"
                ));
            }
        };
        let (Some(authority), Some(host)) = (uri.authority(), uri.host()) else {
            return Err(format!("`endpoint` = {url} has no host"));
        };
        if authority.as_str().contains('@') {
            return Err(format!("`endpoint` = {url}: user info is not supported"));
        }
        Ok(Self {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority: authority.as_str().to_owned(),
            path: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        })
    }
}

/// Override keys that can never match a status (Flume ignores them silently).
fn override_warnings(c: &HttpSinkConfig, props: &Props) -> Vec<Diagnostic> {
    let valid = |k: &str| {
        let b = k.as_bytes();
        b.len() == 3
            && (b'1'..=b'5').contains(&b[0])
            && (b[1..].iter().all(u8::is_ascii_digit) || &b[1..] == b"XX")
    };
    let mut out = Vec::new();
    for (prefix, map) in [
        ("backoff", &c.backoff),
        ("rollback", &c.rollback),
        ("incrementMetrics", &c.increment_metrics),
    ] {
        for k in map.keys().filter(|k| !valid(k)) {
            let key = format!("{prefix}.{k}");
            out.push(props.warning(
                &key,
                format!(
                    "`{key}` never matches: write a status (`503`) or a class (`5XX`, capital XX)"
                ),
            ));
        }
    }
    out
}

fn millis(v: i64) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(1).max(1))
}

/// The TLS client configuration of an https endpoint: any certificate with `trust-all-certs`
/// (flumen-rpc's, as the avro sink), else the chain checked against the trust store (or the
/// system CAs) **and** the host name checked against the certificate, as HTTPS clients do
/// (flumen-rpc's RPC configuration skips the host name, as Flume's RPC client).
fn tls_connector(c: &HttpSinkConfig) -> Result<TlsConnector, String> {
    let versions = flumen_rpc::tls::versions(&[], &[]).map_err(|e| e.to_string())?;
    let config = if c.trust_all_certs {
        let mut config = (*flumen_rpc::tls::client_config(None, true, &versions)
            .map_err(|e| e.to_string())?)
        .clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    } else {
        let path = c.truststore.as_deref().unwrap_or(SYSTEM_CA_BUNDLE);
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(Path::new(path))
            .map_err(|e| format!("cannot read truststore {path}: {e}"))?
        {
            let cert = cert.map_err(|e| format!("bad certificate in truststore {path}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("truststore {path}: {e}"))?;
        }
        if roots.is_empty() {
            return Err(format!("truststore {path} holds no PEM certificate"));
        }
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

fn build(props: &Props, cx: &SinkBuildContext) -> BuildResult<Box<dyn Sink>> {
    let (c, mut warnings) = build_with(props, HttpSinkConfig::validate, |c: HttpSinkConfig| Ok(c))?;
    warnings.extend(override_warnings(&c, props));
    let endpoint = Endpoint::parse(c.endpoint.as_deref().unwrap_or_default().trim())
        .map_err(|e| vec![props.error("endpoint", e)])?;
    let tls = if endpoint.tls {
        let key = if c.truststore.is_some() {
            "truststore"
        } else {
            "endpoint"
        };
        Some(tls_connector(&c).map_err(|e| vec![props.error(key, e)])?)
    } else {
        if c.truststore.is_some() || c.trust_all_certs {
            warnings.push(props.warning(
                "truststore",
                "`truststore` and `trust-all-certs` only apply to an https:// endpoint",
            ));
        }
        None
    };
    let header =
        |v: &str| HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("text/plain"));
    let sink = HttpSink {
        name: cx.name.clone(),
        url: c.endpoint.clone().unwrap_or_default(),
        host: HeaderValue::from_str(&endpoint.authority)
            .map_err(|e| vec![props.error("endpoint", e.to_string())])?,
        endpoint,
        tls,
        connect_timeout: millis(c.connect_timeout),
        request_timeout: millis(c.request_timeout),
        content_type: header(&c.content_type_header),
        accept: header(&c.accept_header),
        policy: StatusPolicy::new(&c),
        batch_size: usize::try_from(c.batch_size).unwrap_or(100).max(1),
        counters: cx.counters.clone(),
        conn: None,
        backoff_until: None,
        backoff: Duration::ZERO,
    };
    Ok((Box::new(sink) as Box<dyn Sink>, warnings))
}

/// A byte stream to the server, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The HTTP sink.
pub struct HttpSink {
    name: String,
    /// `endpoint` as configured, for messages.
    url: String,
    endpoint: Endpoint,
    host: HeaderValue,
    tls: Option<TlsConnector>,
    connect_timeout: Duration,
    request_timeout: Duration,
    content_type: HeaderValue,
    accept: HeaderValue,
    policy: StatusPolicy,
    batch_size: usize,
    counters: Arc<SinkCounters>,
    /// The kept-alive connection, when one is open.
    conn: Option<SendRequest<Full<Bytes>>>,
    /// No request before this instant (a status asked for a back-off).
    backoff_until: Option<Instant>,
    /// The current back-off step (zero after a batch without back-off).
    backoff: Duration,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink")
            .field("name", &self.name)
            .field("endpoint", &self.url)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpSink {
    /// Drops the connection (the server closed it, or its state is unknown after an error).
    fn close(&mut self) {
        if self.conn.take().is_some() {
            self.counters.connection_closed.inc();
        }
    }

    /// Opens a connection (TCP, TLS, HTTP/1.1) within `connectTimeout`.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, BoxError> {
        let ep = &self.endpoint;
        let open = async {
            let tcp = TcpStream::connect((ep.host.as_str(), ep.port)).await?;
            tcp.set_nodelay(true)?;
            let io: Box<dyn Io> = match &self.tls {
                None => Box::new(tcp),
                Some(tls) => {
                    let name = ServerName::try_from(ep.host.clone())?;
                    Box::new(tls.connect(name, tcp).await?)
                }
            };
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
            // The connection's I/O runs in its own task; it ends when either side closes.
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, BoxError>(sender)
        };
        match timeout(self.connect_timeout, open).await {
            Ok(r) => r,
            Err(_) => Err(format!("connect timed out after {:?}", self.connect_timeout).into()),
        }
    }

    /// A connection ready for a request: the kept-alive one, or a new one.
    async fn ready(&mut self) -> Result<(), BoxError> {
        if let Some(sender) = &mut self.conn {
            // Resolves once the previous exchange is complete; fails if the server closed.
            if sender.ready().await.is_ok() {
                return Ok(());
            }
            self.close();
        }
        match self.connect().await {
            Ok(sender) => {
                self.counters.connection_created.inc();
                self.conn = Some(sender);
                Ok(())
            }
            Err(e) => {
                self.counters.connection_failed.inc();
                Err(e)
            }
        }
    }

    /// Posts one body; the status, or why there is none. The response body is read and
    /// dropped (up to [`MAX_DRAINED_BODY`]) so the connection can serve the next request.
    async fn post(&mut self, body: Bytes) -> Result<u16, BoxError> {
        let mut retried = false;
        loop {
            self.ready().await?;
            let request = hyper::Request::post(self.endpoint.path.as_str())
                .header(HOST, self.host.clone())
                .header(CONTENT_TYPE, self.content_type.clone())
                .header(ACCEPT, self.accept.clone())
                .header(USER_AGENT, concat!("flumen/", env!("CARGO_PKG_VERSION")))
                .body(Full::new(body.clone()))?;
            let Some(sender) = self.conn.as_mut() else {
                return Err("no connection".into());
            };
            let exchange = async {
                let response = sender.send_request(request).await?;
                let status = response.status().as_u16();
                let mut body = response.into_body();
                let mut drained = 0;
                let mut complete = true;
                // The status decides; a body that fails or is too long only costs the
                // connection.
                loop {
                    match body.frame().await {
                        None => break,
                        Some(Ok(frame)) => {
                            drained += frame.data_ref().map_or(0, Bytes::len);
                            if drained > MAX_DRAINED_BODY {
                                complete = false;
                                break;
                            }
                        }
                        Some(Err(_)) => {
                            complete = false;
                            break;
                        }
                    }
                }
                Ok::<_, hyper::Error>((status, complete))
            };
            match timeout(self.request_timeout, exchange).await {
                Ok(Ok((status, complete))) => {
                    if !complete {
                        self.close();
                    }
                    return Ok(status);
                }
                // The kept-alive connection was closed by the server before the request
                // went out: the request was not sent, so one retry on a new connection
                // cannot duplicate it.
                Ok(Err(e)) if e.is_canceled() && !retried => {
                    retried = true;
                    self.close();
                }
                Ok(Err(e)) => {
                    self.close();
                    return Err(format!("POST to {} failed: {e}", self.url).into());
                }
                Err(_) => {
                    self.close();
                    return Err(format!(
                        "POST to {} got no response within {:?}",
                        self.url, self.request_timeout
                    )
                    .into());
                }
            }
        }
    }
}

#[async_trait]
impl Sink for HttpSink {
    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn counts_drain(&self) -> bool {
        true
    }

    async fn deliver(&mut self, batch: &[Event]) -> Result<(), DeliveryError> {
        if let Some(until) = self.backoff_until.take() {
            tokio::time::sleep_until(until).await;
        }
        let n = batch.len() as u64;
        let mut sent = 0u64;
        let mut backoff = false;
        let mut result = Ok(());
        for event in batch {
            if event.body.is_empty() {
                continue;
            }
            sent += 1;
            // Flume counts a request sent and a response whose status has
            // `incrementMetrics`, not taken and committed events.
            self.counters.event_drain_attempt.inc();
            let status = match self.post(event.body.clone()).await {
                Ok(s) => s,
                Err(e) => {
                    result = Err(DeliveryError::Transient(e));
                    break;
                }
            };
            let o = self.policy.outcome(status);
            if o.increment_metrics {
                self.counters.event_drain_success.inc();
            }
            if o.rollback {
                tracing::info!(sink = %self.name, status, backoff = o.backoff, "HTTP status asks for a rollback; the batch will be sent again.");
                result = Err(DeliveryError::transient(format!(
                    "{} answered HTTP status {status}; batch rolled back",
                    self.url
                )));
                break;
            }
            backoff |= o.backoff;
        }
        if result.is_ok() && sent < n {
            tracing::debug!(sink = %self.name, empty = n - sent, "Consumed empty events without a request.");
        }
        if result.is_ok() && backoff {
            self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
            self.backoff_until = Some(Instant::now() + self.backoff);
            tracing::debug!(sink = %self.name, pause = ?self.backoff, "HTTP status asks for a back-off.");
        } else if result.is_ok() {
            self.backoff = Duration::ZERO;
        }
        result
    }

    async fn idle(&mut self) -> Result<(), DeliveryError> {
        // Notice a kept-alive connection the server closed while idle.
        if self.conn.as_ref().is_some_and(SendRequest::is_closed) {
            self.close();
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

    fn config(pairs: &[(&str, &str)]) -> HttpSinkConfig {
        props(pairs).deserialize::<HttpSinkConfig>().unwrap().0
    }

    #[test]
    fn defaults_are_flumes() {
        let c = config(&[("endpoint", "http://127.0.0.1:1/x")]);
        assert_eq!(c.connect_timeout, 5000);
        assert_eq!(c.request_timeout, 5000);
        assert_eq!(c.content_type_header, "text/plain");
        assert_eq!(c.accept_header, "text/plain");
        assert!(c.default_backoff && c.default_rollback && !c.default_increment_metrics);
        assert!(build_props(&[("endpoint", "http://127.0.0.1:1/x")]).is_ok());
    }

    #[test]
    fn bad_configs_are_errors() {
        for pairs in [
            &[][..],
            &[("endpoint", "")][..],
            &[("endpoint", "ftp://host/x")][..],
            &[("endpoint", "not a url")][..],
            &[("endpoint", "http://h/"), ("connectTimeout", "0")][..],
            &[("endpoint", "http://h/"), ("requestTimeout", "-5")][..],
            &[("endpoint", "http://h/"), ("batchSize", "0")][..],
            &[
                ("endpoint", "https://h/"),
                ("truststore", "/nonexistent/ca.pem"),
            ][..],
        ] {
            assert!(build_props(pairs).is_err(), "{pairs:?} should fail");
        }
    }

    #[test]
    fn useless_override_keys_warn() {
        let (_, warnings) = build_props(&[
            ("endpoint", "http://h/"),
            ("backoff.5xx", "false"),
            ("rollback.4XX", "false"),
            ("incrementMetrics.abc", "true"),
        ])
        .unwrap();
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text.iter().any(|w| w.contains("backoff.5xx")));
        assert!(text.iter().any(|w| w.contains("incrementMetrics.abc")));
    }

    #[test]
    fn most_specific_override_wins() {
        let p = StatusPolicy::new(&config(&[
            ("endpoint", "http://h/"),
            ("rollback.4XX", "false"),
            ("rollback.404", "true"),
            ("backoff.4XX", "false"),
            ("incrementMetrics.4XX", "true"),
            ("incrementMetrics.201", "false"),
            ("defaultIncrementMetrics", "true"),
        ]));
        let o = |rollback, backoff, increment_metrics| Outcome {
            rollback,
            backoff,
            increment_metrics,
        };
        assert_eq!(p.outcome(400), o(false, false, true));
        assert_eq!(p.outcome(404), o(true, false, true));
        assert_eq!(p.outcome(503), o(true, true, true));
        assert_eq!(p.outcome(200), o(false, false, true));
        assert_eq!(p.outcome(201), o(false, false, false));
        assert_eq!(p.outcome(302), o(true, true, true));
        // A 2XX override is honoured like Flume's.
        let p = StatusPolicy::new(&config(&[
            ("endpoint", "http://h/"),
            ("rollback.2XX", "true"),
        ]));
        assert_eq!(p.outcome(204), o(true, false, true));
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("https://[::1]:8443/a/b?c=d").unwrap();
        assert_eq!(
            (
                e.tls,
                e.host.as_str(),
                e.port,
                e.authority.as_str(),
                e.path.as_str()
            ),
            (true, "::1", 8443, "[::1]:8443", "/a/b?c=d")
        );
        let e = Endpoint::parse("http://example.org").unwrap();
        assert_eq!((e.tls, e.port, e.path.as_str()), (false, 80, "/"));
        assert_eq!(Endpoint::parse("https://h/").unwrap().port, 443);
        for bad in ["h:80", "/path", "ftp://h/", "http://u:p@h/", "http://"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    /// A minimal HTTP/1.1 server on a real socket: answers 503 to a body `R`, 200 otherwise,
    /// closing each connection after one exchange with `close`. Records bodies and counts
    /// connections.
    async fn server(close: bool) -> (u16, Arc<std::sync::Mutex<Vec<String>>>, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let conns = Arc::new(AtomicUsize::new(0));
        let (b, c) = (bodies.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let b = b.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            let mut chunk = [0u8; 4096];
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < end + 4 + len {
                            let mut chunk = [0u8; 4096];
                            match s.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body =
                            String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                        buf.drain(..end + 4 + len);
                        let status = if body == "R" {
                            "503 Unavailable"
                        } else {
                            "200 OK"
                        };
                        b.lock().unwrap().push(body);
                        let connection = if close { "Connection: close\r\n" } else { "" };
                        let reply =
                            format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n{connection}\r\nok");
                        if s.write_all(reply.as_bytes()).await.is_err() || close {
                            return;
                        }
                    }
                });
            }
        });
        (port, bodies, conns)
    }

    fn sink_for(port: u16) -> (Box<dyn Sink>, Arc<SinkCounters>) {
        let cx = SinkBuildContext {
            name: "k1".into(),
            counters: Default::default(),
        };
        let url = format!("http://127.0.0.1:{port}/in");
        let (sink, _) = (DESCRIPTOR.build)(&props(&[("endpoint", &url)]), &cx).unwrap();
        (sink, cx.counters)
    }

    fn events(bodies: &[&str]) -> Vec<Event> {
        bodies
            .iter()
            .map(|b| Event::new(Bytes::from(b.to_string())))
            .collect()
    }

    #[tokio::test]
    async fn keeps_one_connection_alive_and_reconnects_when_the_server_closes() {
        let (port, bodies, conns) = server(false).await;
        let (mut sink, c) = sink_for(port);
        sink.deliver(&events(&["a", "b"])).await.unwrap();
        sink.deliver(&events(&["c", "", "d"])).await.unwrap();
        assert_eq!(*bodies.lock().unwrap(), ["a", "b", "c", "d"]);
        assert_eq!(conns.load(Ordering::SeqCst), 1);
        assert_eq!(c.connection_created.get(), 1);
        sink.stop().await;
        assert_eq!(c.connection_closed.get(), 1);

        let (port, bodies, conns) = server(true).await;
        let (mut sink, c) = sink_for(port);
        sink.deliver(&events(&["a", "b", "c"])).await.unwrap();
        assert_eq!(*bodies.lock().unwrap(), ["a", "b", "c"]);
        assert_eq!(conns.load(Ordering::SeqCst), 3);
        assert_eq!(c.connection_created.get(), 3);
        assert_eq!(c.connection_closed.get(), 2);
        sink.stop().await;
        assert_eq!(c.connection_closed.get(), 3);
        assert_eq!(c.connection_failed.get(), 0);
    }

    #[tokio::test]
    async fn a_rollback_status_stops_the_batch_and_no_server_fails_it() {
        let (port, bodies, _) = server(false).await;
        let (mut sink, c) = sink_for(port);
        let err = sink.deliver(&events(&["a", "R", "b"])).await.unwrap_err();
        assert!(err.to_string().contains("503"), "{err}");
        assert_eq!(*bodies.lock().unwrap(), ["a", "R"]);
        assert_eq!(c.event_drain_attempt.get(), 2);
        // A 2XX counts even in a rolled-back batch; the 503 does not (defaults).
        assert_eq!(c.event_drain_success.get(), 1);

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (mut sink, c) = sink_for(port);
        assert!(sink.deliver(&events(&["x"])).await.is_err());
        assert_eq!(c.connection_failed.get(), 1);
        assert_eq!(c.connection_created.get(), 0);
    }
}
