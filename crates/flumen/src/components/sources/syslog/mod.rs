//! Syslog sources: `syslogtcp` ([`tcp`]), `multiport_syslogtcp` ([`multiport_tcp`]) and
//! `syslogudp` ([`udp`]), on the shared message parser ([`parser`]) and TCP framing
//! ([`framing`]).
//!
//! This module holds what the three share: the client address headers (`clientIPHeader`,
//! `clientHostnameHeader`) with their non-blocking reverse DNS, and the TCP connection loop
//! both TCP sources run.
//!
//! Invariants of the TCP connection loop ([`read_connection`]):
//! - every message the framer yields becomes one event, delivered in order; Invalid and
//!   Incomplete messages are delivered too, flagged by the parser's `flume.syslog.status`;
//! - the messages of one read are delivered in batches of at most `batchSize` (cut to the
//!   channels' `transactionCapacity`), one channel transaction each;
//! - a full channel stops reading that connection (the batch is retried until accepted), so
//!   TCP flow control pushes back on the sender and nothing read is dropped;
//! - an idle connection holds no read buffer: it waits for readability first, reads into a
//!   small buffer that grows only while the sender keeps it full, and shrinks back to the
//!   partial message (at most `eventSize`, the framer's bound) when the sender pauses. (Over
//!   TLS the wait is inside the read, so an idle TLS connection keeps a small read buffer,
//!   besides the TLS session's own.)

pub mod framing;
pub mod multiport_tcp;
pub mod parser;
pub mod tcp;
pub mod udp;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use flumen_core::{Event, SourceContext};
use futures_util::FutureExt;
use tokio::io::AsyncReadExt;
use tokio_util::codec::Decoder;

use self::framing::SyslogFramer;
use self::parser::SyslogParser;
use super::tcp_listener::Stream;

/// Flume's default `eventSize` (`SyslogUtils.DEFAULT_SIZE`).
pub const DEFAULT_EVENT_SIZE: usize = 2500;
/// Flume's default `batchSize` of the multiport source, used by `syslogtcp` too.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// The charset Flume decodes with when none is configured.
pub const DEFAULT_CHARSET: &str = "UTF-8";

/// First read size of a connection that was idle.
const SMALL_READ: usize = 4 * 1024;
/// Largest read size, reached by doubling while reads keep filling the buffer.
const BIG_READ: usize = 64 * 1024;
/// Free room above which a paused connection's partial message is moved to a buffer of its
/// own size.
const COMPACT_SLACK: usize = 512;
/// Longest wait for one reverse DNS answer; after it the IP text stands in (as Java's
/// `getHostName` falls back to it).
const DNS_TIMEOUT: Duration = Duration::from_secs(2);

/// The optional headers naming the client: `clientIPHeader` (its IP as text, Java's
/// `getHostAddress`) and `clientHostnameHeader` (its reverse-DNS name, or the IP text when
/// there is none).
#[derive(Debug, Clone, Default)]
pub struct ClientHeaders {
    /// `clientIPHeader`.
    pub ip: Option<String>,
    /// `clientHostnameHeader`.
    pub hostname: Option<String>,
}

impl ClientHeaders {
    /// From the configured names; empty names count as unset.
    pub fn new(ip: Option<String>, hostname: Option<String>) -> Self {
        Self {
            ip: ip.filter(|h| !h.trim().is_empty()),
            hostname: hostname.filter(|h| !h.trim().is_empty()),
        }
    }

    /// The `(name, value)` pairs for a client at `peer`. Reverse DNS happens only when
    /// `clientHostnameHeader` is set, off the runtime, bounded by a timeout.
    pub async fn for_peer(&self, peer: IpAddr) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(h) = &self.ip {
            out.push((h.clone(), peer.to_string()));
        }
        if let Some(h) = &self.hostname {
            out.push((h.clone(), reverse_dns(peer).await));
        }
        out
    }

    /// Whether no client header is configured.
    pub fn is_empty(&self) -> bool {
        self.ip.is_none() && self.hostname.is_none()
    }
}

/// The name of `ip` by reverse DNS (`getnameinfo` on a blocking thread), or its text when
/// there is none or the resolver does not answer within [`DNS_TIMEOUT`].
pub async fn reverse_dns(ip: IpAddr) -> String {
    let lookup = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&ip));
    match tokio::time::timeout(DNS_TIMEOUT, lookup).await {
        Ok(Ok(Ok(name))) if !name.is_empty() => name,
        _ => ip.to_string(),
    }
}

/// A small per-source cache of reverse DNS answers for UDP senders, so that a stream of
/// datagrams from one host costs one lookup. Bounded: cleared when full.
#[derive(Debug, Default)]
pub(crate) struct HostnameCache(HashMap<IpAddr, String>);

impl HostnameCache {
    /// Most entries kept before the cache starts over.
    const MAX: usize = 4096;

    /// The cached or freshly looked-up name of `ip`.
    pub(crate) async fn get(&mut self, ip: IpAddr) -> String {
        if let Some(name) = self.0.get(&ip) {
            return name.clone();
        }
        let name = reverse_dns(ip).await;
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(ip, name.clone());
        name
    }
}

/// What one TCP connection needs besides its stream.
#[derive(Debug)]
pub(crate) struct ConnectionSettings {
    /// `eventSize`: the framer's cut.
    pub event_size: usize,
    /// `batchSize`: most events per channel transaction (also cut to `transactionCapacity`).
    pub batch_size: usize,
    /// The client headers.
    pub client: ClientHeaders,
}

/// Reads syslog messages from one TCP connection until the client closes it, it fails, or
/// shutdown; see the module invariants. `extra` headers (e.g. the multiport `portHeader`) are
/// set on every event.
pub(crate) async fn read_connection(
    mut stream: Stream,
    peer: SocketAddr,
    cx: SourceContext,
    settings: &ConnectionSettings,
    parser: &SyslogParser,
    mut extra: Vec<(String, String)>,
) {
    tracing::debug!(source = %cx.name, %peer, "Syslog connection opened.");
    // Resolved once per connection, before the first message: a connection has one peer.
    if !settings.client.is_empty() {
        tokio::select! {
            biased;
            () = cx.shutdown.cancelled() => return,
            headers = Box::pin(settings.client.for_peer(peer.ip())) => extra.extend(headers),
        }
    }
    let batch_max = settings.batch_size.min(cx.processor.max_batch()).max(1);
    let mut framer = SyslogFramer::new(settings.event_size);
    let mut buf = BytesMut::new();
    let mut want = SMALL_READ;
    let mut pending: Vec<Event> = Vec::new();
    loop {
        if buf.is_empty() && buf.capacity() > 0 {
            // Between messages: hold no buffer while waiting for the next bytes.
            buf = BytesMut::new();
        }
        // Wait without reserving anything; cheap when bytes are already there.
        tokio::select! {
            biased;
            () = cx.shutdown.cancelled() => break,
            ready = stream.readable() => if ready.is_err() { break },
        }
        if buf.capacity() - buf.len() < want / 2 {
            buf.reserve(want);
        }
        let spare = buf.capacity() - buf.len();
        let read = tokio::select! {
            biased;
            () = cx.shutdown.cancelled() => break,
            read = stream.read_buf(&mut buf) => read,
        };
        let n = match read {
            Ok(n) => n,
            Err(error) => {
                tracing::debug!(source = %cx.name, %peer, %error, "Syslog connection read failed.");
                break;
            }
        };
        let eof = n == 0;
        // Grow while the sender keeps the buffer full; back to small reads when it pauses.
        want = if n >= spare {
            (want * 2).min(BIG_READ)
        } else {
            SMALL_READ
        };
        let mut failed = false;
        loop {
            let frame = if eof {
                framer.decode_eof(&mut buf)
            } else {
                framer.decode(&mut buf)
            };
            match frame {
                Ok(Some(frame)) => {
                    let mut event = parser.parse(&frame.msg, frame.truncated);
                    for (k, v) in &extra {
                        event.headers.insert(k.as_str(), v.as_str());
                    }
                    pending.push(event);
                    if pending.len() >= batch_max && deliver(&cx, &mut pending).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(source = %cx.name, %peer, %error, "Syslog framing failed; closing the connection.");
                    failed = true;
                    break;
                }
            }
        }
        if deliver(&cx, &mut pending).await.is_err() || eof || failed {
            break;
        }
        if !buf.is_empty() && buf.capacity() - buf.len() > COMPACT_SLACK {
            // The sender paused mid-message (nothing more to read right now; TLS cannot tell,
            // so there only after a short read into a big buffer): keep that message alone,
            // not the read buffer around it.
            let idle = stream.readable().now_or_never().is_none();
            if idle || (n < spare && buf.capacity() > 2 * SMALL_READ) {
                buf = BytesMut::from(&buf[..]);
            }
        }
    }
    tracing::debug!(source = %cx.name, %peer, "Syslog connection closed.");
}

/// Delivers `pending` as one batch, retrying while the channels refuse it: the connection is
/// not read meanwhile (back-pressure). `Err` when shutdown came first.
async fn deliver(cx: &SourceContext, pending: &mut Vec<Event>) -> Result<(), ()> {
    if pending.is_empty() {
        return Ok(());
    }
    let events = std::mem::take(pending);
    // Boxed (one allocation per batch) so that its state does not enlarge every idle
    // connection's task.
    Box::pin(cx.deliver_retrying(events)).await.map_err(|_| ())
}
