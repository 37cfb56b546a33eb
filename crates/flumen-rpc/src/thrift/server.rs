//! The server side of one Thrift connection: read framed calls, hand each to a handler, write
//! its status back with the request's name and sequence id echoed.
//!
//! The accept loop belongs to the caller (the `thrift` source), which owns counters and
//! connection limits; this module only runs one connection.
//!
//! Invariants: calls on one connection are answered in order, one at a time; a call the
//! service does not have gets a `TApplicationException` (`UNKNOWN_METHOD`) like Java's
//! processor; garbage, an oversized frame or an I/O error ends the connection (the error is
//! returned for logging). Shutdown stops reading new calls, but a call in the handler is
//! finished and answered first.
//!
//! TLS (`ssl = true`, `flume-rpc.md` B.3): [`serve_accepted`] runs the server side of the
//! handshake on the fresh TCP connection (no STARTTLS; bounded and cancellable), then serves
//! the frames inside TLS like plain ones ([`serve_stream`] works on any byte stream).

use std::future::Future;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::framing::{FrameError, Response, ServerCodec};
use super::protocol::{Call, Protocol, Status, UNKNOWN_METHOD};
use crate::tls::TlsAcceptor;

/// Serves calls on `stream` until the peer closes, shutdown fires, or an error.
///
/// `handler` gets every `append` / `appendBatch` call and returns the status to send.
///
/// # Errors
/// A framing, protocol or I/O failure; the connection is closed.
pub async fn serve_connection<H, Fut>(
    stream: TcpStream,
    protocol: Protocol,
    max_frame: usize,
    shutdown: CancellationToken,
    handler: H,
) -> Result<(), FrameError>
where
    H: FnMut(Call) -> Fut,
    Fut: Future<Output = Status>,
{
    let _ = stream.set_nodelay(true);
    serve_stream(stream, protocol, max_frame, shutdown, handler).await
}

/// Serves a freshly accepted connection: the TLS handshake first when `tls` is set (within
/// [`crate::tls::SERVER_HANDSHAKE_TIMEOUT`]; shutdown during it ends the connection quietly),
/// then the calls as [`serve_connection`] does.
///
/// # Errors
/// A failed or timed-out TLS handshake (e.g. a plain-text client), or what
/// [`serve_connection`] reports.
pub async fn serve_accepted<H, Fut>(
    stream: TcpStream,
    tls: Option<&TlsAcceptor>,
    protocol: Protocol,
    max_frame: usize,
    shutdown: CancellationToken,
    handler: H,
) -> Result<(), FrameError>
where
    H: FnMut(Call) -> Fut,
    Fut: Future<Output = Status>,
{
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = tls else {
        return serve_stream(stream, protocol, max_frame, shutdown, handler).await;
    };
    match crate::tls::accept(acceptor, stream, &shutdown).await? {
        None => Ok(()),
        Some(tls) => serve_stream(tls, protocol, max_frame, shutdown, handler).await,
    }
}

/// Serves calls on any byte stream (plain or TLS) until the peer closes, shutdown fires, or an
/// error.
///
/// # Errors
/// A framing, protocol or I/O failure; the connection is closed.
pub async fn serve_stream<S, H, Fut>(
    stream: S,
    protocol: Protocol,
    max_frame: usize,
    shutdown: CancellationToken,
    mut handler: H,
) -> Result<(), FrameError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: FnMut(Call) -> Fut,
    Fut: Future<Output = Status>,
{
    let mut framed = Framed::new(stream, ServerCodec::new(protocol, max_frame));
    loop {
        let request = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = framed.next() => match next {
                None => return Ok(()),
                // A TLS peer that hangs up without close_notify, between calls: a normal end.
                Some(Err(FrameError::Io(e)))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof && framed.read_buffer().is_empty() =>
                {
                    return Ok(());
                }
                Some(r) => r?,
            },
        };
        let response = match request.call {
            Call::Unknown => Response::Exception {
                message: format!("Invalid method name: '{}'", request.name),
                name: request.name,
                seqid: request.seqid,
                kind: UNKNOWN_METHOD,
            },
            call => Response::Status {
                status: handler(call).await,
                name: request.name,
                seqid: request.seqid,
            },
        };
        if !request.oneway {
            framed.send(response).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thrift::client::{ClientConfig, ClientError, ThriftClient};
    use flumen_core::Event;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn client_and_server_over_loopback() {
        for protocol in [Protocol::Compact, Protocol::Binary] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(async move {
                let (s, _) = listener.accept().await.unwrap();
                let mut seen = Vec::new();
                let r = serve_connection(s, protocol, 1 << 20, CancellationToken::new(), |c| {
                    let status = match &c {
                        Call::AppendBatch(v) if v.len() > 2 => Status::Failed,
                        _ => Status::Ok,
                    };
                    seen.push(c);
                    async move { status }
                })
                .await;
                (r.is_ok(), seen)
            });
            let config = ClientConfig {
                protocol,
                ..ClientConfig::default()
            };
            let mut c = ThriftClient::connect("127.0.0.1", port, &config)
                .await
                .unwrap();
            assert_eq!(c.append(&Event::new("a")).await.unwrap(), Status::Ok);
            let two = [Event::new("b"), Event::new("c")];
            assert_eq!(c.append_batch(&two).await.unwrap(), Status::Ok);
            let three = [Event::new("d"), Event::new("e"), Event::new("f")];
            assert_eq!(c.append_batch(&three).await.unwrap(), Status::Failed);
            drop(c);
            let (ok, seen) = server.await.unwrap();
            assert!(ok);
            assert_eq!(seen.len(), 3);
        }
    }

    #[tokio::test]
    async fn garbage_closes_the_connection_with_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            serve_connection(
                s,
                Protocol::Compact,
                1 << 20,
                CancellationToken::new(),
                |_| async { Status::Ok },
            )
            .await
        });
        let mut s = TcpStream::connect(addr).await.unwrap();
        // A frame claiming 4 GiB - 1: refused at once.
        s.write_all(&[0xff, 0xff, 0xff, 0xfe]).await.unwrap();
        assert!(server.await.unwrap().is_err());
        let mut rest = Vec::new();
        assert_eq!(s.read_to_end(&mut rest).await.unwrap_or(0), 0);
    }

    /// Serves TLS connections from `listener` until `stop`, counting the calls seen.
    fn tls_server(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        protocol: Protocol,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<Vec<Result<usize, String>>> {
        tokio::spawn(async move {
            let mut results = Vec::new();
            loop {
                let (s, _) = tokio::select! {
                    () = stop.cancelled() => return results,
                    a = listener.accept() => a.unwrap(),
                };
                let mut calls = 0usize;
                let r = serve_accepted(s, Some(&acceptor), protocol, 1 << 20, stop.clone(), |_| {
                    calls += 1;
                    async { Status::Ok }
                })
                .await;
                results.push(r.map(|()| calls).map_err(|e| e.to_string()));
            }
        })
    }

    #[tokio::test]
    async fn tls_client_and_server_both_protocols() {
        let Some(certs) = crate::tls::test_certs::make() else {
            return;
        };
        for protocol in [Protocol::Compact, Protocol::Binary] {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let stop = CancellationToken::new();
            let acceptor = crate::tls::test_certs::acceptor(&certs.keystore);
            let server = tls_server(listener, acceptor, protocol, stop.clone());
            let config = ClientConfig {
                protocol,
                tls: Some(crate::tls::test_certs::connector(&certs.ca)),
                ..ClientConfig::default()
            };
            let mut c = ThriftClient::connect("127.0.0.1", port, &config)
                .await
                .unwrap();
            assert_eq!(c.append(&Event::new("a")).await.unwrap(), Status::Ok);
            let batch = [Event::new("b"), Event::new(vec![9u8; 100_000])];
            assert_eq!(c.append_batch(&batch).await.unwrap(), Status::Ok);
            drop(c);

            // A client trusting another certificate: a clear TLS error, the server goes on.
            let wrong = ClientConfig {
                protocol,
                tls: Some(crate::tls::test_certs::connector(&certs.leaf)),
                ..ClientConfig::default()
            };
            let e = ThriftClient::connect("127.0.0.1", port, &wrong)
                .await
                .unwrap_err();
            assert!(matches!(e, ClientError::Tls { .. }), "{e}");
            assert!(e.to_string().contains("TLS handshake"), "{e}");

            // A plain client: its call fails, the server reports a failed handshake.
            let plain = ClientConfig {
                protocol,
                request_timeout: std::time::Duration::from_secs(5),
                ..ClientConfig::default()
            };
            let mut c = ThriftClient::connect("127.0.0.1", port, &plain)
                .await
                .unwrap();
            assert!(c.append(&Event::new("x")).await.is_err());
            drop(c);

            // Still serving TLS clients.
            let mut c = ThriftClient::connect("127.0.0.1", port, &config)
                .await
                .unwrap();
            assert_eq!(c.append(&Event::new("c")).await.unwrap(), Status::Ok);
            drop(c);
            stop.cancel();
            let results = tokio::time::timeout(std::time::Duration::from_secs(10), server)
                .await
                .expect("the server stops on shutdown")
                .unwrap();
            assert_eq!(results.len(), 4, "{results:?}");
            assert_eq!(results[0], Ok(2));
            assert!(
                results[1].as_ref().is_err_and(|e| e.contains("TLS")),
                "{results:?}"
            );
            assert!(
                results[2].as_ref().is_err_and(|e| e.contains("TLS")),
                "{results:?}"
            );
            assert_eq!(results[3], Ok(1));
        }
    }
}
