//! A thin tokio client for Flume's `ThriftSourceProtocol`: one framed connection, one call in
//! flight at a time, sequence ids incremented per call (as Java's client does) and checked in
//! each reply.
//!
//! Invariant: after any error (timeout, broken connection, mismatched reply) the client must
//! be dropped and a new one connected, because the connection may hold a late reply that would
//! be taken for the next call's answer. [`ThriftClient`] enforces that by refusing further
//! calls once it is broken.

use std::time::Duration;

use flumen_core::Event;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::framing::{ClientCodec, DEFAULT_MAX_FRAME, FrameError, Outgoing};
use super::protocol::{Protocol, Status};

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
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Wire protocol.
    pub protocol: Protocol,
    /// Limit on connecting.
    pub connect_timeout: Duration,
    /// Limit on waiting for each reply.
    pub request_timeout: Duration,
    /// Largest reply frame accepted.
    pub max_frame: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            protocol: Protocol::Compact,
            connect_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(20),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

/// One connection to a Thrift source.
#[derive(Debug)]
pub struct ThriftClient {
    framed: Framed<TcpStream, ClientCodec>,
    seqid: i32,
    request_timeout: Duration,
    broken: bool,
}

impl ThriftClient {
    /// Connects to `host:port`.
    ///
    /// # Errors
    /// Connection refused, unresolvable host, or the connect timeout.
    pub async fn connect(
        host: &str,
        port: u16,
        config: &ClientConfig,
    ) -> Result<Self, ClientError> {
        let addr = format!("{host}:{port}");
        let stream =
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect((host, port)))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(source)) => return Err(ClientError::Connect { addr, source }),
                Err(_) => return Err(ClientError::ConnectTimeout(addr)),
            };
        // Small request/reply exchanges: do not let Nagle hold the frame back.
        let _ = stream.set_nodelay(true);
        Ok(Self {
            framed: Framed::new(stream, ClientCodec::new(config.protocol, config.max_frame)),
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
