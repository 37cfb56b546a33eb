//! The `multiport_syslogtcp` source (Flume's `MultiportSyslogTCPSource`): the `syslogtcp`
//! source on several ports at once, with a charset per port (`charset.port.<port>`) and the
//! receiving port in an optional header (`portHeader`).
//!
//! All ports share one accept loop and one set of connection tasks
//! ([`crate::components::sources::tcp_listener`]); each connection runs the shared loop
//! ([`super::read_connection`]) with the parser of the port it arrived on.
//!
//! Differences from Flume: `readBufferSize` and `numProcessors` tune Flume's Mina I/O threads
//! and have no effect here (accepted with a warning). A port that cannot be bound fails the
//! source (Flume logs it and serves the other ports), so a typo cannot go unnoticed; the
//! supervisor retries. A message over `eventSize` is cut and flagged `Incomplete` and the rest
//! of it skipped (Flume delivers the rest as further events). A full channel stops reading
//! the connection instead of dropping the batch. Octet-counted framing and TLS (`ssl`) work
//! as for `syslogtcp`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use flumen_config::{Diagnostic, Props};
use flumen_core::{Source, SourceContext, SourceError};
use flumen_rpc::tls::TlsAcceptor;
use serde::Deserialize;
use tokio::net::TcpListener;

use super::parser::{KeepFields, SyslogParser};
use super::tcp::{bind_host, common_checks, keep_fields};
use super::{
    ClientHeaders, ConnectionSettings, DEFAULT_BATCH_SIZE, DEFAULT_CHARSET, DEFAULT_EVENT_SIZE,
    read_connection,
};
use crate::components::sources::tcp_listener::{self, ServeOptions};
use crate::components::sources::tls_keys::TlsServerKeys;
use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

/// Registry entry of the `multiport_syslogtcp` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "multiport_syslogtcp",
    classes: &["org.apache.flume.source.MultiportSyslogTCPSource"],
    description: "Syslog over TCP on several ports, a charset per port, TLS",
    batch_size_key: Some("batchSize"),
    build,
};

/// Configuration of the `multiport_syslogtcp` source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MultiportSyslogTcpSourceConfig {
    /// Host name or IP address to listen on. Flume key: `host`. Default: all addresses.
    pub host: Option<String>,
    /// Space-separated TCP ports. Flume key: `ports`. Required.
    pub ports: Option<Vec<String>>,
    /// Longest message in bytes; longer ones are cut and flagged `Incomplete`. Flume key:
    /// `eventSize`. Default: 2500; values under Flume's minimum of 10 count as 10.
    #[serde(rename = "eventSize")]
    pub event_size: usize,
    /// Syslog fields kept in the body, as `syslogtcp`. Flume key: `keepFields`. Default:
    /// `none`.
    #[serde(rename = "keepFields")]
    pub keep_fields: String,
    /// Header receiving the port the message arrived on. Flume key: `portHeader`. Default:
    /// none.
    #[serde(rename = "portHeader")]
    pub port_header: Option<String>,
    /// Header receiving the client's IP address. Flume key: `clientIPHeader`.
    #[serde(rename = "clientIPHeader")]
    pub client_ip_header: Option<String>,
    /// Header receiving the client's host name (reverse DNS, once per connection). Flume key:
    /// `clientHostnameHeader`.
    #[serde(rename = "clientHostnameHeader")]
    pub client_hostname_header: Option<String>,
    /// Charset of the messages' text. Flume key: `charset.default`. Default: `UTF-8`.
    #[serde(rename = "charset.default")]
    pub charset_default: String,
    /// Charset per port. Flume keys: `charset.port.<port>`. Default: none.
    #[serde(rename = "charset.port")]
    pub charset_port: BTreeMap<String, String>,
    /// Most events per channel transaction. Flume key: `batchSize`. Default: 100 (cut to the
    /// channels' `transactionCapacity` unless set).
    #[serde(rename = "batchSize")]
    pub batch_size: Option<usize>,
    /// Mina read buffer size. Flume key: `readBufferSize`. Accepted with a warning: no effect.
    #[serde(rename = "readBufferSize")]
    pub read_buffer_size: Option<usize>,
    /// Mina I/O processor count. Flume key: `numProcessors`. Accepted with a warning: no
    /// effect.
    #[serde(rename = "numProcessors")]
    pub num_processors: Option<usize>,
    /// TLS: `ssl`, `keystore` and Flume's other TLS keys ([`TlsServerKeys`]).
    #[serde(rename = "*")]
    pub tls: TlsServerKeys,
}

impl Default for MultiportSyslogTcpSourceConfig {
    fn default() -> Self {
        Self {
            host: None,
            ports: None,
            event_size: DEFAULT_EVENT_SIZE,
            keep_fields: "none".into(),
            port_header: None,
            client_ip_header: None,
            client_hostname_header: None,
            charset_default: DEFAULT_CHARSET.into(),
            charset_port: BTreeMap::new(),
            batch_size: None,
            read_buffer_size: None,
            num_processors: None,
            tls: TlsServerKeys::default(),
        }
    }
}

impl MultiportSyslogTcpSourceConfig {
    /// The `ports` list parsed, or the error text.
    fn parsed_ports(&self) -> Result<Vec<u16>, String> {
        let Some(list) = self.ports.as_ref().filter(|l| !l.is_empty()) else {
            return Err("missing required property `ports`".into());
        };
        let mut out = Vec::with_capacity(list.len());
        for p in list {
            let port: u16 = p
                .parse()
                .map_err(|_| format!("`{p}` is not a port number (0-65535)"))?;
            if out.contains(&port) {
                return Err(format!("port {port} is listed twice"));
            }
            out.push(port);
        }
        Ok(out)
    }

    /// Required keys, ranges, `keepFields`, every charset and the TLS keys.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if let Err(e) = self.parsed_ports() {
            errors.push(props.error("ports", e));
        }
        errors.extend(common_checks(props, self.batch_size, &self.charset_default));
        for (port, charset) in &self.charset_port {
            let key = format!("charset.port.{port}");
            if port.parse::<u16>().is_err() {
                errors.push(props.error(&key, format!("`{port}` is not a port number")));
            } else if let Err(e) = SyslogParser::new(KeepFields::NONE, charset) {
                errors.push(props.error(&key, e));
            }
        }
        errors.extend(self.tls.validate(props));
        errors
    }
}

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    let mut keep_warning = None;
    let (source, mut warnings) =
        build_with(props, MultiportSyslogTcpSourceConfig::validate, |c| {
            let err = |e: String| vec![Diagnostic::error(e)];
            let tls = c.tls.acceptor(props)?;
            let ports = c.parsed_ports().map_err(err)?;
            let (keep, warning) = keep_fields(props, &c.keep_fields);
            keep_warning = warning;
            // Flume's multiport parser names the headers `Priority`/`Version`.
            let parser = |charset: &str| {
                SyslogParser::new(keep, charset)
                    .map(|p| Arc::new(p.multiport()))
                    .map_err(err)
            };
            let default = parser(&c.charset_default)?;
            let mut parsers = HashMap::new();
            for (port, charset) in &c.charset_port {
                if let Ok(port) = port.parse::<u16>() {
                    parsers.insert(port, parser(charset)?);
                }
            }
            Ok(Box::new(MultiportSyslogTcpSource {
                host: bind_host(c.host),
                ports,
                configured_batch: c.batch_size,
                setup: Arc::new(Setup {
                    settings: ConnectionSettings {
                        event_size: c.event_size,
                        batch_size: c.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
                        client: ClientHeaders::new(c.client_ip_header, c.client_hostname_header),
                    },
                    port_header: c.port_header.filter(|h| !h.trim().is_empty()),
                    default,
                    parsers,
                }),
                tls,
            }) as Box<dyn Source>)
        })?;
    warnings.extend(keep_warning);
    warnings.extend(TlsServerKeys::warnings(props));
    for key in ["readBufferSize", "numProcessors"] {
        if props.get(key).is_some() {
            warnings.push(props.warning(
                key,
                format!("`{key}` tunes Flume's Mina I/O threads and has no effect in flumen"),
            ));
        }
    }
    Ok((source, warnings))
}

/// What every connection shares.
#[derive(Debug)]
struct Setup {
    settings: ConnectionSettings,
    /// `portHeader`.
    port_header: Option<String>,
    /// The `charset.default` parser.
    default: Arc<SyslogParser>,
    /// The `charset.port.<port>` parsers.
    parsers: HashMap<u16, Arc<SyslogParser>>,
}

/// The multiport syslog TCP source.
pub struct MultiportSyslogTcpSource {
    host: String,
    ports: Vec<u16>,
    configured_batch: Option<usize>,
    setup: Arc<Setup>,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for MultiportSyslogTcpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiportSyslogTcpSource")
            .field("host", &self.host)
            .field("ports", &self.ports)
            .field("setup", &self.setup)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

#[async_trait::async_trait]
impl Source for MultiportSyslogTcpSource {
    fn batch_size(&self) -> Option<usize> {
        self.configured_batch
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let mut listeners = Vec::with_capacity(self.ports.len());
        for &port in &self.ports {
            listeners.push(tcp_listener::bind(&self.host, port).await?);
        }
        self.serve(listeners, cx).await
    }
}

impl MultiportSyslogTcpSource {
    /// Serves connections on every listener until shutdown.
    async fn serve(
        self: Box<Self>,
        listeners: Vec<TcpListener>,
        cx: SourceContext,
    ) -> Result<(), SourceError> {
        let addrs: Vec<String> = listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .map(|a| a.to_string())
            .collect();
        tracing::info!(source = %cx.name, addrs = %addrs.join(" "), ssl = self.tls.is_some(), "Multiport syslog TCP source listening.");
        let options = ServeOptions {
            tls: self.tls.clone(),
            nodelay: false,
        };
        let (setup, conn_cx) = (self.setup, cx.clone());
        tcp_listener::serve(listeners, &cx, options, move |a| {
            let (setup, cx) = (setup.clone(), conn_cx.clone());
            async move {
                let port = a.local.port();
                let parser = setup.parsers.get(&port).unwrap_or(&setup.default).clone();
                let extra = match &setup.port_header {
                    Some(h) => vec![(h.clone(), port.to_string())],
                    None => Vec::new(),
                };
                read_connection(a.stream, a.peer, cx, &setup.settings, &parser, extra).await;
            }
        })
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, context};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

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
    fn config_checks_and_registry() {
        let (c, w) = props(&[])
            .deserialize::<MultiportSyslogTcpSourceConfig>()
            .unwrap();
        assert_eq!(c, MultiportSyslogTcpSourceConfig::default());
        assert!(w.is_empty());
        assert!(errors(&[]).contains("missing required property `ports`"));
        assert!(errors(&[("ports", "1 x")]).contains("not a port number"));
        assert!(errors(&[("ports", "1 1")]).contains("listed twice"));
        assert!(errors(&[("ports", "1"), ("charset.port.1", "nope")]).contains("charset.port.1"));
        assert!(errors(&[("ports", "1"), ("charset.port.x", "UTF-8")]).contains("charset.port.x"));
        let (src, w) = build_props(&[
            ("ports", "5140 5141"),
            ("charset.port.5141", "ISO-8859-1"),
            ("readBufferSize", "2048"),
            ("numProcessors", "4"),
            ("batchSize", "10"),
        ])
        .unwrap();
        assert_eq!(src.batch_size(), Some(10));
        let w: Vec<&str> = w.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().all(|m| m.contains("no effect")), "{w:?}");
        let table = crate::components::sources::SOURCES;
        for name in [
            "MULTIPORT_SYSLOGTCP",
            "org.apache.flume.source.MultiportSyslogTCPSource",
        ] {
            let found = crate::components::lookup(table, name).map(|d| d.name).ok();
            assert_eq!(found, Some("multiport_syslogtcp"));
        }
    }

    #[tokio::test]
    async fn tls_on_every_port() {
        let dir = tempfile::tempdir().unwrap();
        let Some((keystore, ca)) = crate::components::sources::avro::tests::test_certs(dir.path())
        else {
            return;
        };
        let ks = keystore.display().to_string();
        let (c, _) = props(&[("ports", "1"), ("ssl", "true"), ("keystore", &ks)])
            .deserialize::<MultiportSyslogTcpSourceConfig>()
            .unwrap();
        let tls = c.tls.acceptor(&props(&[])).unwrap();
        assert!(tls.is_some());
        let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ports = [
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        ];
        let src = Box::new(MultiportSyslogTcpSource {
            host: "127.0.0.1".into(),
            ports: ports.to_vec(),
            configured_batch: None,
            setup: Arc::new(Setup {
                settings: ConnectionSettings {
                    event_size: 2500,
                    batch_size: 100,
                    client: ClientHeaders::default(),
                },
                port_header: Some("port".into()),
                default: Arc::new(
                    SyslogParser::new(KeepFields::NONE, "UTF-8")
                        .unwrap()
                        .multiport(),
                ),
                parsers: HashMap::new(),
            }),
            tls,
        });
        let ch = TestChannel::new(1000, 100);
        let cx = context(ch.clone());
        let task = tokio::spawn(src.serve(vec![a, b], cx.clone()));
        let v = flumen_rpc::tls::versions(&[], &[]).unwrap();
        let connector = flumen_rpc::tls::TlsConnector::from(
            flumen_rpc::tls::client_config(Some(&ca), false, &v).unwrap(),
        );
        for port in ports {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let mut s = connector
                .connect(flumen_rpc::tls::server_name("flumen.test"), tcp)
                .await
                .unwrap();
            s.write_all(b"<13>Nov 21 14:00:00 h app: sealed\n")
                .await
                .unwrap();
            s.flush().await.unwrap();
            let e = ch.take_at_least(1).await;
            assert_eq!(e[0].headers.get("port"), Some(port.to_string().as_str()));
            assert_eq!(&e[0].body[..], b"app: sealed");
        }
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn every_port_is_served_with_its_port_header() {
        let (src, _) = build_props(&[
            ("host", "127.0.0.1"),
            ("ports", "0"),
            ("portHeader", "port"),
            ("clientIPHeader", "ip"),
        ])
        .unwrap();
        drop(src);
        // Two real listeners; the source is built directly around them.
        let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (pa, pb) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        let parser = Arc::new(
            SyslogParser::new(KeepFields::NONE, "UTF-8")
                .unwrap()
                .multiport(),
        );
        let src = Box::new(MultiportSyslogTcpSource {
            host: "127.0.0.1".into(),
            ports: vec![pa, pb],
            configured_batch: None,
            setup: Arc::new(Setup {
                settings: ConnectionSettings {
                    event_size: 2500,
                    batch_size: 100,
                    client: ClientHeaders::new(Some("ip".into()), None),
                },
                port_header: Some("port".into()),
                default: parser,
                parsers: HashMap::new(),
            }),
            tls: None,
        });
        let ch = TestChannel::new(1000, 100);
        let cx = context(ch.clone());
        let task = tokio::spawn(src.serve(vec![a, b], cx.clone()));
        for port in [pa, pb] {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.write_all(format!("<13>Nov 21 14:00:00 h a: to {port}\n").as_bytes())
                .await
                .unwrap();
            let e = ch.take_at_least(1).await;
            assert_eq!(e[0].headers.get("port"), Some(port.to_string().as_str()));
            assert_eq!(e[0].headers.get("ip"), Some("127.0.0.1"));
            assert!(e[0].body.ends_with(format!("to {port}").as_bytes()));
        }
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
