//! The `syslogudp` source (Flume's `SyslogUDPSource`): one UDP datagram = one syslog message
//! (RFC 3164 or RFC 5424) = one event.
//!
//! As in Flume, the message is the datagram up to its first `\n` (senders such as `logger`
//! send none; a trailing `\r` goes with the parser's rules), read whole up to 64 KiB (RFC 5426's
//! maximum; Flume's UDP `eventSize` is fixed at that too, so `eventSize` is not a key here).
//! Datagrams already queued in the socket are gathered into one batch (up to the channels'
//! `transactionCapacity`) without waiting for more.
//!
//! UDP has no back-pressure: the socket is never left unread while the channel is full. A
//! batch the channel refuses is dropped and counted (`ChannelWriteFail`, as Flume counts it),
//! and the outage is logged once when it starts and once when it ends with the number of
//! events dropped, never per datagram.
//!
//! `clientHostnameHeader` resolves each sender once (reverse DNS off the runtime, bounded by a
//! timeout) and remembers the answer in a bounded cache.
//!
//! Differences from Flume: the custom `format.*` regexes are not supported; `charset.default`
//! (not a Flume key for this source) selects the text charset.

use std::net::SocketAddr;

use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Source, SourceContext, SourceError};
use serde::Deserialize;
use tokio::net::UdpSocket;

use super::parser::{KeepFields, SyslogParser};
use super::tcp::{bind_host, keep_fields};
use super::{ClientHeaders, DEFAULT_CHARSET, HostnameCache};
use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

/// Registry entry of the `syslogudp` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "syslogudp",
    classes: &["org.apache.flume.source.SyslogUDPSource"],
    description: "Syslog (RFC 3164/5424) over UDP; one datagram = one event",
    batch_size_key: None,
    build,
};

/// Largest datagram read in full (Flume: `maxsize = 1 << 16`).
const MAX_DATAGRAM: usize = 64 * 1024;

/// Configuration of the `syslogudp` source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SyslogUdpSourceConfig {
    /// Host name or IP address to listen on. Flume key: `host`. Default: all addresses.
    pub host: Option<String>,
    /// UDP port. Flume key: `port`. Required.
    pub port: Option<u16>,
    /// Syslog fields kept in the body, as `syslogtcp`. Flume key: `keepFields`. Default:
    /// `none` (the user guide says `false`: the same).
    #[serde(rename = "keepFields")]
    pub keep_fields: String,
    /// Header receiving the sender's IP address. Flume key: `clientIPHeader`.
    #[serde(rename = "clientIPHeader")]
    pub client_ip_header: Option<String>,
    /// Header receiving the sender's host name (reverse DNS, cached). Flume key:
    /// `clientHostnameHeader`.
    #[serde(rename = "clientHostnameHeader")]
    pub client_hostname_header: Option<String>,
    /// Charset of the messages' text (flumen). Key: `charset.default`. Default: `UTF-8`.
    #[serde(rename = "charset.default")]
    pub charset_default: String,
}

impl Default for SyslogUdpSourceConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: None,
            keep_fields: "none".into(),
            client_ip_header: None,
            client_hostname_header: None,
            charset_default: DEFAULT_CHARSET.into(),
        }
    }
}

impl SyslogUdpSourceConfig {
    /// Required keys, `keepFields` and the charset; every problem found.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.port.is_none() {
            errors.push(props.error("port", "missing required property `port`"));
        }
        if let Err(e) = SyslogParser::new(KeepFields::NONE, &self.charset_default) {
            errors.push(props.error("charset.default", e));
        }
        errors
    }
}

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    let mut keep_warning = None;
    let (source, mut warnings) = build_with(props, SyslogUdpSourceConfig::validate, |c| {
        let err = |e: String| vec![Diagnostic::error(e)];
        let (keep, warning) = keep_fields(props, &c.keep_fields);
        keep_warning = warning;
        let parser = SyslogParser::new(keep, &c.charset_default).map_err(err)?;
        Ok(Box::new(SyslogUdpSource {
            host: bind_host(c.host),
            port: c.port.unwrap_or_default(),
            client: ClientHeaders::new(c.client_ip_header, c.client_hostname_header),
            parser,
        }) as Box<dyn Source>)
    })?;
    warnings.extend(keep_warning);
    Ok((source, warnings))
}

/// The syslog UDP source.
#[derive(Debug)]
pub struct SyslogUdpSource {
    host: String,
    port: u16,
    client: ClientHeaders,
    parser: SyslogParser,
}

#[async_trait::async_trait]
impl Source for SyslogUdpSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let socket = UdpSocket::bind((self.host.as_str(), self.port))
            .await
            .map_err(|source| SourceError::Bind {
                addr: format!("{}:{}", self.host, self.port),
                source,
            })?;
        self.serve(socket, cx).await
    }
}

impl SyslogUdpSource {
    /// Receives datagrams on `socket` until shutdown.
    async fn serve(
        self: Box<Self>,
        socket: UdpSocket,
        cx: SourceContext,
    ) -> Result<(), SourceError> {
        if let Ok(addr) = socket.local_addr() {
            tracing::info!(source = %cx.name, %addr, "Syslog UDP source listening.");
        }
        let max_batch = cx.processor.max_batch();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut names = HostnameCache::default();
        // Events dropped since the channel started refusing; `Some` during an outage.
        let mut dropped: Option<u64> = None;
        loop {
            let first = tokio::select! {
                biased;
                () = cx.shutdown.cancelled() => return Ok(()),
                r = socket.recv_from(&mut buf) => r,
            };
            let mut batch = Vec::new();
            match first {
                Ok((n, peer)) => batch.push(self.event(&buf[..n], peer, &mut names).await),
                Err(error) => {
                    // E.g. ICMP port unreachable reported on some platforms; not fatal.
                    tracing::debug!(source = %cx.name, %error, "Receiving a datagram failed.");
                    continue;
                }
            }
            // Gather whatever else is already queued, without waiting.
            while batch.len() < max_batch {
                match socket.try_recv_from(&mut buf) {
                    Ok((n, peer)) => batch.push(self.event(&buf[..n], peer, &mut names).await),
                    Err(_) => break, // WouldBlock, or an error the next recv_from will see.
                }
            }
            let n = batch.len() as u64;
            match cx.deliver(batch).await {
                Ok(()) => {
                    if let Some(count) = dropped.take() {
                        tracing::info!(source = %cx.name, dropped = count, "Channel accepts events again.");
                    }
                }
                Err(error) => match &mut dropped {
                    Some(count) => *count += n,
                    None => {
                        tracing::warn!(source = %cx.name, %error, "Channel refused syslog datagrams; dropping them until it accepts again.");
                        dropped = Some(n);
                    }
                },
            }
        }
    }

    /// The event of one datagram from `peer`.
    async fn event(&self, datagram: &[u8], peer: SocketAddr, names: &mut HostnameCache) -> Event {
        let end = memchr::memchr(b'\n', datagram).unwrap_or(datagram.len());
        let mut event = self.parser.parse(&datagram[..end], false);
        if let Some(h) = &self.client.ip {
            event.headers.insert(h.as_str(), peer.ip().to_string());
        }
        if let Some(h) = &self.client.hostname {
            event.headers.insert(h.as_str(), names.get(peer.ip()).await);
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, bodies, context, wait_until};

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
        pairs: &[(&str, &str)],
        ch: Arc<TestChannel>,
    ) -> (
        SocketAddr,
        SourceContext,
        tokio::task::JoinHandle<Result<(), SourceError>>,
    ) {
        let (c, _) = props(pairs).deserialize::<SyslogUdpSourceConfig>().unwrap();
        let src = Box::new(SyslogUdpSource {
            host: "127.0.0.1".into(),
            port: 0,
            client: ClientHeaders::new(c.client_ip_header, c.client_hostname_header),
            parser: SyslogParser::new(KeepFields::parse(&c.keep_fields).unwrap(), "UTF-8").unwrap(),
        });
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let cx = context(ch);
        (addr, cx.clone(), tokio::spawn(src.serve(socket, cx)))
    }

    use std::sync::Arc;

    #[test]
    fn config_checks_and_registry() {
        let (c, w) = props(&[]).deserialize::<SyslogUdpSourceConfig>().unwrap();
        assert_eq!(c, SyslogUdpSourceConfig::default());
        assert!(w.is_empty());
        let errs = build_props(&[]).err().unwrap();
        assert!(errs[0].message.contains("`port`"));
        assert!(build_props(&[("port", "5140"), ("keepFields", "false")]).is_ok());
        let table = crate::components::sources::SOURCES;
        for name in ["syslogudp", "org.apache.flume.source.SyslogUDPSource"] {
            let found = crate::components::lookup(table, name).map(|d| d.name).ok();
            assert_eq!(found, Some("syslogudp"));
        }
    }

    #[tokio::test]
    async fn one_datagram_one_event_with_client_headers() {
        let ch = TestChannel::new(1000, 100);
        let (addr, cx, task) = start(
            &[("clientIPHeader", "ip"), ("clientHostnameHeader", "name")],
            ch.clone(),
        )
        .await;
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client
            .send_to(b"<13>Nov 21 14:00:00 myhost app: one", addr)
            .await
            .unwrap();
        client
            .send_to(b"<14>Nov 21 14:00:01 myhost app: two\nignored", addr)
            .await
            .unwrap();
        let events = ch.take_at_least(2).await;
        assert_eq!(bodies(&events), ["app: one", "app: two"]);
        assert_eq!(events[0].headers.get("host"), Some("myhost"));
        assert_eq!(events[1].headers.get("Severity"), Some("6"));
        assert_eq!(events[0].headers.get("ip"), Some("127.0.0.1"));
        assert!(!events[0].headers.get("name").unwrap_or_default().is_empty());
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_full_channel_drops_and_counts_but_keeps_reading() {
        let ch = TestChannel::new(1000, 100);
        ch.set_refusing(true);
        let (addr, cx, task) = start(&[], ch.clone()).await;
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"<13>lost", addr).await.unwrap();
        let k = cx.counters.clone();
        wait_until("a refused batch", || k.channel_write_fail.get() >= 1).await;
        ch.set_refusing(false);
        client.send_to(b"<13>kept", addr).await.unwrap();
        let events = ch.take_at_least(1).await;
        assert_eq!(
            bodies(&events),
            ["<13>kept"],
            "no syslog header: the raw message"
        );
        assert_eq!(k.event_accepted.get(), 1);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
