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

use std::future::Future;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::framing::{FrameError, Response, ServerCodec};
use super::protocol::{Call, Protocol, Status, UNKNOWN_METHOD};

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
    mut handler: H,
) -> Result<(), FrameError>
where
    H: FnMut(Call) -> Fut,
    Fut: Future<Output = Status>,
{
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, ServerCodec::new(protocol, max_frame));
    loop {
        let request = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            next = framed.next() => match next {
                None => return Ok(()),
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
    use crate::thrift::client::{ClientConfig, ThriftClient};
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
}
