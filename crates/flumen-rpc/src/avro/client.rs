//! A thin tokio Avro RPC client (Flume's `NettyAvroRpcClient` on the wire): one connection,
//! the handshake on the first request (with the NONE → resend-with-text path), then
//! `append`/`appendBatch` calls, one at a time.
//!
//! Invariants: a call succeeds only on an `OK` reply to its own serial; any other status, an
//! error reply, a timeout or a broken connection is an error, after which the client must be
//! dropped (like Flume's client, which marks itself dead) — its stream state is unknown.

use std::time::Duration;

use bytes::BytesMut;
use flumen_core::Event;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::framing::{DEFAULT_MAX_FRAME, Frame, FrameError, WireCodec};
use super::handshake::{HandshakeMatch, HandshakeRequest, HandshakeResponse, Md5, PROTOCOL_MD5};
use super::protocol::{Reader, Status, put_call, read_result};
use crate::tls::{TlsConnector, server_name};
use crate::zlib::ZlibStream;

/// Client settings (Flume's RPC client properties).
#[derive(Clone)]
pub struct ClientOptions {
    /// TLS (`ssl = true`); see [`crate::tls`]. With `deflate_level` too, TLS runs inside a
    /// zlib stream as in Flume 1.11 (`flume-rpc.md` A.1).
    pub tls: Option<TlsConnector>,
    /// `connect-timeout`: TCP connect plus handshake.
    pub connect_timeout: Duration,
    /// `request-timeout`: one call, from send to reply.
    pub request_timeout: Duration,
    /// Largest response frame accepted.
    pub max_frame: usize,
    /// `compression-type = deflate` with this `compression-level`; `None` for plain.
    pub deflate_level: Option<u32>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_frame", &self.max_frame)
            .field("deflate_level", &self.deflate_level)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The byte stream under the frames: plain TCP or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            tls: None,
            connect_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(20),
            max_frame: DEFAULT_MAX_FRAME,
            deflate_level: None,
        }
    }
}

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
    /// No reply in time.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// The connection broke or sent bad frames.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The reply is not valid Avro RPC.
    #[error("bad reply: {0}")]
    Protocol(String),
    /// The server answered with a status other than OK.
    #[error("the server answered {0:?}")]
    Status(Status),
    /// The server answered with an error.
    #[error("the server answered an error: {0}")]
    Remote(String),
}

/// One Avro RPC connection.
pub struct AvroClient {
    framed: Framed<Box<dyn Io>, WireCodec>,
    serial: i32,
    connected: bool,
    server_hash: Md5,
    send_text: bool,
    options: ClientOptions,
}

impl std::fmt::Debug for AvroClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroClient")
            .field("serial", &self.serial)
            .field("connected", &self.connected)
            .finish()
    }
}

impl AvroClient {
    /// Connects to `host:port` and completes the handshake (a ping), within the connect
    /// timeout.
    ///
    /// # Errors
    /// Connection refused, timeout, or a peer that does not speak Avro RPC.
    pub async fn connect(
        host: &str,
        port: u16,
        options: &ClientOptions,
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
            let _ = stream.set_nodelay(true);
            // Flume 1.11's layering (A.1): zlib outermost, TLS inside it, frames inside TLS.
            // Deflate without TLS stays in the frame codec.
            let tls_err = |source| ClientError::Connect {
                addr: addr.clone(),
                source,
            };
            let (io, codec): (Box<dyn Io>, _) = match (&options.tls, options.deflate_level) {
                (None, None) => (Box::new(stream), WireCodec::plain(options.max_frame)),
                (None, Some(level)) => (
                    Box::new(stream),
                    WireCodec::deflate(options.max_frame, level),
                ),
                (Some(connector), None) => (
                    Box::new(
                        connector
                            .connect(server_name(host), stream)
                            .await
                            .map_err(tls_err)?,
                    ),
                    WireCodec::plain(options.max_frame),
                ),
                (Some(connector), Some(level)) => (
                    Box::new(
                        connector
                            .connect(server_name(host), ZlibStream::new(stream, level))
                            .await
                            .map_err(tls_err)?,
                    ),
                    WireCodec::plain(options.max_frame),
                ),
            };
            let mut client = Self {
                framed: Framed::new(io, codec),
                serial: 0,
                connected: false,
                server_hash: PROTOCOL_MD5,
                send_text: false,
                options: options.clone(),
            };
            client
                .request(true, |out| {
                    crate::avro::protocol::put_long(out, 0);
                    crate::avro::protocol::put_long(out, 0); // message name "": ping
                })
                .await?;
            Ok(client)
        };
        tokio::time::timeout(options.connect_timeout, work)
            .await
            .map_err(|_| ClientError::Timeout("connect"))?
    }

    /// Sends `events` in one `appendBatch` and waits for `OK`.
    ///
    /// # Errors
    /// See [`ClientError`]; the client must be dropped afterwards.
    pub async fn append_batch(&mut self, events: &[Event]) -> Result<(), ClientError> {
        self.call(|out| put_call(out, events, true)).await
    }

    /// Sends one event with `append` and waits for `OK`.
    ///
    /// # Errors
    /// See [`ClientError`]; the client must be dropped afterwards.
    pub async fn append(&mut self, event: &Event) -> Result<(), ClientError> {
        self.call(|out| put_call(out, std::slice::from_ref(event), false))
            .await
    }

    async fn call(&mut self, body: impl Fn(&mut BytesMut)) -> Result<(), ClientError> {
        let timeout = self.options.request_timeout;
        let reply = tokio::time::timeout(timeout, self.request(false, body))
            .await
            .map_err(|_| ClientError::Timeout("request"))??;
        match reply {
            Some(Ok(Status::Ok)) => Ok(()),
            Some(Ok(status)) => Err(ClientError::Status(status)),
            Some(Err(msg)) => Err(ClientError::Remote(msg)),
            None => Err(ClientError::Protocol("reply without a result".into())),
        }
    }

    /// Sends one request (with the handshake while not connected) and returns its result, or
    /// `None` for a handshake-only reply (ping).
    async fn request(
        &mut self,
        ping: bool,
        body: impl Fn(&mut BytesMut),
    ) -> Result<Option<Result<Status, String>>, ClientError> {
        // At most one NONE: the resend carries our protocol text.
        for _ in 0..2 {
            let mut out = BytesMut::new();
            if !self.connected {
                HandshakeRequest::ours(self.server_hash, self.send_text).write(&mut out);
            }
            body(&mut out);
            self.serial = self.serial.wrapping_add(1);
            let serial = self.serial;
            self.framed
                .send(Frame {
                    serial,
                    payload: out.freeze(),
                })
                .await?;
            let payload = loop {
                match self.framed.next().await {
                    None => return Err(ClientError::Closed),
                    Some(f) => {
                        let f = f?;
                        if f.serial == serial {
                            break f.payload;
                        }
                        tracing::debug!(serial = f.serial, "Ignoring a reply to another request.");
                    }
                }
            };
            let mut r = Reader::new(payload);
            let proto = |e: super::protocol::DecodeError| ClientError::Protocol(e.0);
            if !self.connected {
                let hs = HandshakeResponse::read(&mut r).map_err(proto)?;
                if let Some(h) = hs.server_hash {
                    self.server_hash = h;
                }
                if hs.matched == HandshakeMatch::None {
                    self.send_text = true;
                    continue;
                }
                self.connected = true;
            }
            // A ping's reply is the handshake; Java stops there, avsc adds metadata and an
            // empty result, which mean nothing here.
            if r.remaining() == 0 || ping {
                return Ok(None);
            }
            return read_result(&mut r).map(Some).map_err(proto);
        }
        Err(ClientError::Protocol(
            "the server does not know our protocol (handshake NONE twice)".into(),
        ))
    }
}
