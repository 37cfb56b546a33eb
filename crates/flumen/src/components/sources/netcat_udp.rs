//! The `netcatudp` source (Flume's `NetcatUdpSource`): one UDP datagram = one event.
//!
//! As in Flume, the body is the datagram up to (not including) its first `\n`; anything after
//! that newline is ignored. Datagrams are read into one reusable 64 KiB buffer and each body is
//! copied out at its exact size (a datagram must not pin a 64 KiB allocation in the channel).
//! Datagrams already queued in the socket are gathered into one batch (up to the channels'
//! `transactionCapacity`) without waiting for more.
//!
//! UDP has no back-pressure: a batch the channel refuses is dropped and counted
//! (`ChannelWriteFail`), as Flume drops the event. The outage is logged once when it starts and
//! once when it ends, with the number of events dropped, never per packet.
//!
//! `remoteAddressHeader`, when set, names a header receiving the sender's address in Java's
//! `InetSocketAddress.toString()` form, which Flume uses: `/127.0.0.1:5140` (IPv6 as
//! `/[::1]:5140`). Without it no header is set (Flume then puts the address under a `null`
//! header name, which no consumer can read).

use std::net::SocketAddr;

use bytes::Bytes;
use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Headers, Source, SourceContext, SourceError};
use serde::Deserialize;
use tokio::net::UdpSocket;

use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

/// Registry entry of the `netcatudp` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "netcatudp",
    classes: &["org.apache.flume.source.NetcatUdpSource"],
    description: "Listens on a UDP port; one datagram = one event",
    batch_size_key: None,
    build,
};

/// Largest datagram read in full (Flume: `maxsize = 1 << 16`).
const MAX_DATAGRAM: usize = 64 * 1024;

/// Configuration of the `netcatudp` source.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct NetcatUdpSourceConfig {
    /// Host name or IP address to listen on. Flume key: `bind`. Default: all addresses
    /// (`0.0.0.0`), as Flume binds the wildcard address when it is absent.
    pub bind: Option<String>,
    /// UDP port to listen on. Flume key: `port`. Required.
    pub port: Option<u16>,
    /// Header receiving the sender's address (`/ip:port`). Flume key: `remoteAddressHeader`.
    /// Default: none.
    #[serde(rename = "remoteAddressHeader")]
    pub remote_address_header: Option<String>,
}

impl NetcatUdpSourceConfig {
    /// Required keys; every problem found, located at its key.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.port.is_none() {
            errors.push(props.error("port", "missing required property `port`"));
        }
        errors
    }
}

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    build_with(props, NetcatUdpSourceConfig::validate, |c| {
        let bind = c
            .bind
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty());
        Ok(Box::new(NetcatUdpSource {
            bind: bind.unwrap_or_else(|| "0.0.0.0".into()),
            port: c.port.unwrap_or_default(),
            remote_address_header: c.remote_address_header.filter(|h| !h.is_empty()),
        }) as Box<dyn Source>)
    })
}

/// The netcat UDP source.
#[derive(Debug)]
pub struct NetcatUdpSource {
    bind: String,
    port: u16,
    remote_address_header: Option<String>,
}

#[async_trait::async_trait]
impl Source for NetcatUdpSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let socket = UdpSocket::bind((self.bind.as_str(), self.port))
            .await
            .map_err(|source| SourceError::Bind {
                addr: format!("{}:{}", self.bind, self.port),
                source,
            })?;
        self.serve(socket, cx).await
    }
}

impl NetcatUdpSource {
    /// Receives datagrams on `socket` until shutdown.
    async fn serve(
        self: Box<Self>,
        socket: UdpSocket,
        cx: SourceContext,
    ) -> Result<(), SourceError> {
        if let Ok(addr) = socket.local_addr() {
            tracing::info!(source = %cx.name, %addr, "Netcat UDP source listening.");
        }
        let max_batch = cx.processor.max_batch();
        let mut buf = vec![0u8; MAX_DATAGRAM];
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
                Ok((n, peer)) => batch.push(self.event(&buf[..n], peer)),
                Err(error) => {
                    // E.g. ICMP port unreachable reported on some platforms; not fatal.
                    tracing::debug!(source = %cx.name, %error, "Receiving a datagram failed.");
                    continue;
                }
            }
            // Gather whatever else is already queued, without waiting.
            while batch.len() < max_batch {
                match socket.try_recv_from(&mut buf) {
                    Ok((n, peer)) => batch.push(self.event(&buf[..n], peer)),
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
                        tracing::warn!(source = %cx.name, %error, "Channel refused datagrams; dropping them until it accepts again.");
                        dropped = Some(n);
                    }
                },
            }
        }
    }

    /// The event of one datagram from `peer`.
    fn event(&self, datagram: &[u8], peer: SocketAddr) -> Event {
        let end = memchr::memchr(b'\n', datagram).unwrap_or(datagram.len());
        let body = Bytes::copy_from_slice(&datagram[..end]);
        let mut headers = Headers::new();
        if let Some(h) = &self.remote_address_header {
            headers.insert(h.as_str(), java_socket_address(peer));
        }
        Event::with_headers(headers, body)
    }
}

/// `peer` as Java's `InetSocketAddress.toString()` shows an address with no host name.
fn java_socket_address(peer: SocketAddr) -> String {
    format!("/{peer}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, bodies, context, wait_until};
    use std::sync::Arc;
    use tokio::task::JoinHandle;

    async fn start(
        header: Option<&str>,
        ch: Arc<TestChannel>,
    ) -> (
        SocketAddr,
        SourceContext,
        JoinHandle<Result<(), SourceError>>,
    ) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let cx = context(ch);
        let src = Box::new(NetcatUdpSource {
            bind: "127.0.0.1".into(),
            port: addr.port(),
            remote_address_header: header.map(String::from),
        });
        (addr, cx.clone(), tokio::spawn(src.serve(socket, cx)))
    }

    #[test]
    fn config_port_required_bind_optional() {
        let cx = SourceBuildContext {
            name: "r1".into(),
            counters: Default::default(),
        };
        let mut p = Props::new("a1.sources.r1.", "source r1");
        let errs = (DESCRIPTOR.build)(&p, &cx).err().unwrap();
        assert_eq!(errs[0].message, "missing required property `port`");
        p.insert("port", "5140", 1);
        p.insert("remoteAddressHeader", "addr", 2);
        let (c, w) = p.deserialize::<NetcatUdpSourceConfig>().unwrap();
        assert!(w.is_empty());
        assert_eq!(c.remote_address_header.as_deref(), Some("addr"));
        assert!((DESCRIPTOR.build)(&p, &cx).is_ok());
    }

    #[tokio::test]
    async fn one_datagram_one_event_up_to_first_newline() {
        let ch = TestChannel::new(1000, 100);
        let (addr, cx, task) = start(Some("remote"), ch.clone()).await;
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for d in [&b"first"[..], b"second\n", b"third\nignored\n", b""] {
            client.send_to(d, addr).await.unwrap();
        }
        let events = ch.take_at_least(4).await;
        assert_eq!(bodies(&events), ["first", "second", "third", ""]);
        let want = format!("/{}", client.local_addr().unwrap());
        assert!(want.starts_with("/127.0.0.1:"));
        assert!(
            events
                .iter()
                .all(|e| e.headers.get("remote") == Some(want.as_str()))
        );
        assert_eq!(cx.counters.event_accepted.get(), 4);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn no_header_unless_configured_and_large_datagrams_whole() {
        let ch = TestChannel::new(1000, 100);
        let (addr, cx, task) = start(None, ch.clone()).await;
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let big = vec![b'a'; 60_000];
        client.send_to(&big, addr).await.unwrap();
        let events = ch.take_at_least(1).await;
        assert_eq!(events[0].body.len(), 60_000);
        assert!(events[0].headers.is_empty());
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn refused_datagrams_are_dropped_and_counted() {
        let ch = TestChannel::new(1000, 100);
        ch.set_refusing(true);
        let (addr, cx, task) = start(None, ch.clone()).await;
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"lost", addr).await.unwrap();
        let c = cx.counters.clone();
        wait_until("a refused batch", || c.channel_write_fail.get() >= 1).await;
        ch.set_refusing(false);
        client.send_to(b"kept", addr).await.unwrap();
        assert_eq!(bodies(&ch.take_at_least(1).await), ["kept"]);
        assert_eq!(cx.counters.event_received.get(), 2);
        assert_eq!(cx.counters.event_accepted.get(), 1);
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
