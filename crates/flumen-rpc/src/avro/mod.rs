//! Avro RPC as Flume speaks it (`flume-rpc.md` part A): Netty framing ([`framing`]), the Avro
//! IPC handshake ([`handshake`]), `AvroSourceProtocol` messages ([`protocol`]), and a thin
//! tokio [`client`] and [`server`], with optional deflate and TLS ([`tls`]).
//!
//! The codecs are sans-I/O (`tokio_util::codec` over `BytesMut`) so they can be fuzzed and
//! tested without sockets; only `client` and `server` touch the network.
//!
//! Layering (A.1): deflate alone runs in the frame codec ([`framing::WireCodec`]); TLS alone
//! wraps the TCP stream; both together are Flume 1.11's zlib(TLS(frames)): a
//! [`crate::zlib::ZlibStream`] on the TCP stream, TLS inside it, plain frames inside TLS (the
//! first client bytes are `78 9c`). Flume ≤ 1.9 used TLS(zlib(frames)), so that pair of
//! options does not interoperate with old Flume, as between Flume 1.9 and 1.11.

pub mod client;
pub mod framing;
pub mod handshake;
pub mod protocol;
pub mod server;
/// TLS moved to [`crate::tls`] (protocol neutral); kept here for existing paths.
pub use crate::tls;

pub use client::{AvroClient, ClientError, ClientOptions};
pub use framing::{DEFAULT_MAX_FRAME, Frame, FrameCodec, FrameError, WireCodec};
pub use protocol::{Call, Status};
pub use server::{AvroHandler, PeerFilter, ServerOptions, serve, serve_connection};

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use bytes::{Bytes, BytesMut};
    use flumen_core::Event;
    use futures_util::future::BoxFuture;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::avro::handshake::{HandshakeRequest, PROTOCOL_MD5, PROTOCOL_MD5_FLUME_1_9};

    #[derive(Default)]
    struct Recorder {
        events: Mutex<Vec<Event>>,
        refuse: AtomicBool,
    }

    impl AvroHandler for Recorder {
        fn call(&self, call: Call) -> BoxFuture<'_, Status> {
            Box::pin(async move {
                if self.refuse.load(Ordering::SeqCst) {
                    return Status::Failed;
                }
                let mut ev = self.events.lock().unwrap();
                match call {
                    Call::Append(e) => ev.push(e),
                    Call::AppendBatch(es) => ev.extend(es),
                    Call::Ping => {}
                }
                Status::Ok
            })
        }
    }

    async fn start(
        options: ServerOptions,
    ) -> (
        u16,
        Arc<Recorder>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let rec = Arc::new(Recorder::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, rec.clone(), options, None, stop.clone()));
        (port, rec, stop, task)
    }

    fn ev(i: usize) -> Event {
        Event::with_headers(
            [("n", i.to_string()), ("ü", "ñ".to_string())]
                .into_iter()
                .collect(),
            Bytes::from(format!("event {i}")),
        )
    }

    #[tokio::test]
    async fn client_server_round_trip_plain_and_deflate() {
        for deflate in [false, true] {
            let (port, rec, stop, task) = start(ServerOptions {
                deflate,
                ..Default::default()
            })
            .await;
            let opts = ClientOptions {
                deflate_level: deflate.then_some(6),
                ..Default::default()
            };
            let mut c = AvroClient::connect("127.0.0.1", port, &opts).await.unwrap();
            c.append(&ev(0)).await.unwrap();
            let batch: Vec<Event> = (1..100).map(ev).collect();
            c.append_batch(&batch).await.unwrap();
            let big = Event::new(Bytes::from(vec![7u8; 1 << 20]));
            c.append_batch(std::slice::from_ref(&big)).await.unwrap();
            rec.refuse.store(true, Ordering::SeqCst);
            assert!(matches!(
                c.append_batch(&batch).await,
                Err(ClientError::Status(Status::Failed))
            ));
            let got = rec.events.lock().unwrap().clone();
            assert_eq!(got.len(), 101);
            assert_eq!(got[5], ev(5));
            assert_eq!(got[100], big);
            stop.cancel();
            task.await.unwrap();
        }
    }

    /// Raw request as Flume ≤1.9 would send it first, then the golden reply bytes.
    #[tokio::test]
    async fn raw_old_client_gets_client_match_then_plain_replies() {
        let (port, rec, stop, task) = start(ServerOptions::default()).await;
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let req = HandshakeRequest {
            client_hash: PROTOCOL_MD5_FLUME_1_9,
            client_protocol: None,
            server_hash: PROTOCOL_MD5_FLUME_1_9,
            meta: Some(Vec::new()),
        };
        let mut p = BytesMut::new();
        req.write(&mut p);
        protocol::put_call(&mut p, &[ev(1)], true);
        let mut wire = BytesMut::new();
        framing::encode_parts(1, &[p.freeze()], &mut wire);
        s.write_all(&wire).await.unwrap();
        let mut codec = FrameCodec::default();
        let f = read_frame(&mut s, &mut codec).await;
        assert_eq!(f.serial, 1);
        let mut r = protocol::Reader::new(f.payload);
        let hs = handshake::HandshakeResponse::read(&mut r).unwrap();
        assert_eq!(hs.matched, handshake::HandshakeMatch::Client);
        assert_eq!(hs.server_hash, Some(PROTOCOL_MD5));
        assert_eq!(protocol::read_result(&mut r).unwrap(), Ok(Status::Ok));
        // Second request: no handshake either way; reply is exactly `00 00 00`.
        let mut p = BytesMut::new();
        protocol::put_call(&mut p, &[ev(2)], false);
        let mut wire = BytesMut::new();
        framing::encode_parts(2, &[p.freeze()], &mut wire);
        s.write_all(&wire).await.unwrap();
        let f = read_frame(&mut s, &mut codec).await;
        assert_eq!((f.serial, &f.payload[..]), (2, &[0u8, 0, 0][..]));
        assert_eq!(rec.events.lock().unwrap().len(), 2);
        // Garbage: the server closes the connection.
        s.write_all(&[0, 0, 0, 3, 0x7f, 0xff, 0xff, 0xff])
            .await
            .unwrap();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0);
        stop.cancel();
        task.await.unwrap();
    }

    async fn read_frame(s: &mut TcpStream, codec: &mut FrameCodec) -> Frame {
        use tokio_util::codec::Decoder;
        let mut buf = BytesMut::new();
        loop {
            if let Some(f) = codec.decode(&mut buf).unwrap() {
                return f;
            }
            assert!(s.read_buf(&mut buf).await.unwrap() > 0, "closed");
        }
    }

    #[tokio::test]
    async fn client_reports_a_dropped_connection_and_timeouts() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // A server that accepts and never answers.
        let silent = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(s);
        });
        let opts = ClientOptions {
            connect_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        assert!(matches!(
            AvroClient::connect("127.0.0.1", port, &opts).await,
            Err(ClientError::Timeout(_))
        ));
        silent.abort();
        let _ = silent.await;
        assert!(matches!(
            AvroClient::connect("127.0.0.1", port, &opts).await,
            Err(ClientError::Connect { .. })
        ));
    }

    #[tokio::test]
    async fn tls_inside_deflate_round_trip_and_mismatches() {
        let Some(certs) = crate::tls::test_certs::make() else {
            return;
        };
        let acceptor = crate::tls::test_certs::acceptor(&certs.keystore);
        let (port, rec, stop, task) = start(ServerOptions {
            deflate: true,
            tls: Some(acceptor.clone()),
            ..Default::default()
        })
        .await;
        let opts = ClientOptions {
            deflate_level: Some(6),
            tls: Some(crate::tls::test_certs::connector(&certs.ca)),
            ..Default::default()
        };
        let mut c = AvroClient::connect("127.0.0.1", port, &opts).await.unwrap();
        c.append(&ev(0)).await.unwrap();
        let batch: Vec<Event> = (1..100).map(ev).collect();
        c.append_batch(&batch).await.unwrap();
        let big = Event::new(Bytes::from(vec![7u8; 1 << 20]));
        c.append_batch(std::slice::from_ref(&big)).await.unwrap();
        rec.refuse.store(true, Ordering::SeqCst);
        assert!(matches!(
            c.append_batch(&batch).await,
            Err(ClientError::Status(Status::Failed))
        ));
        rec.refuse.store(false, Ordering::SeqCst);
        drop(c);
        // Mismatched layering (TLS alone, or deflate alone, against zlib(TLS)): a clean
        // error, and the server goes on serving.
        let short = std::time::Duration::from_secs(3);
        for bad in [
            ClientOptions {
                deflate_level: None,
                connect_timeout: short,
                ..opts.clone()
            },
            ClientOptions {
                tls: None,
                connect_timeout: short,
                ..opts.clone()
            },
        ] {
            assert!(AvroClient::connect("127.0.0.1", port, &bad).await.is_err());
        }
        let mut c = AvroClient::connect("127.0.0.1", port, &opts).await.unwrap();
        c.append(&ev(200)).await.unwrap();
        let got = rec.events.lock().unwrap().clone();
        assert_eq!(got.len(), 102);
        assert_eq!(got[100], big);
        assert_eq!(got[101], ev(200));
        stop.cancel();
        task.await.unwrap();
    }

    /// Flume 1.11's layering: zlib outermost, so the first client bytes are the zlib header,
    /// not a TLS ClientHello (`16 03`).
    #[tokio::test]
    async fn tls_with_deflate_starts_with_the_zlib_header() {
        let Some(certs) = crate::tls::test_certs::make() else {
            return;
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let opts = ClientOptions {
            deflate_level: Some(6),
            tls: Some(crate::tls::test_certs::connector(&certs.ca)),
            connect_timeout: Duration::from_secs(10),
            ..Default::default()
        };
        let client =
            tokio::spawn(async move { AvroClient::connect("127.0.0.1", port, &opts).await });
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 2];
        s.read_exact(&mut head).await.unwrap();
        assert_eq!(head, [0x78, 0x9c]);
        drop(s);
        assert!(client.await.unwrap().is_err());
    }
}
