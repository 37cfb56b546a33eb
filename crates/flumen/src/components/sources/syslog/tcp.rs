//! The `syslogtcp` source (Flume's `SyslogTcpSource`): syslog over TCP on one port, RFC 3164
//! and RFC 5424 messages, newline-delimited or RFC 6587 octet-counted (auto-detected per
//! connection), optionally over TLS.
//!
//! Connections run the shared accept loop ([`crate::components::sources::tcp_listener`]) and
//! the shared connection loop ([`super::read_connection`]), whose invariants hold here:
//! batches per read, back-pressure instead of drops, bounded memory per connection.
//!
//! Differences from Flume: Flume puts each event in its own channel transaction and drops it
//! when the channel is full; flumen delivers the messages of one read in batches of
//! `batchSize` (a flumen key for this source, default 100, cut to `transactionCapacity`) and
//! stops reading the connection while the channel is full, so nothing is dropped. RFC 6587
//! octet counting is understood (Flume reads it as garbage). `charset.default` (a multiport
//! key in Flume) is accepted here too. The keystore is a PEM file, as for the avro source. The
//! custom `format.*` regexes of Flume's `SyslogUtils` are not supported.

use std::sync::Arc;

use flumen_config::{Diagnostic, Props};
use flumen_core::{Source, SourceContext, SourceError};
use flumen_rpc::tls::TlsAcceptor;
use serde::Deserialize;
use tokio::net::TcpListener;

use super::parser::{KeepFields, SyslogParser};
use super::{
    ClientHeaders, ConnectionSettings, DEFAULT_BATCH_SIZE, DEFAULT_CHARSET, DEFAULT_EVENT_SIZE,
    read_connection,
};
use crate::components::sources::tcp_listener::{self, ServeOptions};
use crate::components::sources::tls_keys::TlsServerKeys;
use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

/// Registry entry of the `syslogtcp` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "syslogtcp",
    classes: &["org.apache.flume.source.SyslogTcpSource"],
    description: "Syslog (RFC 3164/5424) over TCP, newline or octet-counted framing, TLS",
    batch_size_key: Some("batchSize"),
    build,
};

/// Configuration of the `syslogtcp` source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SyslogTcpSourceConfig {
    /// Host name or IP address to listen on. Flume key: `host`. Default: all addresses
    /// (`0.0.0.0`), as Flume binds the wildcard address when it is absent.
    pub host: Option<String>,
    /// TCP port. Flume key: `port`. Required.
    pub port: Option<u16>,
    /// Longest message in bytes; longer ones are cut and flagged `Incomplete`. Flume key:
    /// `eventSize`. Default: 2500; values under Flume's minimum of 10 count as 10.
    #[serde(rename = "eventSize")]
    pub event_size: usize,
    /// Syslog fields kept in the body: `none`, `all`, `true`, `false` or a space list of
    /// `priority version timestamp hostname`. Flume key: `keepFields`. Default: `none`.
    #[serde(rename = "keepFields")]
    pub keep_fields: String,
    /// Header receiving the client's IP address. Flume key: `clientIPHeader`. Default: none.
    #[serde(rename = "clientIPHeader")]
    pub client_ip_header: Option<String>,
    /// Header receiving the client's host name (reverse DNS, once per connection). Flume key:
    /// `clientHostnameHeader`. Default: none.
    #[serde(rename = "clientHostnameHeader")]
    pub client_hostname_header: Option<String>,
    /// Most events per channel transaction (flumen; Flume puts one event per transaction).
    /// Key: `batchSize`. Default: 100, cut to the channels' `transactionCapacity` unless set.
    #[serde(rename = "batchSize")]
    pub batch_size: Option<usize>,
    /// Charset of the messages' text. Key: `charset.default`. Default: `UTF-8`.
    #[serde(rename = "charset.default")]
    pub charset_default: String,
    /// TLS: `ssl`, `keystore` and Flume's other TLS keys ([`TlsServerKeys`]).
    #[serde(rename = "*")]
    pub tls: TlsServerKeys,
}

impl Default for SyslogTcpSourceConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: None,
            event_size: DEFAULT_EVENT_SIZE,
            keep_fields: "none".into(),
            client_ip_header: None,
            client_hostname_header: None,
            batch_size: None,
            charset_default: DEFAULT_CHARSET.into(),
            tls: TlsServerKeys::default(),
        }
    }
}

impl SyslogTcpSourceConfig {
    /// Required keys, ranges, `keepFields`, the charset and the TLS keys; every problem found.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.port.is_none() {
            errors.push(props.error("port", "missing required property `port`"));
        }
        errors.extend(common_checks(props, self.batch_size, &self.charset_default));
        errors.extend(self.tls.validate(props));
        errors
    }
}

/// The checks both TCP sources share: `batchSize` and `charset.default`. (`eventSize` below
/// Flume's minimum of 10 is raised to it by the framer, as Flume does.)
pub(super) fn common_checks(
    props: &Props,
    batch_size: Option<usize>,
    charset: &str,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    if batch_size == Some(0) {
        errors.push(props.error("batchSize", "`batchSize` must be at least 1"));
    }
    if let Err(e) = SyslogParser::new(KeepFields::NONE, charset) {
        errors.push(props.error("charset.default", e));
    }
    errors
}

/// `keepFields` read strictly; a word that is none of Flume's four names is a warning and the
/// value is then read as Flume reads it (each name counts where it occurs), so every Flume
/// configuration keeps working.
pub(super) fn keep_fields(props: &Props, value: &str) -> (KeepFields, Option<Diagnostic>) {
    match KeepFields::parse(value) {
        Ok(k) => (k, None),
        Err(e) => (
            KeepFields::parse_lenient(value),
            Some(props.warning("keepFields", format!("{e}; read as Flume reads it"))),
        ),
    }
}

/// The host to bind: the configured one, or the wildcard address.
pub(super) fn bind_host(host: Option<String>) -> String {
    host.map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "0.0.0.0".into())
}

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    let mut keep_warning = None;
    let (source, mut warnings) = build_with(props, SyslogTcpSourceConfig::validate, |c| {
        let tls = c.tls.acceptor(props)?;
        let (keep, warning) = keep_fields(props, &c.keep_fields);
        keep_warning = warning;
        let parser =
            SyslogParser::new(keep, &c.charset_default).map_err(|e| vec![Diagnostic::error(e)])?;
        Ok(Box::new(SyslogTcpSource {
            host: bind_host(c.host),
            port: c.port.unwrap_or_default(),
            configured_batch: c.batch_size,
            settings: Arc::new(ConnectionSettings {
                event_size: c.event_size,
                batch_size: c.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
                client: ClientHeaders::new(c.client_ip_header, c.client_hostname_header),
            }),
            parser: Arc::new(parser),
            tls,
        }) as Box<dyn Source>)
    })?;
    warnings.extend(keep_warning);
    warnings.extend(TlsServerKeys::warnings(props));
    Ok((source, warnings))
}

/// The syslog TCP source.
pub struct SyslogTcpSource {
    host: String,
    port: u16,
    /// `batchSize` when set explicitly (checked against `transactionCapacity`).
    configured_batch: Option<usize>,
    settings: Arc<ConnectionSettings>,
    parser: Arc<SyslogParser>,
    tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for SyslogTcpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogTcpSource")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("settings", &self.settings)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

#[async_trait::async_trait]
impl Source for SyslogTcpSource {
    fn batch_size(&self) -> Option<usize> {
        self.configured_batch
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let listener = tcp_listener::bind(&self.host, self.port).await?;
        self.serve(listener, cx).await
    }
}

impl SyslogTcpSource {
    /// Serves connections on `listener` until shutdown.
    async fn serve(
        self: Box<Self>,
        listener: TcpListener,
        cx: SourceContext,
    ) -> Result<(), SourceError> {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(source = %cx.name, %addr, ssl = self.tls.is_some(), "Syslog TCP source listening.");
        }
        let options = ServeOptions {
            tls: self.tls.clone(),
            nodelay: false,
        };
        let (settings, parser, conn_cx) = (self.settings, self.parser, cx.clone());
        tcp_listener::serve(vec![listener], &cx, options, move |a| {
            let (settings, parser, cx) = (settings.clone(), parser.clone(), conn_cx.clone());
            async move { read_connection(a.stream, a.peer, cx, &settings, &parser, Vec::new()).await }
        })
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, bodies, context, wait_until};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    use tokio::task::JoinHandle;

    pub(crate) fn props(pairs: &[(&str, &str)]) -> Props {
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

    fn source(pairs: &[(&str, &str)]) -> SyslogTcpSource {
        let mut all = vec![("port", "0")];
        all.extend_from_slice(pairs);
        let (c, _) = props(&all).deserialize::<SyslogTcpSourceConfig>().unwrap();
        let keep = KeepFields::parse(&c.keep_fields).unwrap();
        let tls = c.tls.acceptor(&props(&[])).unwrap();
        SyslogTcpSource {
            host: "127.0.0.1".into(),
            port: 0,
            configured_batch: c.batch_size,
            settings: Arc::new(ConnectionSettings {
                event_size: c.event_size,
                batch_size: c.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
                client: ClientHeaders::new(c.client_ip_header, c.client_hostname_header),
            }),
            parser: Arc::new(SyslogParser::new(keep, &c.charset_default).unwrap()),
            tls,
        }
    }

    async fn start(
        src: SyslogTcpSource,
        ch: Arc<TestChannel>,
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

    #[test]
    fn config_checks_and_registry() {
        let (c, w) = props(&[]).deserialize::<SyslogTcpSourceConfig>().unwrap();
        assert_eq!(c, SyslogTcpSourceConfig::default());
        assert!(w.is_empty());
        assert!(build_props(&[("port", "5140")]).is_ok());
        assert!(errors(&[]).contains("missing required property `port`"));
        assert!(errors(&[("port", "1"), ("batchSize", "0")]).contains("batchSize"));
        assert!(errors(&[("port", "1"), ("ssl", "true")]).contains("needs `keystore`"));
        assert!(
            errors(&[("port", "1"), ("charset.default", "no-such-charset")]).contains("charset")
        );
        let (_, w) = build_props(&[("port", "1"), ("keepFields", "priority bogus")]).unwrap();
        assert!(w[0].message.contains("read as Flume reads it"), "{w:?}");
        let (src, _) = build_props(&[("port", "1"), ("batchSize", "7")]).unwrap();
        assert_eq!(src.batch_size(), Some(7));
        let (src, _) = build_props(&[("port", "1")]).unwrap();
        assert_eq!(
            src.batch_size(),
            None,
            "the default adapts to transactionCapacity"
        );
        let table = crate::components::sources::SOURCES;
        for name in ["SYSLOGTCP", "org.apache.flume.source.SyslogTcpSource"] {
            let found = crate::components::lookup(table, name).map(|d| d.name).ok();
            assert_eq!(found, Some("syslogtcp"));
        }
    }

    #[tokio::test]
    async fn lines_become_events_in_batches_per_read() {
        let ch = TestChannel::new(100_000, 1000);
        let (port, cx, task) = start(source(&[("batchSize", "50")]), ch.clone()).await;
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut data = Vec::new();
        for i in 0..1000 {
            data.extend(format!("<13>Nov 21 14:00:00 host app: message {i}\n").as_bytes());
        }
        s.write_all(&data).await.unwrap();
        let events = ch.take_at_least(1000).await;
        assert_eq!(events.len(), 1000);
        let k = &cx.counters;
        assert_eq!(k.event_accepted.get(), 1000);
        let batches = k.append_batch_accepted.get();
        assert!((20..1000).contains(&batches), "{batches} batches");
        assert_eq!(k.open_connection.get(), 1);
        drop(s);
        wait_until("the connection to close", || k.open_connection.get() == 0).await;
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn full_channel_pushes_back_and_loses_nothing() {
        let ch = TestChannel::new(100_000, 100);
        ch.set_refusing(true);
        let (port, cx, task) = start(source(&[]), ch.clone()).await;
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"<13>Nov 21 14:00:00 h a: one\n<13>Nov 21 14:00:00 h a: two\n")
            .await
            .unwrap();
        let k = cx.counters.clone();
        wait_until("a refused batch", || k.channel_write_fail.get() >= 1).await;
        ch.set_refusing(false);
        let events = ch.take_at_least(2).await;
        assert_eq!(events.len(), 2);
        assert!(bodies(&events)[1].ends_with("two"), "{:?}", bodies(&events));
        drop(s);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn client_headers_and_shutdown_closes_idle_connections() {
        let ch = TestChannel::new(1000, 100);
        let src = source(&[("clientIPHeader", "ip"), ("clientHostnameHeader", "name")]);
        let (port, cx, task) = start(src, ch.clone()).await;
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"<13>Nov 21 14:00:00 h a: hi\n").await.unwrap();
        let events = ch.take_at_least(1).await;
        assert_eq!(events[0].headers.get("ip"), Some("127.0.0.1"));
        let name = events[0].headers.get("name").unwrap_or_default();
        assert!(!name.is_empty(), "{:?}", events[0].headers);
        let k = cx.counters.clone();
        wait_until("two open connections", || k.open_connection.get() == 2).await;
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
        assert_eq!(k.open_connection.get(), 0);
        drop(idle);
    }

    #[tokio::test]
    async fn tls_clients_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let Some((keystore, ca)) = crate::components::sources::avro::tests::test_certs(dir.path())
        else {
            return;
        };
        let ks = keystore.display().to_string();
        let ch = TestChannel::new(1000, 100);
        let (port, cx, task) =
            start(source(&[("ssl", "true"), ("keystore", &ks)]), ch.clone()).await;
        let v = flumen_rpc::tls::versions(&[], &[]).unwrap();
        let connector = flumen_rpc::tls::TlsConnector::from(
            flumen_rpc::tls::client_config(Some(&ca), false, &v).unwrap(),
        );
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut tls = connector
            .connect(flumen_rpc::tls::server_name("flumen.test"), tcp)
            .await
            .unwrap();
        tls.write_all(b"<13>Nov 21 14:00:00 h a: secret\n")
            .await
            .unwrap();
        tls.flush().await.unwrap();
        let events = ch.take_at_least(1).await;
        assert!(
            bodies(&events)[0].ends_with("secret"),
            "{:?}",
            bodies(&events)
        );
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
