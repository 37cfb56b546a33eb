//! The agent's HTTP server: Flume's `/metrics` JSON, the Prometheus text format, `/health`,
//! `/ready`, and the web console (`/`, `/events`, `/config`; see [`console`]).
//!
//! Started by `-Dflume.monitoring.type=http` (Flume's spelling, with
//! `flume.monitoring.port`, default 41414, and flumen's `flume.monitoring.host`, default
//! 127.0.0.1) or `--http ADDR`. Unlike Flume, which listens on every interface, the server
//! binds the loopback interface unless told otherwise.
//!
//! Invariants:
//! - handlers only read atomics (and take the registry's lock for a snapshot of `Arc`s): the
//!   server never slows or blocks the data path;
//! - only GET (and HEAD, which axum answers from GET) are routed; other methods on a known
//!   path get 405, unknown paths 404;
//! - `/proc` reads run on the blocking pool.
//!
//! Extending: [`router`] returns an `axum::Router` over [`AppState`]; further pages are added
//! with `router(state).merge(other)`, as the console's router is. A live view subscribes with [`AppState::subscribe`] (one shared sampler, see
//! [`feed`]) and turns the snapshots into Server-Sent Events.

pub mod config_view;
pub mod console;
pub mod feed;
pub mod flume_json;
pub mod health;
pub mod process;
pub mod prometheus;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flumen_core::{CancellationToken, MetricsRegistry};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Flume's default monitoring port (`HTTPMetricsServer.DEFAULT_PORT`).
pub const FLUME_DEFAULT_PORT: u16 = 41414;

/// Flume's class name for `flume.monitoring.type=http`.
const HTTP_MONITOR_CLASS: &str = "org.apache.flume.instrumentation.http.HTTPMetricsServer";

/// Flume's JSON content type.
const JSON: &str = "application/json;charset=utf-8";

/// What the server reads: the counters, the agent's name and readiness settings. Cheap to
/// clone; shared by every handler.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<MetricsRegistry>,
    agent: String,
    agent_started: AtomicBool,
    sink_failure: Duration,
    /// The live feed, started by the first subscriber.
    feed: OnceLock<watch::Receiver<Arc<feed::Snapshot>>>,
}

impl AppState {
    /// State for agent `agent` reporting into `registry`; a sink failing longer than
    /// `sink_failure` makes the agent not ready.
    pub fn new(registry: Arc<MetricsRegistry>, agent: &str, sink_failure: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                agent: agent.to_owned(),
                agent_started: AtomicBool::new(false),
                sink_failure,
                feed: OnceLock::new(),
            }),
        }
    }

    /// The counters every component reports into.
    pub fn registry(&self) -> &Arc<MetricsRegistry> {
        &self.inner.registry
    }

    /// The agent's name (the `agent` label).
    pub fn agent(&self) -> &str {
        &self.inner.agent
    }

    /// A receiver of live snapshots of every component, sampled every [`feed::PERIOD`]. The
    /// first call starts the sampler, so it must run inside the Tokio runtime (any handler
    /// does).
    pub fn subscribe(&self) -> watch::Receiver<Arc<feed::Snapshot>> {
        self.inner
            .feed
            .get_or_init(|| feed::spawn(self.inner.registry.clone(), feed::PERIOD))
            .clone()
    }

    /// Marks the first configuration as applied (until then `/ready` says 503).
    pub fn set_agent_started(&self) {
        self.inner.agent_started.store(true, Ordering::Release);
    }
}

/// The routes: `/metrics`, `/metrics/prometheus`, `/health`, `/ready`; 404 for the rest.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/metrics/prometheus", get(metrics_prometheus))
        .route("/health", get(health_handler))
        .route("/ready", get(ready))
        .fallback(not_found)
        .with_state(state)
}

/// Binds the server's socket.
///
/// # Errors
/// A message naming the address (port in use, address not available...).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot start the HTTP metrics server on {addr}: {e}"))
}

/// Serves `router` on `listener` until `stop` fires.
pub fn serve(listener: TcpListener, router: Router, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let addr = listener.local_addr().ok();
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        {
            tracing::error!(?addr, %error, "HTTP metrics server failed.");
        }
    })
}

/// Where to serve, from `--http` and the `-Dflume.monitoring.*` properties.
#[derive(Debug, PartialEq, Eq)]
pub struct Monitoring {
    /// The address to bind, if any server was asked for.
    pub addr: Option<SocketAddr>,
    /// Problems worth a warning (unsupported monitor types, conflicting options).
    pub warnings: Vec<String>,
}

/// Resolves the server address. `--http` accepts `HOST:PORT`, `IP:PORT` or a bare `PORT`
/// (loopback). `flume.monitoring.type=http` (or Flume's class name) uses
/// `flume.monitoring.port` (default 41414) on `flume.monitoring.host` (default 127.0.0.1);
/// other types (ganglia, custom classes) are not supported and only warned about.
///
/// # Errors
/// An unparsable address or port.
pub fn monitoring(
    http: Option<&str>,
    defines: &BTreeMap<String, String>,
) -> Result<Monitoring, String> {
    let mut warnings = Vec::new();
    let flume = match defines.get("flume.monitoring.type").map(|s| s.trim()) {
        None | Some("") => None,
        Some(t) if t.eq_ignore_ascii_case("http") || t == HTTP_MONITOR_CLASS => {
            let port = match defines.get("flume.monitoring.port") {
                None => FLUME_DEFAULT_PORT,
                Some(p) => p.trim().parse::<u16>().map_err(|_| {
                    format!("-Dflume.monitoring.port={p}: not a port number (0-65535)")
                })?,
            };
            let host = defines
                .get("flume.monitoring.host")
                .map_or("127.0.0.1", |h| h.trim());
            Some(resolve(host, port)?)
        }
        Some(t) => {
            warnings.push(format!(
                "-Dflume.monitoring.type={t} is not supported (flumen serves `http` only: JSON, Prometheus, health); no monitoring started for it"
            ));
            None
        }
    };
    let addr = match http {
        Some(a) => {
            let addr = parse_http_addr(a)?;
            if let Some(f) = flume
                && f != addr
            {
                warnings.push(format!(
                    "--http {addr} overrides -Dflume.monitoring.* ({f}); serving on {addr} only"
                ));
            }
            Some(addr)
        }
        None => flume,
    };
    Ok(Monitoring { addr, warnings })
}

/// `--http` value: `IP:PORT`, `HOST:PORT`, `:PORT` or `PORT`.
fn parse_http_addr(a: &str) -> Result<SocketAddr, String> {
    let a = a.trim();
    if let Ok(addr) = a.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port_only = a.strip_prefix(':').unwrap_or(a);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    match a.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("--http {a}: `{port}` is not a port number"))?;
            resolve(host, port)
        }
        None => Err(format!(
            "--http {a}: expected ADDRESS:PORT (for example 127.0.0.1:34545) or a port"
        )),
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve metrics server host `{host}`: {e}"))?
        .next()
        .ok_or_else(|| format!("metrics server host `{host}` has no address"))
}

/// Whether the client (a Prometheus scraper) asks for the text format.
fn wants_prometheus(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text") || v.contains("text/plain"))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if wants_prometheus(&headers) {
        return prometheus_response(state).await;
    }
    let body = flume_json::render(&state.registry().entries());
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))],
        body,
    )
        .into_response()
}

async fn metrics_prometheus(State(state): State<AppState>) -> Response {
    prometheus_response(state).await
}

async fn prometheus_response(state: AppState) -> Response {
    let process = tokio::task::spawn_blocking(process::read_self)
        .await
        .ok()
        .flatten();
    let body = prometheus::render(state.agent(), &state.registry().entries(), process.as_ref());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(prometheus::CONTENT_TYPE),
        )],
        body,
    )
        .into_response()
}

async fn health_handler() -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))],
        health::HEALTH_BODY,
    )
        .into_response()
}

async fn ready(State(state): State<AppState>) -> Response {
    let reasons = health::check(
        state.inner.agent_started.load(Ordering::Acquire),
        &state.registry().entries(),
        state.inner.sink_failure,
    );
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(JSON))],
        health::ready_body(&reasons),
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defines(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn monitoring_options() {
        let none = monitoring(None, &defines(&[])).expect("ok");
        assert_eq!(none.addr, None);
        let flume = monitoring(
            None,
            &defines(&[
                ("flume.monitoring.type", "http"),
                ("flume.monitoring.port", "34545"),
            ]),
        )
        .expect("ok");
        assert_eq!(flume.addr, Some("127.0.0.1:34545".parse().expect("addr")));
        let default_port = monitoring(
            None,
            &defines(&[("flume.monitoring.type", HTTP_MONITOR_CLASS)]),
        )
        .expect("ok");
        assert_eq!(
            default_port.addr,
            Some("127.0.0.1:41414".parse().expect("addr"))
        );
        let wide = monitoring(
            None,
            &defines(&[
                ("flume.monitoring.type", "HTTP"),
                ("flume.monitoring.host", "0.0.0.0"),
            ]),
        )
        .expect("ok");
        assert_eq!(wide.addr, Some("0.0.0.0:41414".parse().expect("addr")));
        let ganglia =
            monitoring(None, &defines(&[("flume.monitoring.type", "ganglia")])).expect("ok");
        assert_eq!(ganglia.addr, None);
        assert_eq!(ganglia.warnings.len(), 1);
        assert!(
            monitoring(
                None,
                &defines(&[
                    ("flume.monitoring.type", "http"),
                    ("flume.monitoring.port", "x")
                ])
            )
            .is_err()
        );
        assert_eq!(
            monitoring(Some("9000"), &defines(&[])).expect("ok").addr,
            Some("127.0.0.1:9000".parse().expect("addr"))
        );
        assert_eq!(
            monitoring(Some("0.0.0.0:9000"), &defines(&[]))
                .expect("ok")
                .addr,
            Some("0.0.0.0:9000".parse().expect("addr"))
        );
        assert_eq!(
            monitoring(Some("[::1]:9000"), &defines(&[]))
                .expect("ok")
                .addr,
            Some("[::1]:9000".parse().expect("addr"))
        );
        assert!(monitoring(Some("localhost:nope"), &defines(&[])).is_err());
        let both = monitoring(
            Some("127.0.0.1:9000"),
            &defines(&[("flume.monitoring.type", "http")]),
        )
        .expect("ok");
        assert_eq!(both.addr, Some("127.0.0.1:9000".parse().expect("addr")));
        assert_eq!(both.warnings.len(), 1);
    }

    #[test]
    fn negotiation() {
        let mut h = HeaderMap::new();
        assert!(!wants_prometheus(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!wants_prometheus(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            ),
        );
        assert!(wants_prometheus(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/plain;version=0.0.4"),
        );
        assert!(wants_prometheus(&h));
    }
}
