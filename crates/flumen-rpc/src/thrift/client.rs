//! A thin tokio client for Flume's `ThriftSourceProtocol`: one framed connection, one call in
//! flight at a time, sequence ids incremented per call (as Java's client does) and checked in
//! each reply.
//!
//! Invariant: after any error (timeout, broken connection, mismatched reply) the client must
//! be dropped and a new one connected, because the connection may hold a late reply that would
//! be taken for the next call's answer. [`ThriftClient`] enforces that by refusing further
//! calls once it is broken.
//!
//! With [`ClientConfig::tls`] the connection is TLS from its first byte with the frames inside
//! (`flume-rpc.md` B.3), checked as Flume's client does (see [`crate::tls`]): the chain
//! against the trust store, never the host name.

use std::time::Duration;

use flumen_core::Event;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::framing::{ClientCodec, DEFAULT_MAX_FRAME, FrameError, Outgoing};
use super::protocol::{Protocol, Status};
use crate::tls::{TlsConnector, server_name};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (untrusted certificate, a plain-text server, ...).
    #[error("TLS handshake with {addr} failed: {source}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// What rustls reported.
        #[source]
        source: std::io::Error,
    },
    /// Connecting took longer than the connect timeout.
    #[error("connecting to {0} timed out")]
    ConnectTimeout(String),
    /// No reply within the request timeout.
    #[error("no reply within {0:?}")]
    RequestTimeout(Duration),
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// Framing or protocol failure (includes I/O errors).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The reply does not answer the call (wrong sequence id or name).
    #[error("reply does not match the request: {0}")]
    Mismatch(String),
    /// The server answered with an exception or no result.
    #[error("server error: {0}")]
    Remote(String),
    /// An earlier call failed; this client must be replaced.
    #[error("the connection is broken by an earlier failure")]
    Broken,
}

/// Client settings.
#[derive(Clone)]
pub struct ClientConfig {
    /// Wire protocol.
    pub protocol: Protocol,
    /// Limit on connecting.
    pub connect_timeout: Duration,
    /// Limit on waiting for each reply.
    pub request_timeout: Duration,
    /// Largest reply frame accepted.
    pub max_frame: usize,
    /// TLS (`ssl = true`), built with [`crate::tls::client_config`]; `None` for plain TCP.
    /// The handshake counts against `connect_timeout`.
    pub tls: Option<TlsConnector>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("protocol", &self.protocol)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_frame", &self.max_frame)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            protocol: Protocol::Compact,
            connect_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(20),
            max_frame: DEFAULT_MAX_FRAME,
            tls: None,
        }
    }
}

/// The byte stream under the frames: plain TCP or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One connection to a Thrift source.
pub struct ThriftClient {
    framed: Framed<Box<dyn Io>, ClientCodec>,
    seqid: i32,
    request_timeout: Duration,
    broken: bool,
}

impl std::fmt::Debug for ThriftClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThriftClient")
            .field("seqid", &self.seqid)
            .field("request_timeout", &self.request_timeout)
            .field("broken", &self.broken)
            .finish()
    }
}

impl ThriftClient {
    /// Connects to `host:port` (and completes the TLS handshake when configured) within the
    /// connect timeout.
    ///
    /// # Errors
    /// Connection refused, unresolvable host, a failed TLS handshake, or the connect timeout.
    pub async fn connect(
        host: &str,
        port: u16,
        config: &ClientConfig,
    ) -> Result<Self, ClientError> {
        let addr = format!("{host}:{port}");
        let work = async {
            let stream =
                TcpStream::connect((host, port))
                    .await
                    .map_err(|source| ClientError::Connect {
                        addr: addr.clone(),
                        source,
                    })?;
            // Small request/reply exchanges: do not let Nagle hold the frame back.
            let _ = stream.set_nodelay(true);
            let io: Box<dyn Io> = match &config.tls {
                None => Box::new(stream),
                Some(connector) => {
                    Box::new(connector.connect(server_name(host), stream).await.map_err(
                        |source| ClientError::Tls {
                            addr: addr.clone(),
                            source,
                        },
                    )?)
                }
            };
            Ok::<_, ClientError>(io)
        };
        let io = match tokio::time::timeout(config.connect_timeout, work).await {
            Ok(io) => io?,
            Err(_) => return Err(ClientError::ConnectTimeout(addr)),
        };
        Ok(Self {
            framed: Framed::new(io, ClientCodec::new(config.protocol, config.max_frame)),
            seqid: 0,
            request_timeout: config.request_timeout,
            broken: false,
        })
    }

    /// Sends `append(event)` and returns the server's status.
    ///
    /// # Errors
    /// See [`ClientError`]; after an error the client is broken.
    pub async fn append(&mut self, event: &Event) -> Result<Status, ClientError> {
        let seqid = self.next_seqid();
        self.call("append", seqid, Outgoing::Append(seqid, event))
            .await
    }

    /// Sends `appendBatch(events)` and returns the server's status.
    ///
    /// # Errors
    /// See [`ClientError`]; after an error the client is broken.
    pub async fn append_batch(&mut self, events: &[Event]) -> Result<Status, ClientError> {
        let seqid = self.next_seqid();
        self.call("appendBatch", seqid, Outgoing::AppendBatch(seqid, events))
            .await
    }

    fn next_seqid(&mut self) -> i32 {
        self.seqid = self.seqid.wrapping_add(1);
        self.seqid
    }

    async fn call(
        &mut self,
        name: &str,
        seqid: i32,
        msg: Outgoing<'_>,
    ) -> Result<Status, ClientError> {
        if self.broken {
            return Err(ClientError::Broken);
        }
        self.broken = true; // Cleared only when the exchange completes cleanly.
        let timeout = self.request_timeout;
        let exchange = async {
            self.framed.send(msg).await?;
            match self.framed.next().await {
                None => Err(ClientError::Closed),
                Some(Err(e)) => Err(e.into()),
                Some(Ok(reply)) => Ok(reply),
            }
        };
        let reply = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::RequestTimeout(timeout))??;
        if reply.seqid != seqid || reply.name != name {
            return Err(ClientError::Mismatch(format!(
                "sent {name}#{seqid}, got {}#{}",
                reply.name, reply.seqid
            )));
        }
        let status = reply.result.map_err(ClientError::Remote)?;
        self.broken = false;
        Ok(status)
    }
}
