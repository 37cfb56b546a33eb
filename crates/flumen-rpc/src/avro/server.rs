//! A thin tokio Avro RPC server: accepts connections, runs the handshake per connection, and
//! hands each `append`/`appendBatch` to an [`AvroHandler`], answering with its [`Status`].
//!
//! Invariants: requests of one connection are answered in order, each with its own serial
//! (pipelined requests are therefore answered correctly); a call is executed only after a
//! handshake other than NONE; malformed input closes the connection with a logged error;
//! every loop selects on the shutdown token, and `serve` returns only after every connection
//! task has ended.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::framing::{DEFAULT_MAX_FRAME, Frame, FrameError, WireCodec};
use super::handshake::{HandshakeMatch, HandshakeRequest, KnownProtocols};
use super::protocol::{Call, Reader, Status, put_result, read_call};
use crate::tls::TlsAcceptor;
use crate::zlib::ZlibStream;

/// What the server does with calls.
pub trait AvroHandler: Send + Sync + 'static {
    /// Executes `append` / `appendBatch` and returns the status to answer. Never called for a
    /// ping.
    fn call(&self, call: Call) -> BoxFuture<'_, Status>;
    /// A connection was accepted.
    fn connection_opened(&self, _peer: SocketAddr) {}
    /// A connection ended.
    fn connection_closed(&self, _peer: SocketAddr) {}
}

/// Server settings.
#[derive(Clone)]
pub struct ServerOptions {
    /// Largest request frame accepted.
    pub max_frame: usize,
    /// zlib-compressed connections (`compression-type = deflate`).
    pub deflate: bool,
    /// TLS (`ssl = true`); see [`crate::tls`]. With `deflate` too, [`serve`] runs TLS inside
    /// a zlib stream as in Flume 1.11 (`flume-rpc.md` A.1).
    pub tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("max_frame", &self.max_frame)
            .field("deflate", &self.deflate)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            deflate: false,
            tls: None,
        }
    }
}

impl ServerOptions {
    /// The frame codec: deflate runs in the codec only without TLS; with TLS the zlib layer
    /// is under TLS (applied by [`serve`]), so the frames inside are plain.
    fn codec(&self) -> WireCodec {
        if self.deflate && self.tls.is_none() {
            WireCodec::deflate(self.max_frame, 6)
        } else {
            WireCodec::plain(self.max_frame)
        }
    }
}

/// Decides whether a peer may connect (the source's `ipFilterRules`).
pub type PeerFilter = Arc<dyn Fn(SocketAddr) -> bool + Send + Sync>;

/// Serves `listener` until `shutdown` fires, then waits for every connection.
pub async fn serve<H: AvroHandler>(
    listener: TcpListener,
    handler: Arc<H>,
    options: ServerOptions,
    filter: Option<PeerFilter>,
    shutdown: CancellationToken,
) {
    let known = Arc::new(Mutex::new(KnownProtocols::default()));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Some(f) = &filter
                        && !f(peer)
                    {
                        tracing::info!(%peer, "Connection refused by the IP filter.");
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let (h, k, s) = (handler.clone(), known.clone(), shutdown.clone());
                    let options = options.clone();
                    connections.spawn(async move {
                        h.connection_opened(peer);
                        let served = match options.tls.clone() {
                            None => serve_connection(stream, &*h, &k, &options, s).await,
                            Some(acceptor) if options.deflate => {
                                let zlib = ZlibStream::new(stream, 6);
                                match crate::tls::accept(&acceptor, zlib, &s).await {
                                    Ok(None) => Ok(()),
                                    Ok(Some(tls)) => serve_connection(tls, &*h, &k, &options, s).await,
                                    Err(e) => Err(FrameError::Io(e)),
                                }
                            }
                            Some(acceptor) => match crate::tls::accept(&acceptor, stream, &s).await {
                                Ok(None) => Ok(()),
                                Ok(Some(tls)) => serve_connection(tls, &*h, &k, &options, s).await,
                                Err(e) => Err(FrameError::Io(e)),
                            },
                        };
                        if let Err(error) = served {
                            tracing::warn!(%peer, %error, "Avro connection closed on an error.");
                        }
                        h.connection_closed(peer);
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "Accepting a connection failed.");
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Serves one connection (any byte stream) until the peer closes it, it breaks, or shutdown.
///
/// `stream` carries the frames: with `options.tls` set it must be the TLS stream (already
/// over the zlib layer when `options.deflate` is set too, as [`serve`] does); without TLS,
/// `options.deflate` is applied here, in the frame codec.
///
/// # Errors
/// Malformed frames or data, or a socket error; the connection must be dropped.
pub async fn serve_connection<S, H>(
    stream: S,
    handler: &H,
    known: &Mutex<KnownProtocols>,
    options: &ServerOptions,
    shutdown: CancellationToken,
) -> Result<(), FrameError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: AvroHandler + ?Sized,
{
    let mut framed = Framed::new(stream, options.codec());
    let mut connected = false;
    loop {
        let frame = tokio::select! {
            biased;
            () = shutdown.cancelled() => return Ok(()),
            next = framed.next() => match next {
                None => return Ok(()),
                // A TLS peer that hangs up without close_notify, between calls: a normal end.
                Some(Err(FrameError::Io(e)))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof && framed.read_buffer().is_empty() =>
                {
                    return Ok(());
                }
                Some(frame) => frame?,
            },
        };
        let mut out = BytesMut::new();
        let mut r = Reader::new(frame.payload);
        if !connected {
            let req = HandshakeRequest::read(&mut r).map_err(invalid)?;
            let resp = known
                .lock()
                .map_err(|_| FrameError::Invalid("handshake state poisoned".into()))?
                .answer(&req);
            resp.write(&mut out);
            tracing::debug!(matched = ?resp.matched, with_text = req.client_protocol.is_some(), "Avro handshake answered.");
            if resp.matched == HandshakeMatch::None {
                // The call is not executed; the client re-sends it with its protocol.
                send(&mut framed, frame.serial, out).await?;
                continue;
            }
            connected = true;
        }
        let result = match read_call(&mut r).map_err(invalid)? {
            Ok(Call::Ping) => {
                send(&mut framed, frame.serial, out).await?;
                continue;
            }
            Ok(call) => Ok(handler.call(call).await),
            Err(name) => Err(format!("Unknown message: {name}")),
        };
        put_result(&mut out, &result);
        send(&mut framed, frame.serial, out).await?;
    }
}

fn invalid(e: impl std::fmt::Display) -> FrameError {
    FrameError::Invalid(e.to_string())
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S, WireCodec>,
    serial: i32,
    payload: BytesMut,
) -> Result<(), FrameError> {
    framed
        .send(Frame {
            serial,
            payload: payload.freeze(),
        })
        .await
}
