//! The live web console: `GET /` (the page), `GET /assets/{file}` (its script and style,
//! embedded in the binary: no network, no build step), `GET /config` (the effective
//! configuration, see [`config_view`]) and `GET /events` (Server-Sent Events).
//!
//! `/events` sends, on connection, a `config` event (the `/config` document) and a `metrics`
//! event sampled right away, then a `metrics` event per tick of the shared [`feed`] and a new
//! `config` event whenever the agent applies or rejects a configuration. Each `metrics` event
//! holds every component's Flume attributes plus what the console needs that Flume's document
//! lacks (sinks: last delivered batch and failing-since times; channels: age of the oldest
//! event). The streams end when the server stops, so an open console never delays shutdown;
//! the page reconnects by itself when the agent comes back.
//!
//! Invariants: the document is rebuilt only when the configuration changes, never per
//! request; a slow client only ever gets the latest sample (`watch` channels).

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use flumen_config::{AgentDef, Diagnostic};
use flumen_core::CancellationToken;
use flumen_core::metrics::ComponentMetrics;
use futures_util::Stream;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::config_view::{self, Outcome, Reload, Running};
use super::{AppState, feed};

/// The page.
const INDEX_HTML: &str = include_str!("assets/index.html");
/// Its script.
const CONSOLE_JS: &str = include_str!("assets/console.js");
/// Its style.
const CONSOLE_CSS: &str = include_str!("assets/console.css");
/// Its icon.
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

/// The browser's reconnection delay after the stream breaks (agent restart).
const RETRY: Duration = Duration::from_secs(1);

/// What the console's handlers read: the metrics server's state plus the configuration
/// document. Cheap to clone.
#[derive(Clone)]
pub struct ConsoleState {
    app: AppState,
    config: Arc<watch::Sender<Arc<Doc>>>,
    stop: CancellationToken,
}

/// The configuration as last published.
struct Doc {
    components: Value,
    /// The full `/config` document, rendered once.
    rendered: Value,
}

impl ConsoleState {
    /// A console over `app`; its event streams end when `stop` fires.
    pub fn new(app: AppState, stop: CancellationToken) -> Self {
        let components = json!({
            "agent": app.agent(),
            "file": null,
            "sources": [], "channels": [], "sinks": [], "sinkgroups": [],
        });
        let doc = Doc {
            rendered: render(&components, None, 0),
            components,
        };
        Self {
            app,
            config: Arc::new(watch::channel(Arc::new(doc)).0),
            stop,
        }
    }

    /// Publishes a configuration that now runs: `def` restricted to `running`, read from
    /// `file`, with its `warnings`.
    pub fn applied(&self, def: &AgentDef, file: &Path, running: &Running, warnings: &[Diagnostic]) {
        let components = config_view::components(def, file, running);
        self.publish(
            Some(components),
            Reload {
                time: Utc::now(),
                outcome: Outcome::Applied,
                diagnostics: warnings.to_vec(),
            },
        );
    }

    /// Publishes a rejected reload: the components stay, `reload` shows the `diagnostics`.
    pub fn rejected(&self, diagnostics: &[Diagnostic]) {
        self.publish(
            None,
            Reload {
                time: Utc::now(),
                outcome: Outcome::Rejected,
                diagnostics: diagnostics.to_vec(),
            },
        );
    }

    fn publish(&self, components: Option<Value>, reload: Reload) {
        self.config.send_modify(|doc| {
            let generation = doc.rendered["generation"].as_u64().unwrap_or(0) + 1;
            let components = components.unwrap_or_else(|| doc.components.clone());
            *doc = Arc::new(Doc {
                rendered: render(&components, Some(&reload), generation),
                components,
            });
        });
    }

    /// The current `/config` document.
    pub fn config(&self) -> Value {
        self.config.borrow().rendered.clone()
    }
}

/// The process start, for the uptime in the header.
fn started() -> DateTime<Utc> {
    static STARTED: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *STARTED.get_or_init(Utc::now)
}

fn render(components: &Value, reload: Option<&Reload>, generation: u64) -> Value {
    match reload {
        Some(r) => config_view::document(components, r, started(), generation),
        None => {
            let mut doc = components.clone();
            if let Value::Object(m) = &mut doc {
                m.insert("reload".into(), Value::Null);
                m.insert("startedMs".into(), Value::from(ms(started())));
                m.insert("generation".into(), Value::from(generation));
            }
            doc
        }
    }
}

fn ms(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

/// The console's routes, to merge into [`super::router`]'s.
pub fn router(state: ConsoleState) -> Router {
    // Touch the start time so uptime counts from the server's start, not the first request.
    let _ = started();
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        .route("/config", get(config))
        .route("/events", get(events))
        .with_state(state)
}

fn text(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    text("text/html; charset=utf-8", INDEX_HTML)
}

async fn asset(UrlPath(file): UrlPath<String>) -> Response {
    match file.as_str() {
        "console.js" => text("text/javascript; charset=utf-8", CONSOLE_JS),
        "console.css" => text("text/css; charset=utf-8", CONSOLE_CSS),
        "favicon.svg" => text("image/svg+xml", FAVICON_SVG),
        _ => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

async fn config(State(state): State<ConsoleState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        )],
        state.config().to_string(),
    )
        .into_response()
}

/// The `metrics` event for one snapshot, with the extras read from the registry.
fn metrics_event(state: &AppState, snap: &feed::Snapshot) -> Event {
    let extras: std::collections::HashMap<String, ComponentMetrics> = state
        .registry()
        .entries()
        .into_iter()
        .map(|e| (e.key, e.group))
        .collect();
    let mut comps = Map::new();
    for c in &snap.components {
        let attrs: Map<String, Value> = c
            .attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
            .collect();
        let mut o = Map::new();
        o.insert(
            "type".into(),
            c.component_type.as_deref().map_or(Value::Null, Value::from),
        );
        o.insert("attrs".into(), Value::Object(attrs));
        match extras.get(&c.key) {
            Some(ComponentMetrics::Sink(s)) => {
                o.insert("lastSuccessMs".into(), s.last_success_ms.get().into());
                o.insert("failingSinceMs".into(), s.failing_since_ms.get().into());
            }
            Some(ComponentMetrics::Channel(ch)) => {
                let age = u64::try_from(ch.oldest_event_age().as_millis()).unwrap_or(u64::MAX);
                o.insert("oldestAgeMs".into(), age.into());
            }
            _ => {}
        }
        comps.insert(c.key.clone(), Value::Object(o));
    }
    Event::default()
        .event("metrics")
        .data(json!({ "at": snap.at_ms, "components": comps }).to_string())
}

fn config_event(state: &ConsoleState) -> Event {
    Event::default()
        .event("config")
        .retry(RETRY)
        .data(state.config().to_string())
}

/// Where a client's stream is.
struct Client {
    state: ConsoleState,
    feed: watch::Receiver<Arc<feed::Snapshot>>,
    config: watch::Receiver<Arc<Doc>>,
    step: u8,
}

async fn next_event(mut c: Client) -> Option<(Result<Event, Infallible>, Client)> {
    let event = match c.step {
        0 => {
            c.step = 1;
            c.config.borrow_and_update();
            config_event(&c.state)
        }
        1 => {
            // A first sample now, not at the next tick.
            c.step = 2;
            c.feed.borrow_and_update();
            let snap = feed::sample(c.state.app.registry());
            metrics_event(&c.state.app, &snap)
        }
        _ => {
            tokio::select! {
                () = c.state.stop.cancelled() => return None,
                r = c.config.changed() => {
                    r.ok()?;
                    c.config.borrow_and_update();
                    config_event(&c.state)
                }
                r = c.feed.changed() => {
                    r.ok()?;
                    let snap = c.feed.borrow_and_update().clone();
                    metrics_event(&c.state.app, &snap)
                }
            }
        }
    };
    Some((Ok(event), c))
}

async fn events(
    State(state): State<ConsoleState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let client = Client {
        feed: state.app.subscribe(),
        config: state.config.subscribe(),
        state,
        step: 0,
    };
    Sse::new(futures_util::stream::unfold(client, next_event)).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;

    use flumen_core::metrics::ComponentMetrics;
    use flumen_core::{MetricsRegistry, SinkCounters};

    use super::*;

    async fn serve(state: &ConsoleState) -> std::net::SocketAddr {
        let listener = super::super::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = super::super::router(state.app.clone()).merge(router(state.clone()));
        super::super::serve(listener, router, state.stop.clone());
        addr
    }

    fn state() -> ConsoleState {
        let registry = Arc::new(MetricsRegistry::default());
        let k1 = Arc::new(SinkCounters::default());
        k1.event_drain_success.set(7);
        k1.last_success_ms.set(1234);
        registry.register_typed("k1", ComponentMetrics::Sink(k1), Some("null".into()));
        let app = AppState::new(registry, "a1", Duration::from_secs(60));
        ConsoleState::new(app, CancellationToken::new())
    }

    /// A blocking GET on a fresh connection: (status line + headers, body).
    fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read");
        let (head, body) = raw.split_once("\r\n\r\n").expect("head");
        (head.to_owned(), body.to_owned())
    }

    fn conf(text: &str) -> AgentDef {
        let (entries, _) = flumen_config::parse_properties(text);
        flumen_config::load_agent(&entries, "a1", &|_| None).0
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn config_document_follows_reloads() {
        let state = state();
        let addr = serve(&state).await;
        let def = conf(
            "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
             a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n\
             a1.channels.c1.type = memory\n\
             a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\na1.sinks.k1.password = pw\n",
        );
        state.applied(
            &def,
            Path::new("f.conf"),
            &Running::all(&def),
            &[Diagnostic::warning("w")
                .with_file("f.conf".into())
                .at_line(2)],
        );
        let (head, body) = tokio::task::spawn_blocking(move || get(addr, "/config"))
            .await
            .expect("join");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("application/json"), "{head}");
        let doc: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(doc["agent"], "a1");
        assert_eq!(doc["generation"], 1);
        assert_eq!(doc["sinks"][0]["properties"]["password"], config_view::MASK);
        assert_eq!(doc["reload"]["outcome"], "applied");
        assert_eq!(doc["reload"]["warnings"][0], "f.conf:2: warning: w");
        let applied_at = doc["reload"]["time"].clone();

        state.rejected(&[Diagnostic::error("bad")
            .with_file("f.conf".into())
            .at_line(9)]);
        let doc = state.config();
        assert_eq!(doc["generation"], 2);
        assert_eq!(doc["reload"]["outcome"], "rejected");
        assert_eq!(doc["reload"]["errors"][0], "f.conf:9: error: bad");
        // The running components stay.
        assert_eq!(doc["sources"][0]["name"], "r1");
        assert!(doc["reload"]["time"].as_str() >= applied_at.as_str());

        for (path, ty) in [
            ("/", "text/html"),
            ("/assets/console.js", "text/javascript"),
            ("/assets/console.css", "text/css"),
        ] {
            let (head, body) = tokio::task::spawn_blocking(move || get(addr, path))
                .await
                .expect("join");
            assert!(
                head.starts_with("HTTP/1.1 200") && head.contains(ty),
                "{path}: {head}"
            );
            assert!(!body.is_empty());
        }
        let (head, _) = tokio::task::spawn_blocking(move || get(addr, "/assets/nope.js"))
            .await
            .expect("join");
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        state.stop.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_start_promptly_and_follow_config() {
        let state = state();
        let addr = serve(&state).await;
        let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(move || {
            let mut s = TcpStream::connect(addr).expect("connect");
            write!(s, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
            let mut event = String::new();
            for line in BufReader::new(s).lines() {
                let Ok(line) = line else { return };
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ")
                    && tx.send((event.clone(), d.to_owned())).is_err()
                {
                    return;
                }
            }
        });
        let next = |rx: &std::sync::mpsc::Receiver<(String, String)>| {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("an event within 10 s")
        };
        let rx2 = tokio::task::spawn_blocking(move || {
            let first = next(&rx);
            let second = next(&rx);
            (first, second, rx)
        });
        let (first, second, rx) = rx2.await.expect("join");
        assert_eq!(first.0, "config");
        assert_eq!(second.0, "metrics");
        // The first sample does not wait for the feed's tick.
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        let m: Value = serde_json::from_str(&second.1).expect("json");
        let k1 = &m["components"]["SINK.k1"];
        assert_eq!(k1["type"], "null");
        assert_eq!(k1["attrs"]["EventDrainSuccessCount"], "7");
        assert_eq!(k1["lastSuccessMs"], 1234);

        state.rejected(&[Diagnostic::error("bad")]);
        let rx3 = tokio::task::spawn_blocking(move || {
            // Ticks may come first; the config event must follow.
            loop {
                let (e, d) = next(&rx);
                if e == "config" {
                    return d;
                }
            }
        });
        let doc: Value = serde_json::from_str(&rx3.await.expect("join")).expect("json");
        assert_eq!(doc["reload"]["outcome"], "rejected");
        state.stop.cancel();
    }
}
