//! Thrift RPC, as Flume's `ThriftSource`, `ThriftSink` and `ThriftRpcClient` speak it:
//! `TFramedTransport` frames carrying `TCompactProtocol` (default) or `TBinaryProtocol`
//! messages of the `ThriftSourceProtocol` service (`append`, `appendBatch`, four-value
//! `Status`).
//!
//! # Layout
//! - [`protocol`]: sans-I/O encoding and decoding of one message, both protocols.
//! - [`framing`]: the frame codec and the `tokio_util` server/client codecs built on it.
//! - [`client`]: [`client::ThriftClient`], one connection, one call at a time, plain or TLS
//!   ([`client::ClientConfig::tls`]).
//! - [`server`]: [`server::serve_connection`] / [`server::serve_accepted`] (TLS first when
//!   configured), one connection of a server.
//!
//! TLS (`ssl = true`, `flume-rpc.md` B.3) starts with the first byte, frames inside; the
//! configurations come from [`crate::tls`].

pub mod client;
pub mod framing;
pub mod protocol;
pub mod server;

pub use client::{ClientConfig, ClientError, ThriftClient};
pub use framing::{DEFAULT_MAX_FRAME, FrameError};
pub use protocol::{Call, Protocol, Status};
