//! The `avro` source (Flume's `AvroSource`): an Avro RPC server (Netty framing, the Avro IPC
//! handshake, `append`/`appendBatch`) that Flume avro sinks, Flume SDK clients and
//! `flume-ng avro-client` can send to. The wire work is in `flumen_rpc::avro`.
//!
//! Invariants:
//! - a call is answered `OK` only after its events are committed to every required channel
//!   (`SourceContext::deliver` returned `Ok`); otherwise `FAILED` — never `OK` for events the
//!   source did not keep; an `appendBatch` is one channel transaction;
//! - counters: `AppendReceived`/`AppendAccepted` for `append`, `AppendBatch*` for
//!   `appendBatch`, `Event*`, `OpenConnectionCount`, `ChannelWriteFail`;
//! - malformed input closes its connection (logged), never the source.
//!
//! TLS with deflate is Flume 1.11's layering, zlib(TLS(frames)) (Flume ≤ 1.9 used
//! TLS(zlib(frames)); that pair of options never interoperated between those versions either).
//! The TLS keys and their checks are shared with the other network sources ([`TlsServerKeys`]).
//!
//! Differences from Flume: the TLS keystore is a PEM file (certificate chain + key), not a
//! JKS (`keystore-password` and `keystore-type` are ignored with a warning; the JVM's
//! `javax.net.ssl.keyStore*` fallbacks do not exist); `ipFilterRules`
//! `name:` patterns are matched against `localhost` for loopback peers and against the IP text
//! otherwise (no reverse DNS); `threads` bounds concurrently executing calls, not I/O threads.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flumen_config::{Diagnostic, Props};
use flumen_core::{Source, SourceContext, SourceError};
use flumen_rpc::avro::{AvroHandler, Call, PeerFilter, ServerOptions, Status};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::components::sources::tls_keys::TlsServerKeys;
use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

/// Registry entry of the `avro` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "avro",
    classes: &["org.apache.flume.source.AvroSource"],
    description: "Avro RPC server: receives events from Flume avro sinks and clients",
    batch_size_key: None,
    build,
};

/// `compression-type` of the avro source and sink.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CompressionType {
    /// Plain frames.
    #[default]
    None,
    /// One zlib stream per direction.
    Deflate,
}

/// Configuration of the `avro` source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AvroSourceConfig {
    /// Host name or IP address to listen on. Flume key: `bind`. Required.
    pub bind: Option<String>,
    /// TCP port. Flume key: `port`. Required.
    pub port: Option<u16>,
    /// Most calls executed at once. Flume key: `threads`. Default: unlimited.
    pub threads: Option<usize>,
    /// `none` or `deflate`. Flume key: `compression-type`. Default: `none`.
    #[serde(rename = "compression-type")]
    pub compression_type: CompressionType,
    /// TLS: `ssl`, `keystore` and Flume's other TLS keys ([`TlsServerKeys`]).
    #[serde(rename = "*")]
    pub tls: TlsServerKeys,
    /// Apply `ipFilterRules`. Flume key: `ipFilter`. Default: false.
    #[serde(rename = "ipFilter")]
    pub ip_filter: bool,
    /// `allow|deny:ip|name:<pattern>,...`, first match wins, `*` wildcards. Flume key:
    /// `ipFilterRules`. Default: none.
    #[serde(rename = "ipFilterRules")]
    pub ip_filter_rules: Option<String>,
}

impl Default for AvroSourceConfig {
    fn default() -> Self {
        Self {
            bind: None,
            port: None,
            threads: None,
            compression_type: CompressionType::None,
            tls: TlsServerKeys::default(),
            ip_filter: false,
            ip_filter_rules: None,
        }
    }
}

impl AvroSourceConfig {
    /// Required keys, range checks, the IP filter rules; every problem found.
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
        errors.extend(self.tls.validate(props));
        if self.ip_filter {
            match &self.ip_filter_rules {
                None => errors
                    .push(props.error("ipFilterRules", "`ipFilter = true` needs `ipFilterRules`")),
                Some(r) => {
                    if let Err(e) = parse_rules(r) {
                        errors.push(props.error("ipFilterRules", e));
                    }
                }
            }
        }
        errors
    }
}

/// One `ipFilterRules` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    allow: bool,
    by_name: bool,
    pattern: String,
}

fn parse_rules(text: &str) -> Result<Vec<Rule>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let mut parts = r.splitn(3, ':');
            let (Some(verdict), Some(kind), Some(pattern)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!(
                    "rule `{r}`: expected `allow|deny:ip|name:<pattern>`"
                ));
            };
            let allow = match verdict.trim() {
                "allow" => true,
                "deny" => false,
                v => return Err(format!("rule `{r}`: `{v}` is neither allow nor deny")),
            };
            let by_name = match kind.trim() {
                "ip" => false,
                "name" => true,
                k => return Err(format!("rule `{r}`: `{k}` is neither ip nor name")),
            };
            Ok(Rule {
                allow,
                by_name,
                pattern: pattern.trim().to_string(),
            })
        })
        .collect()
}

/// Glob match with `*` (any run of characters).
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// Whether `ip` may connect: the first matching rule decides; no match allows (as Netty's
/// rule handler does).
fn allowed(rules: &[Rule], ip: IpAddr) -> bool {
    let text = ip.to_string();
    for rule in rules {
        let hit = if rule.by_name {
            glob(&rule.pattern, &text) || (ip.is_loopback() && glob(&rule.pattern, "localhost"))
        } else {
            glob(&rule.pattern, &text)
        };
        if hit {
            return rule.allow;
        }
    }
    true
}

/// Splits a space-separated Flume list.
pub(crate) fn list(v: &Option<String>) -> Vec<String> {
    v.as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    let (source, mut warnings) = build_with(props, AvroSourceConfig::validate, |c| {
        let rules = match (c.ip_filter, &c.ip_filter_rules) {
            (true, Some(r)) => Some(parse_rules(r).map_err(|e| vec![Diagnostic::error(e)])?),
            _ => None,
        };
        let tls = c.tls.acceptor(props)?;
        Ok(Box::new(AvroSource {
            bind: c.bind.unwrap_or_default().trim().to_string(),
            port: c.port.unwrap_or_default(),
            threads: c.threads,
            options: ServerOptions {
                deflate: c.compression_type == CompressionType::Deflate,
                tls,
                ..Default::default()
            },
            rules,
        }) as Box<dyn Source>)
    })?;
    warnings.extend(TlsServerKeys::warnings(props));
    Ok((source, warnings))
}

/// The avro RPC source.
#[derive(Debug)]
pub struct AvroSource {
    bind: String,
    port: u16,
    threads: Option<usize>,
    options: ServerOptions,
    rules: Option<Vec<Rule>>,
}

#[async_trait::async_trait]
impl Source for AvroSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let listener = TcpListener::bind((self.bind.as_str(), self.port))
            .await
            .map_err(|source| SourceError::Bind {
                addr: format!("{}:{}", self.bind, self.port),
                source,
            })?;
        self.serve(listener, cx).await
    }
}

impl AvroSource {
    async fn serve(
        self: Box<Self>,
        listener: TcpListener,
        cx: SourceContext,
    ) -> Result<(), SourceError> {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(source = %cx.name, %addr, "Avro source listening.");
        }
        let filter: Option<PeerFilter> = self.rules.map(|rules| {
            Arc::new(move |peer: SocketAddr| allowed(&rules, peer.ip())) as PeerFilter
        });
        let shutdown = cx.shutdown.clone();
        let handler = Arc::new(Handler {
            permits: self.threads.map(|n| Arc::new(Semaphore::new(n))),
            failing: AtomicBool::new(false),
            cx,
        });
        flumen_rpc::avro::serve(listener, handler, self.options, filter, shutdown).await;
        Ok(())
    }
}

/// Executes calls against the source's channels.
struct Handler {
    cx: SourceContext,
    permits: Option<Arc<Semaphore>>,
    /// The channels refused the previous call: log an outage once, not per call.
    failing: AtomicBool,
}

impl AvroHandler for Handler {
    fn call(&self, call: Call) -> BoxFuture<'_, Status> {
        Box::pin(async move {
            let _permit = match &self.permits {
                Some(s) => s.acquire().await.ok(),
                None => None,
            };
            let result = match call {
                Call::Append(e) => self.cx.deliver_append(e).await,
                Call::AppendBatch(v) => self.cx.deliver(v).await,
                Call::Ping => return Status::Ok,
            };
            match result {
                Ok(()) => {
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!(source = %self.cx.name, "Channels accept events again.");
                    }
                    Status::Ok
                }
                Err(error) => {
                    if !self.failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(source = %self.cx.name, %error, "Channel refused events; answering FAILED.");
                    }
                    Status::Failed
                }
            }
        })
    }

    fn connection_opened(&self, peer: SocketAddr) {
        self.cx.counters.open_connection.inc();
        tracing::debug!(source = %self.cx.name, %peer, "Avro connection opened.");
    }

    fn connection_closed(&self, peer: SocketAddr) {
        self.cx.counters.open_connection.sub(1);
        tracing::debug!(source = %self.cx.name, %peer, "Avro connection closed.");
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, bodies, context, wait_until};
    use bytes::Bytes;
    use flumen_core::Event;
    use flumen_rpc::avro::{AvroClient, ClientError, ClientOptions};
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

    async fn start(
        src: AvroSource,
        ch: Arc<dyn flumen_core::Channel>,
    ) -> (u16, SourceContext, JoinHandle<Result<(), SourceError>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cx = context(ch);
        (
            port,
            cx.clone(),
            tokio::spawn(Box::new(src).serve(listener, cx)),
        )
    }

    fn plain() -> AvroSource {
        AvroSource {
            bind: "127.0.0.1".into(),
            port: 0,
            threads: None,
            options: ServerOptions::default(),
            rules: None,
        }
    }

    #[test]
    fn config_keys_and_errors() {
        let errs = build_props(&[]).err().unwrap();
        let msgs: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
        assert!(
            msgs.contains(&"missing required property `bind`"),
            "{msgs:?}"
        );
        assert!(
            msgs.contains(&"missing required property `port`"),
            "{msgs:?}"
        );
        let errs = build_props(&[("bind", "0.0.0.0"), ("port", "1"), ("ssl", "true")])
            .err()
            .unwrap();
        assert!(errs[0].message.contains("needs `keystore`"), "{errs:?}");
        let errs = build_props(&[
            ("bind", "0.0.0.0"),
            ("port", "1"),
            ("ipFilter", "true"),
            ("ipFilterRules", "allow:ip:1.2.3.4,maybe:ip:*"),
        ])
        .err()
        .unwrap();
        assert!(errs[0].message.contains("neither allow nor deny"));
        let (_, warnings) = build_props(&[
            ("bind", "0.0.0.0"),
            ("port", "1"),
            ("threads", "4"),
            ("compression-type", "DEFLATE"),
            ("ssl", "false"),
            ("keystore", "/x.jks"),
            ("ipFilter", "true"),
            ("ipFilterRules", "allow:name:localhost,deny:ip:*"),
        ])
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let (c, _) = props(&[]).deserialize::<AvroSourceConfig>().unwrap();
        assert_eq!(c, AvroSourceConfig::default());
        let table = crate::components::sources::SOURCES;
        for name in ["AVRO", "org.apache.flume.source.AvroSource"] {
            assert_eq!(
                crate::components::lookup(table, name).map(|d| d.name).ok(),
                Some("avro")
            );
        }
    }

    #[test]
    fn ip_rules_first_match_wins() {
        let rules = parse_rules("allow:ip:127.*, deny:name:*").unwrap();
        assert!(allowed(&rules, "127.0.0.1".parse().unwrap()));
        assert!(!allowed(&rules, "10.1.2.3".parse().unwrap()));
        let rules = parse_rules("deny:name:localhost").unwrap();
        assert!(!allowed(&rules, "127.0.0.1".parse().unwrap()));
        assert!(
            allowed(&rules, "10.0.0.1".parse().unwrap()),
            "no match allows"
        );
        assert!(glob("10.*.3", "10.1.2.3") && !glob("10.*.4", "10.1.2.3"));
    }

    #[tokio::test]
    async fn append_and_batch_are_committed_and_counted() {
        let ch = TestChannel::new(1000, 100);
        let (port, cx, task) = start(plain(), ch.clone()).await;
        let mut c = AvroClient::connect("127.0.0.1", port, &ClientOptions::default())
            .await
            .unwrap();
        let counters = cx.counters.clone();
        wait_until("an open connection", || counters.open_connection.get() == 1).await;
        c.append(&Event::new(Bytes::from_static(b"one")))
            .await
            .unwrap();
        let batch: Vec<Event> = ["two", "three"]
            .iter()
            .map(|b| Event::new(Bytes::from(*b)))
            .collect();
        c.append_batch(&batch).await.unwrap();
        assert_eq!(bodies(&ch.drain()), ["one", "two", "three"]);
        assert_eq!(counters.append_received.get(), 1);
        assert_eq!(counters.append_accepted.get(), 1);
        assert_eq!(counters.append_batch_received.get(), 1);
        assert_eq!(counters.append_batch_accepted.get(), 1);
        assert_eq!(counters.event_accepted.get(), 3);
        // Refused: FAILED, counted, nothing kept.
        ch.set_refusing(true);
        assert!(matches!(
            c.append_batch(&batch).await,
            Err(ClientError::Status(Status::Failed))
        ));
        assert_eq!(counters.channel_write_fail.get(), 1);
        assert!(ch.drain().is_empty());
        drop(c);
        wait_until("no open connection", || counters.open_connection.get() == 0).await;
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn ip_filter_drops_denied_peers_and_deflate_works() {
        let ch = TestChannel::new(1000, 100);
        let src = AvroSource {
            rules: Some(parse_rules("deny:ip:127.*").unwrap()),
            ..plain()
        };
        let (port, cx, task) = start(src, ch.clone()).await;
        assert!(
            AvroClient::connect("127.0.0.1", port, &ClientOptions::default())
                .await
                .is_err()
        );
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();

        let src = AvroSource {
            options: ServerOptions {
                deflate: true,
                ..Default::default()
            },
            threads: Some(1),
            ..plain()
        };
        let (port, cx, task) = start(src, ch.clone()).await;
        let opts = ClientOptions {
            deflate_level: Some(6),
            ..Default::default()
        };
        let mut c = AvroClient::connect("127.0.0.1", port, &opts).await.unwrap();
        c.append_batch(&[Event::new(Bytes::from_static(b"z"))])
            .await
            .unwrap();
        assert_eq!(bodies(&ch.drain()), ["z"]);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    /// A CA and a server certificate signed by it (for the name `flumen.test`, so host-name
    /// checks would fail on 127.0.0.1) made with the `openssl` CLI; `None` when it is missing.
    /// Returns (keystore PEM = chain + key, CA PEM).
    pub(crate) fn test_certs(
        dir: &std::path::Path,
    ) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
        let run = |args: &[&str]| {
            std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        std::fs::write(
            dir.join("leaf.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=DNS:flumen.test\n",
        )
        .ok()?;
        let ok = run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=flumen test CA",
            ],
        ]
        .concat())
            && run(&[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "leaf.key",
                    "-out",
                    "leaf.csr",
                    "-subj",
                    "/CN=flumen.test",
                ],
            ]
            .concat())
            && run(&[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "leaf.pem",
                "-days",
                "2",
                "-extfile",
                "leaf.ext",
            ]);
        if !ok {
            eprintln!("SKIPPED: openssl CLI unavailable; TLS not tested");
            return None;
        }
        let mut keystore = std::fs::read(dir.join("leaf.pem")).ok()?;
        keystore.extend(std::fs::read(dir.join("leaf.key")).ok()?);
        std::fs::write(dir.join("keystore.pem"), keystore).ok()?;
        Some((dir.join("keystore.pem"), dir.join("ca.pem")))
    }

    #[tokio::test]
    async fn tls_with_a_pem_keystore_and_truststore() {
        let dir = tempfile::tempdir().unwrap();
        let Some((keystore, ca)) = test_certs(dir.path()) else {
            return;
        };
        let ks = keystore.display().to_string();
        assert!(
            build_props(&[
                ("bind", "127.0.0.1"),
                ("port", "0"),
                ("ssl", "true"),
                ("keystore", &ks),
            ])
            .is_ok()
        );
        // TLS with deflate (Flume 1.11's zlib outside TLS) is accepted.
        assert!(
            build_props(&[
                ("bind", "127.0.0.1"),
                ("port", "0"),
                ("ssl", "true"),
                ("keystore", &ks),
                ("compression-type", "deflate"),
            ])
            .is_ok()
        );
        let cfg = AvroSourceConfig {
            bind: Some("127.0.0.1".into()),
            port: Some(0),
            tls: TlsServerKeys {
                ssl: true,
                keystore: Some(ks.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let tls = cfg.tls.acceptor(&props(&[])).unwrap();
        let ch = TestChannel::new(1000, 100);
        let (port, cx, task) = start(
            AvroSource {
                options: ServerOptions {
                    tls,
                    ..Default::default()
                },
                ..plain()
            },
            ch.clone(),
        )
        .await;
        let v = flumen_rpc::tls::versions(&[], &[]).unwrap();
        for (trust, all) in [(Some(ca.as_path()), false), (None, true)] {
            let opts = ClientOptions {
                tls: Some(flumen_rpc::tls::TlsConnector::from(
                    flumen_rpc::tls::client_config(trust, all, &v).unwrap(),
                )),
                ..Default::default()
            };
            let mut c = AvroClient::connect("127.0.0.1", port, &opts).await.unwrap();
            c.append_batch(&[Event::new(Bytes::from_static(b"secret"))])
                .await
                .unwrap();
        }
        assert_eq!(bodies(&ch.drain()), ["secret", "secret"]);
        // Trusting another CA (the leaf itself is no CA): the handshake fails.
        let wrong =
            flumen_rpc::tls::client_config(Some(&dir.path().join("leaf.pem")), false, &v).unwrap();
        let opts = ClientOptions {
            tls: Some(flumen_rpc::tls::TlsConnector::from(wrong)),
            ..Default::default()
        };
        assert!(AvroClient::connect("127.0.0.1", port, &opts).await.is_err());
        // A plain client gets nowhere either.
        let plain_opts = ClientOptions {
            connect_timeout: std::time::Duration::from_secs(2),
            ..Default::default()
        };
        assert!(
            AvroClient::connect("127.0.0.1", port, &plain_opts)
                .await
                .is_err()
        );
        // A keystore that is not PEM: a located configuration error.
        std::fs::write(dir.path().join("ks.jks"), [0xfe, 0xed, 0xfe, 0xed]).unwrap();
        let jks = dir.path().join("ks.jks").display().to_string();
        let errs = build_props(&[
            ("bind", "127.0.0.1"),
            ("port", "0"),
            ("ssl", "true"),
            ("keystore", &jks),
        ])
        .err()
        .unwrap();
        assert!(errs[0].message.contains("not a PEM file"), "{errs:?}");
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
