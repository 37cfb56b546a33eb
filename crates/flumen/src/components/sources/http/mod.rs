//! The `http` source (Flume's `HTTPSource`): an HTTP/1.1 server (HTTPS with `ssl = true`)
//! whose handler turns each POST request into events — Flume's JSONHandler (a JSON array of
//! `{"headers", "body"}` objects; [`json`]) or one of its blob handlers ([`blob`]).
//!
//! Status codes (the body of every non-200 answer is a one-line `text/plain` message):
//! - `200` only after every event of the request is committed to every required channel, in
//!   one transaction per channel (`SourceContext::deliver`); nothing is ever half-accepted;
//! - `400` malformed input, with what and where (`element 3: body is not a string ...`), a
//!   missing mandatory parameter, an unsupported charset, a broken gzip stream;
//! - `405` any method but POST (with `Allow: POST`);
//! - `408` a request body that stalls for `ServerConnector.idleTimeout`;
//! - `413` a body over `maxRequestSize` (checked against `Content-Length` before reading,
//!   while reading, and against the decompressed size while decompressing, so a gzip bomb
//!   costs at most `maxRequestSize`), or more events than the channels take in one
//!   transaction (`transactionCapacity`);
//! - `415` a `Content-Encoding` other than `gzip` / `x-gzip` / `identity`;
//! - `503` a channel refused the batch (full, closed): the client retries later.
//!
//! Beyond Flume: `Content-Type: application/x-ndjson` (or `application/jsonl`) reads one event
//! object per line, and `Content-Encoding: gzip` bodies are decompressed.
//!
//! Counters (Flume's): `AppendBatchReceived`/`EventReceived` for every parsed request,
//! `AppendBatchAccepted`/`EventAccepted` on 200, `ChannelWriteFail` on 503, `EventReadFail`
//! on 400/408/413/415, `OpenConnectionCount`.
//!
//! Differences from Flume: GET (which Flume accepts "for experimentation", handing the
//! handler an empty body: a 500 from its JSONHandler) is refused with 405, so proxies and
//! crawlers cannot create events by accident; a malformed request, an unsupported charset or
//! a missing `mandatoryParameters` entry is a 400 with a one-line text message (Flume answers
//! some of them 500, with a Jetty HTML error page); a batch larger than the channels'
//! `transactionCapacity` is a 413 (Flume: 503, which a client retries forever); 503s carry
//! `Retry-After: 1`; the keystore is PEM (see `TlsServerKeys`); Jetty's pass-through keys are
//! accepted and warned about, except `QueuedThreadPool.maxThreads` (most requests handled at
//! once) and `ServerConnector.idleTimeout` (idle keep-alive connections and stalled bodies).
//!
//! Layout: `config.rs` (keys), `json.rs` and `blob.rs` (handlers, pure functions), this file
//! (the server). Connections come from the shared accept loop (`tcp_listener`, TLS included)
//! and are served by hyper's HTTP/1 connection with an axum router; HTTP/2 is not enabled
//! (Flume's Jetty connector is HTTP/1.1 only, and log shippers batch per request).
//! Large bodies (over 256 KiB, or gzip bodies over 8 KiB) are decompressed and parsed on the
//! blocking pool, so a big request does not stall the runtime's other connections.

pub mod blob;
pub mod config;
pub mod json;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use flumen_config::Props;
use flumen_core::{ChannelError, Event, Source, SourceContext, SourceError};
use flumen_rpc::tls::TlsAcceptor;
use futures_util::StreamExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use self::config::{HandlerKind, HttpSourceConfig};
use self::json::JsonError;
use super::tcp_listener::{self, Accepted, ServeOptions};
use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

/// Registry entry of the `http` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "http",
    classes: &["org.apache.flume.source.http.HTTPSource"],
    description: "HTTP server: JSON (array, ndjson, gzip) or blob POST requests become events",
    batch_size_key: None,
    build,
};

/// Bodies larger than this are decompressed and parsed on the blocking pool.
const INLINE_WORK_LIMIT: usize = 256 * 1024;
/// Gzip bodies larger than this are decompressed on the blocking pool (gzip expands up to
/// ~1000:1, so 8 KiB can become 8 MiB).
const INLINE_GZIP_LIMIT: usize = 8 * 1024;
/// How long a stopping source lets in-flight requests finish before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// At most one WARN per this interval for rejected requests (the counters count them all).
const WARN_INTERVAL_MS: u64 = 10_000;

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    let mut extra = Vec::new();
    let (source, mut warnings) = build_with(props, HttpSourceConfig::validate, |c| {
        extra = c.warnings(props);
        let tls = c.tls_keys().acceptor(props)?;
        Ok(Box::new(HttpSource {
            bind: c.bind.trim().to_string(),
            port: c.port.unwrap_or_default(),
            settings: Settings {
                handler: c.handler_kind().unwrap_or(HandlerKind::Json),
                max_request_size: usize::try_from(c.max_request_size).unwrap_or(usize::MAX),
                idle_timeout: c.idle_timeout(),
                max_threads: c.max_threads,
            },
            tls,
        }) as Box<dyn Source>)
    })?;
    warnings.extend(extra);
    Ok((source, warnings))
}

/// What the request handling needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The handler.
    pub handler: HandlerKind,
    /// `maxRequestSize` in bytes.
    pub max_request_size: usize,
    /// `ServerConnector.idleTimeout`: idle keep-alive connections and stalled bodies end.
    pub idle_timeout: Duration,
    /// `QueuedThreadPool.maxThreads`: most requests handled at once.
    pub max_threads: Option<usize>,
}

/// The HTTP source.
pub struct HttpSource {
    bind: String,
    port: u16,
    settings: Settings,
    tls: Option<TlsAcceptor>,
}

#[async_trait::async_trait]
impl Source for HttpSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let listener = tcp_listener::bind(&self.bind, self.port).await?;
        serve(listener, self.settings, self.tls, cx).await;
        Ok(())
    }
}

/// Serves HTTP on `listener` until `cx.shutdown` fires, then lets in-flight requests finish
/// (at most [`SHUTDOWN_GRACE`]). Public for the benchmark and the tests.
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    tls: Option<TlsAcceptor>,
    cx: SourceContext,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(source = %cx.name, %addr, tls = tls.is_some(), "HTTP source listening.");
    }
    let idle = settings.idle_timeout;
    let shared = Arc::new(Shared {
        permits: settings.max_threads.map(|n| Arc::new(Semaphore::new(n))),
        settings,
        cx: cx.clone(),
        failing: AtomicBool::new(false),
        last_warn_ms: AtomicU64::new(0),
    });
    let router = Router::new().fallback(handle).with_state(shared);
    let options = ServeOptions { tls, nodelay: true };
    let shutdown = cx.shutdown.clone();
    tcp_listener::serve(vec![listener], &cx, options, move |accepted: Accepted| {
        let router = router.clone();
        let shutdown = shutdown.clone();
        async move {
            let service = TowerToHyperService::new(router);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(idle)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(accepted.stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(error) = r {
                        tracing::debug!(peer = %accepted.peer, %error, "HTTP connection ended with an error.");
                    }
                }
                () = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
                }
            }
        }
    })
    .await;
}

/// State shared by every request of one source.
struct Shared {
    settings: Settings,
    cx: SourceContext,
    /// `QueuedThreadPool.maxThreads`: bounds requests handled at once.
    permits: Option<Arc<Semaphore>>,
    /// The channels refused the previous request: log an outage once, not per request.
    failing: AtomicBool,
    /// When rejected input was last logged at WARN (ms since the epoch), to rate-limit it.
    last_warn_ms: AtomicU64,
}

/// A refused request: status and one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status.
    pub status: StatusCode,
    /// Why, for the client.
    pub message: String,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

fn text(status: StatusCode, message: &str) -> Response {
    let mut r = (status, format!("{message}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if req.method() != Method::POST {
        let mut r = text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only POST is accepted by this Flume HTTP source",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let _permit = match &shared.permits {
        Some(s) => s.clone().acquire_owned().await.ok(),
        None => None,
    };
    let counters = &shared.cx.counters;
    let events = match read_events(&shared, req).await {
        Ok(events) => events,
        Err(rejection) => {
            counters.event_read_fail.inc();
            shared.warn_rejected(&rejection);
            return text(rejection.status, &rejection.message);
        }
    };
    match shared.cx.deliver(events).await {
        Ok(()) => {
            if shared.failing.swap(false, Ordering::Relaxed) {
                tracing::info!(source = %shared.cx.name, "Channels accept events again.");
            }
            StatusCode::OK.into_response()
        }
        Err(error) => {
            if !shared.failing.swap(true, Ordering::Relaxed) {
                tracing::warn!(source = %shared.cx.name, %error, "Channel refused a request's events; answering 503.");
            }
            let (status, message) = match &error {
                // Retrying cannot help a batch larger than a transaction (checked before
                // parsing too, but a selector or interceptor can change the counts).
                ChannelError::TransactionCapacity { .. } => {
                    (StatusCode::PAYLOAD_TOO_LARGE, error.to_string())
                }
                _ => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("events not accepted, retry later: {error}"),
                ),
            };
            let mut r = text(status, &message);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            r
        }
    }
}

/// When a blob was last cut at `handler.maxBlobLength` and logged (ms since the epoch).
static LAST_TRUNCATION_WARN_MS: AtomicU64 = AtomicU64::new(0);

/// Whether a rate-limited WARN may be logged now (at most one per [`WARN_INTERVAL_MS`]);
/// records the time when it may.
fn warn_due(last_ms: &AtomicU64) -> bool {
    let now = flumen_core::metrics::now_ms();
    let last = last_ms.load(Ordering::Relaxed);
    now.saturating_sub(last) >= WARN_INTERVAL_MS
        && last_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

impl Shared {
    fn warn_rejected(&self, rejection: &Rejection) {
        if warn_due(&self.last_warn_ms) {
            tracing::warn!(
                source = %self.cx.name,
                status = rejection.status.as_u16(),
                reason = %rejection.message,
                "Rejected an HTTP request (further rejections within 10 s are only counted)."
            );
        } else {
            tracing::debug!(source = %self.cx.name, status = rejection.status.as_u16(), reason = %rejection.message, "Rejected an HTTP request.");
        }
    }
}

/// Reads, decompresses and parses one request into events.
async fn read_events(shared: &Shared, req: Request) -> Result<Vec<Event>, Rejection> {
    let settings = &shared.settings;
    let (parts, body) = req.into_parts();
    let gzip = content_encoding_is_gzip(&parts.headers)?;
    let max = settings.max_request_size;
    let too_large = || {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than maxRequestSize ({max} bytes)"),
        )
    };
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if length.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let raw = collect(body, max, length, settings.idle_timeout).await?;
    let raw_len = raw.len();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let query = parts.uri.query().map(str::to_owned);
    let max_events = shared.cx.processor.max_batch();
    let handler = settings.handler.clone();
    let work = move || -> Result<Vec<Event>, Rejection> {
        let body = if gzip { gunzip(&raw, max)? } else { raw };
        to_events(
            &handler,
            body,
            content_type.as_deref(),
            query.as_deref(),
            max_events,
        )
    };
    // Small bodies are parsed in place (cheaper than a thread hop); big ones, and gzip bodies
    // that could expand a lot, go to the blocking pool.
    let inline = raw_len <= INLINE_WORK_LIMIT && (!gzip || raw_len <= INLINE_GZIP_LIMIT);
    if !inline {
        tokio::task::spawn_blocking(work).await.map_err(|e| {
            Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("request processing failed: {e}"),
            )
        })?
    } else {
        work()
    }
}

/// `Content-Encoding`: `Ok(true)` for gzip, `Ok(false)` for none/identity, 415 otherwise.
fn content_encoding_is_gzip(headers: &HeaderMap) -> Result<bool, Rejection> {
    let mut gzip = false;
    for v in headers.get_all(header::CONTENT_ENCODING) {
        for coding in String::from_utf8_lossy(v.as_bytes()).split(',') {
            let c = coding.trim();
            if c.eq_ignore_ascii_case("gzip") || c.eq_ignore_ascii_case("x-gzip") {
                if gzip {
                    return Err(Rejection::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "gzip applied twice is not supported",
                    ));
                }
                gzip = true;
            } else if !(c.is_empty() || c.eq_ignore_ascii_case("identity")) {
                return Err(Rejection::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "Content-Encoding `{}` is not supported (gzip or none)",
                        c.chars().take(40).collect::<String>()
                    ),
                ));
            }
        }
    }
    Ok(gzip)
}

/// Reads the whole body, refusing more than `max` bytes and a body that stalls for `idle`.
async fn collect(
    body: Body,
    max: usize,
    length: Option<u64>,
    idle: Duration,
) -> Result<Bytes, Rejection> {
    let mut stream = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut buf: Option<BytesMut> = None;
    let mut total = 0usize;
    loop {
        let chunk = match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => {
                return Err(Rejection::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body stalled",
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(Rejection::new(
                    StatusCode::BAD_REQUEST,
                    format!("reading the request body failed: {e}"),
                ));
            }
            Ok(Some(Ok(c))) => c,
        };
        total = total.saturating_add(chunk.len());
        if total > max {
            return Err(Rejection::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than maxRequestSize ({max} bytes)"),
            ));
        }
        // One chunk (the common case for small requests) is kept without a copy.
        match (&mut first, &mut buf) {
            (None, None) => first = Some(chunk),
            (Some(f), None) => {
                let cap = length.map_or(0, |n| n as usize).clamp(total, max);
                let mut b = BytesMut::with_capacity(cap);
                b.extend_from_slice(f);
                b.extend_from_slice(&chunk);
                first = None;
                buf = Some(b);
            }
            (_, Some(b)) => b.extend_from_slice(&chunk),
        }
    }
    Ok(match (first, buf) {
        (_, Some(b)) => b.freeze(),
        (Some(f), None) => f,
        (None, None) => Bytes::new(),
    })
}

/// Decompresses a gzip body (several members allowed), stopping with 413 as soon as the
/// output passes `max`: memory stays bounded whatever the compression ratio.
///
/// # Errors
/// 413 past `max`; 400 for a corrupt stream.
pub fn gunzip(data: &[u8], max: usize) -> Result<Bytes, Rejection> {
    use std::io::Read;
    let mut decoder = flate2::read::MultiGzDecoder::new(data);
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(max));
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = decoder.read(&mut chunk).map_err(|e| {
            Rejection::new(
                StatusCode::BAD_REQUEST,
                format!("the gzip request body is corrupt: {e}"),
            )
        })?;
        if n == 0 {
            return Ok(Bytes::from(out));
        }
        if out.len() + n > max {
            return Err(Rejection::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the decompressed request body is larger than maxRequestSize ({max} bytes)"
                ),
            ));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Whether a `Content-Type` asks for newline-delimited JSON.
fn is_ndjson(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let media = ct.split(';').next().unwrap_or("").trim();
    [
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
    ]
    .iter()
    .any(|m| media.eq_ignore_ascii_case(m))
}

/// Runs the handler on a complete (decompressed) body. Pure: the unit tests and the fuzz
/// target call it directly.
///
/// # Errors
/// 400 for malformed input, 413 for more than `max_events` events.
pub fn to_events(
    handler: &HandlerKind,
    body: Bytes,
    content_type: Option<&str>,
    query: Option<&str>,
    max_events: usize,
) -> Result<Vec<Event>, Rejection> {
    match handler {
        HandlerKind::Json => {
            let bad = |e: JsonError| match e {
                JsonError::TooManyEvents(_) => {
                    Rejection::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
                }
                _ => Rejection::new(StatusCode::BAD_REQUEST, e.to_string()),
            };
            let charset = json::charset_of(content_type).map_err(bad)?;
            let text = json::decode(&body, charset).map_err(bad)?;
            if is_ndjson(content_type) {
                json::parse_ndjson(&text, charset, max_events).map_err(bad)
            } else {
                json::parse_array(&text, charset, max_events).map_err(bad)
            }
        }
        HandlerKind::MorphlineBlob { max_blob_length } => {
            let (event, cut) = blob::morphline_blob(body, content_type, query, *max_blob_length);
            if cut && warn_due(&LAST_TRUNCATION_WARN_MS) {
                tracing::warn!(
                    max_blob_length,
                    "Request body longer than handler.maxBlobLength; the event keeps only its first bytes (further cuts within 10 s are not logged)."
                );
            }
            Ok(vec![event])
        }
        HandlerKind::CoreBlob { mandatory } => blob::core_blob(body, query, mandatory)
            .map(|e| vec![e])
            .map_err(|m| Rejection::new(StatusCode::BAD_REQUEST, m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, bodies, context};
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::task::JoinHandle;

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

    fn settings(handler: HandlerKind, max: usize) -> Settings {
        Settings {
            handler,
            max_request_size: max,
            idle_timeout: Duration::from_secs(30),
            max_threads: None,
        }
    }

    async fn start(
        settings: Settings,
        ch: Arc<dyn flumen_core::Channel>,
    ) -> (u16, SourceContext, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cx = context(ch);
        let task = tokio::spawn(serve(listener, settings, None, cx.clone()));
        (port, cx, task)
    }

    /// One HTTP/1.1 request on a fresh connection; returns (status, body).
    async fn request(
        port: u16,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        // A server may answer early (413) and close; a failed write is then fine.
        let _ = s.write_all(body).await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn config_keys_defaults_and_warnings() {
        let errs = build_props(&[]).err().unwrap();
        assert!(
            errs.iter()
                .any(|d| d.message == "missing required property `port`"),
            "{errs:?}"
        );
        let errs = build_props(&[("port", "1"), ("handler", "com.example.Mine")])
            .err()
            .unwrap();
        assert!(errs[0].message.contains("unknown handler"), "{errs:?}");
        let errs = build_props(&[("port", "1"), ("enableSSL", "true")])
            .err()
            .unwrap();
        assert!(errs[0].message.contains("needs `keystore`"), "{errs:?}");
        let errs = build_props(&[("port", "1"), ("handler.maxBlobLength", "5")])
            .err()
            .unwrap();
        assert!(errs[0].message.contains("BlobHandler only"), "{errs:?}");
        let (_, w) = build_props(&[
            ("port", "1"),
            ("bind", "127.0.0.1"),
            (
                "handler",
                "org.apache.flume.sink.solr.morphline.BlobHandler",
            ),
            ("handler.maxBlobLength", "10"),
            ("maxRequestSize", "1000"),
            ("QueuedThreadPool.maxThreads", "8"),
            ("QueuedThreadPool.minThreads", "2"),
            ("ServerConnector.idleTimeout", "1000"),
            ("HttpConfiguration.sendServerVersion", "false"),
            ("excludeProtocols", "SSLv3"),
            ("keystorePassword", "x"),
            ("handler.maxBlobLenght", "3"),
        ])
        .unwrap();
        let msgs: Vec<&str> = w.iter().map(|d| d.message.as_str()).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains("`QueuedThreadPool.minThreads` is a Jetty setting")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("`HttpConfiguration.sendServerVersion` is a Jetty")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("`excludeProtocols` is deprecated")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("`keystorePassword` is deprecated")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("unknown property `handler.maxBlobLenght`")),
            "{msgs:?}"
        );
        assert!(
            !msgs
                .iter()
                .any(|m| m.contains("maxThreads") || m.contains("idleTimeout")),
            "{msgs:?}"
        );
        let (c, w) = props(&[]).deserialize::<HttpSourceConfig>().unwrap();
        assert!(w.is_empty());
        assert_eq!(c, HttpSourceConfig::default());
        assert_eq!(c.bind, "0.0.0.0");
        assert_eq!(c.max_request_size, 64 * 1024 * 1024);
        assert_eq!(c.handler_kind(), Some(HandlerKind::Json));
        for name in ["HTTP", "org.apache.flume.source.http.HTTPSource"] {
            assert_eq!(
                crate::components::lookup(crate::components::sources::SOURCES, name)
                    .map(|d| d.name)
                    .ok(),
                Some("http")
            );
        }
    }

    #[test]
    fn handler_dispatch_and_statuses() {
        let j = HandlerKind::Json;
        let ok = to_events(&j, Bytes::from_static(br#"[{"body":"a"}]"#), None, None, 10).unwrap();
        assert_eq!(bodies(&ok), ["a"]);
        let e = to_events(&j, Bytes::from_static(br#"[{"body":{}}]"#), None, None, 10).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.message.starts_with("element 0: body is not a string"),
            "{e:?}"
        );
        let e = to_events(&j, Bytes::from_static(b"[{},{}]"), None, None, 1).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        let e = to_events(
            &j,
            Bytes::from_static(b"[]"),
            Some("application/json; charset=latin1"),
            None,
            1,
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let nd = to_events(
            &j,
            Bytes::from_static(b"{\"body\":\"x\"}\n{\"body\":\"y\"}\n"),
            Some("application/x-ndjson"),
            None,
            10,
        )
        .unwrap();
        assert_eq!(bodies(&nd), ["x", "y"]);
        let blob = HandlerKind::CoreBlob {
            mandatory: vec!["id".into()],
        };
        let e = to_events(&blob, Bytes::from_static(b"x"), None, Some("a=1"), 10).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let v = to_events(&blob, Bytes::from_static(b"x"), None, Some("id=7"), 10).unwrap();
        assert_eq!(v[0].headers.get("id"), Some("7"));
    }

    #[test]
    fn gunzip_limits_the_decompressed_size() {
        let data = vec![b'a'; 1_000_000];
        let packed = gz(&data);
        assert!(packed.len() < 5_000);
        assert_eq!(gunzip(&packed, 1_000_000).unwrap().len(), 1_000_000);
        let e = gunzip(&packed, 999_999).unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        // Two members concatenated (as `cat a.gz b.gz`).
        let mut two = gz(b"[{\"body\":\"1\"},");
        two.extend(gz(b"{\"body\":\"2\"}]"));
        assert_eq!(
            &gunzip(&two, 100).unwrap()[..],
            b"[{\"body\":\"1\"},{\"body\":\"2\"}]"
        );
        let e = gunzip(b"\x1f\x8bnot gzip", 100).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("corrupt"), "{e:?}");
    }

    #[tokio::test]
    async fn statuses_over_real_sockets() {
        let ch = TestChannel::new(1000, 100);
        let (port, cx, task) = start(settings(HandlerKind::Json, 2000), ch.clone()).await;
        let c = cx.counters.clone();
        let ok = r#"[{"headers":{"h":"Zürich"},"body":"one"},{"body":"two"}]"#.as_bytes();
        assert_eq!(request(port, "POST", "/", &[], ok).await.0, 200);
        let got = ch.drain();
        assert_eq!(bodies(&got), ["one", "two"]);
        assert_eq!(got[0].headers.get("h"), Some("Zürich"));
        // Any path is served, as Flume's servlet is mapped to `/`.
        assert_eq!(
            request(port, "POST", "/any/path?x=1", &[], b"[]").await.0,
            200
        );
        let (s, msg) = request(
            port,
            "POST",
            "/",
            &[],
            br#"[{"body":"a"},{"body":1},{"body":"c"},{"body":["x"]}]"#,
        )
        .await;
        assert_eq!(s, 400);
        assert!(
            msg.starts_with("element 3: body is not a string (found an array)"),
            "{msg}"
        );
        let (s, _) = request(port, "GET", "/", &[], b"").await;
        assert_eq!(s, 405);
        let (s, msg) = request(port, "POST", "/", &[], &vec![b' '; 2001]).await;
        assert_eq!(s, 413, "{msg}");
        let (s, _) = request(port, "POST", "/", &[("Content-Encoding", "br")], b"[]").await;
        assert_eq!(s, 415);
        // gzip, and a gzip bomb that expands past the limit.
        let (s, _) = request(port, "POST", "/", &[("Content-Encoding", "gzip")], &gz(ok)).await;
        assert_eq!(s, 200);
        assert_eq!(bodies(&ch.drain()), ["one", "two"]);
        let bomb = gz(&vec![b' '; 100_000]);
        let (s, msg) = request(port, "POST", "/", &[("Content-Encoding", "gzip")], &bomb).await;
        assert_eq!(s, 413, "{msg}");
        assert!(msg.contains("decompressed"), "{msg}");
        // More events than a transaction takes: 413 before anything is put.
        let many = format!("[{}{{}}]", "{},".repeat(100));
        assert_eq!(
            request(port, "POST", "/", &[], many.as_bytes()).await.0,
            413
        );
        // Full channel: 503, nothing kept.
        ch.set_refusing(true);
        let (s, msg) = request(port, "POST", "/", &[], ok).await;
        assert_eq!(s, 503, "{msg}");
        assert!(ch.drain().is_empty());
        ch.set_refusing(false);
        assert_eq!(c.append_batch_received.get(), 4);
        assert_eq!(c.append_batch_accepted.get(), 3);
        assert_eq!(c.event_received.get(), 6);
        assert_eq!(c.event_accepted.get(), 4);
        assert_eq!(c.channel_write_fail.get(), 1);
        assert_eq!(c.event_read_fail.get(), 5);
        cx.shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_stalled_body_gets_408_and_shutdown_closes_idle_connections() {
        let ch = TestChannel::new(1000, 100);
        let s = Settings {
            idle_timeout: Duration::from_millis(300),
            max_threads: Some(1),
            ..settings(HandlerKind::Json, 1000)
        };
        let (port, cx, task) = start(s, ch.clone()).await;
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n[{}")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = c.read(&mut buf).await.unwrap();
        let reply = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
        assert!(reply.contains("stalled"), "{reply}");
        assert_eq!(cx.counters.event_read_fail.get(), 1);
        // An idle keep-alive connection is closed by the header read timeout...
        let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
            .await
            .expect("the idle connection is closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
        cx.shutdown.cancel();
        task.await.unwrap();
        // A connection left open (30 s idle timeout) does not hold a stopping source up: its
        // task shuts it down gracefully at once.
        let (port, cx, task) = start(settings(HandlerKind::Json, 1000), ch.clone()).await;
        let _open = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let counters = cx.counters.clone();
        crate::components::sources::testing::wait_until("an open connection", || {
            counters.open_connection.get() == 1
        })
        .await;
        cx.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the source stops promptly")
            .unwrap();
        assert_eq!(counters.open_connection.get(), 0);
    }

    #[tokio::test]
    async fn chunked_bodies_are_limited_while_reading() {
        let ch = TestChannel::new(1000, 100);
        let (port, cx, task) = start(
            settings(HandlerKind::MorphlineBlob { max_blob_length: 4 }, 100),
            ch.clone(),
        )
        .await;
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(b"POST /?name=v HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n6\r\nabcdef\r\n0\r\n\r\n").await.unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        let got = ch.drain();
        assert_eq!(bodies(&got), ["abcd"]);
        assert_eq!(got[0].headers.get("name"), Some("v"));
        assert_eq!(got[0].headers.get("Content-Type"), Some("text/plain"));
        // Keep-alive: the same connection takes a chunked body over the limit -> 413.
        let chunk = "x".repeat(60);
        let req = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3c\r\n{chunk}\r\n3c\r\n{chunk}\r\n0\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 413"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        cx.shutdown.cancel();
        task.await.unwrap();
    }
}
