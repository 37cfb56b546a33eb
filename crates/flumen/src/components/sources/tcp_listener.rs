//! The accept loop every TCP source shares (`netcat`, `thrift`, `syslogtcp`,
//! `multiport_syslogtcp`): bind, accept until shutdown, one task per connection owned by a
//! `JoinSet`, `OpenConnectionCount` kept by a guard, and the TLS handshake when `ssl = true`.
//!
//! Invariants:
//! - shutdown stops accepting at once, then waits for every connection task (each selects on
//!   the same token, finishes the batch in hand and returns), so no connection outlives its
//!   source;
//! - `OpenConnectionCount` counts a connection from accept to the end of its task, however it
//!   ends (guard), TLS handshake included;
//! - the TLS handshake runs in the connection's task, never in the accept loop: a slow or
//!   silent client cannot hold up other clients; a failed handshake closes that connection
//!   only, logged once at info level (a plain-text client on a TLS port is a misconfiguration
//!   someone should see, but not an error of the agent);
//! - a failing `accept` (e.g. out of file descriptors) pauses the loop briefly instead of
//!   spinning;
//! - several listeners (the multiport source) are served by one loop and one task set.
//!
//! A plain connection costs its task and its socket: [`Stream::readable`] lets a handler wait
//! for input without holding a read buffer, which is what keeps thousands of idle syslog
//! connections cheap.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use flumen_core::{SourceContext, SourceCounters, SourceError};
use flumen_rpc::tls::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Pause after a failed `accept` so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Binds `host:port` for a source, mapping the failure to [`SourceError::Bind`].
///
/// # Errors
/// The address cannot be resolved or bound.
pub(crate) async fn bind(host: &str, port: u16) -> Result<TcpListener, SourceError> {
    TcpListener::bind((host, port))
        .await
        .map_err(|source| SourceError::Bind {
            addr: format!("{host}:{port}"),
            source,
        })
}

/// Anything a TLS session runs over and yields: the boxed form of a TLS stream.
pub(crate) trait IoStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> IoStream for T {}

/// An accepted connection's byte stream: plain TCP, or TLS over TCP after the handshake.
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS (the rustls session owns the socket).
    Tls(Box<dyn IoStream>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "Stream::Plain",
            Self::Tls(_) => "Stream::Tls",
        })
    }
}

impl Stream {
    /// Waits until a read would make progress, without a buffer. For TLS it returns at once
    /// (the session may hold decrypted bytes already), so the caller's read does the waiting.
    ///
    /// # Errors
    /// The socket failed.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.readable().await,
            Self::Tls(_) => Ok(()),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// One accepted (and, with TLS, handshaken) connection, handed to the source's handler.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// The byte stream.
    pub stream: Stream,
    /// The client's address.
    pub peer: SocketAddr,
    /// The local address it connected to (the multiport source reads the port from it).
    pub local: SocketAddr,
}

/// How [`serve`] treats accepted sockets.
#[derive(Clone, Default)]
pub(crate) struct ServeOptions {
    /// Run the TLS handshake first (`ssl = true`).
    pub tls: Option<TlsAcceptor>,
    /// Set `TCP_NODELAY` (sources whose small replies the client waits for).
    pub nodelay: bool,
}

/// Keeps `OpenConnectionCount` right however a connection task ends.
struct OpenConnection(Arc<SourceCounters>);

impl OpenConnection {
    fn new(counters: Arc<SourceCounters>) -> Self {
        counters.open_connection.inc();
        Self(counters)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connection.sub(1);
    }
}

/// Accepts connections on every listener until `cx.shutdown` fires, runs `handler` for each in
/// its own task, then waits for all of them. `handler` must return when the shutdown token
/// fires.
pub(crate) async fn serve<H, Fut>(
    listeners: Vec<TcpListener>,
    cx: &SourceContext,
    options: ServeOptions,
    handler: H,
) where
    H: Fn(Accepted) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    let mut connections = JoinSet::new();
    // Round-robin start so that one busy listener cannot starve the others.
    let mut next = 0usize;
    loop {
        let accept = std::future::poll_fn(|task| {
            let n = listeners.len();
            for i in 0..n {
                let k = (next + i) % n;
                if let Poll::Ready(r) = listeners[k].poll_accept(task) {
                    next = k + 1;
                    return Poll::Ready(r);
                }
            }
            Poll::Pending
        });
        tokio::select! {
            biased;
            () = cx.shutdown.cancelled() => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                report_join(cx, done);
            }
            accepted = accept => match accepted {
                Ok((stream, peer)) => {
                    let guard = OpenConnection::new(Arc::clone(&cx.counters));
                    let (options, handler, cx) = (options.clone(), Arc::clone(&handler), cx.clone());
                    connections.spawn(async move {
                        let _open = guard;
                        if let Some(accepted) = handshake(stream, peer, &options, &cx).await {
                            handler(accepted).await;
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(source = %cx.name, %error, "Accepting a connection failed.");
                    tokio::select! {
                        () = cx.shutdown.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    }
                }
            },
        }
    }
    drop(listeners); // Stop accepting before waiting for the connections.
    while let Some(done) = connections.join_next().await {
        report_join(cx, done);
    }
}

/// Options, then the TLS handshake; `None` when the connection is over before it started.
async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    options: &ServeOptions,
    cx: &SourceContext,
) -> Option<Accepted> {
    if options.nodelay {
        let _ = stream.set_nodelay(true);
    }
    let local = stream.local_addr().unwrap_or(peer);
    let stream = match &options.tls {
        None => Stream::Plain(stream),
        // Boxed: the handshake state is large and would otherwise size every connection
        // task, plain ones included, for the task's whole life.
        Some(acceptor) => {
            match Box::pin(flumen_rpc::tls::accept(acceptor, stream, &cx.shutdown)).await {
                Ok(Some(tls)) => Stream::Tls(Box::new(tls)),
                Ok(None) => return None,
                Err(error) => {
                    tracing::info!(source = %cx.name, %peer, %error, "TLS handshake failed; connection closed.");
                    return None;
                }
            }
        }
    };
    Some(Accepted {
        stream,
        peer,
        local,
    })
}

fn report_join(cx: &SourceContext, done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done {
        tracing::error!(source = %cx.name, %error, "Connection task failed.");
    }
}
