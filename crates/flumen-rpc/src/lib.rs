//! Flume's RPC wire protocols, byte for byte as Flume 1.11 speaks them, so flumen agents and
//! Java Flume agents (and Flume SDK clients) can talk to each other in both directions.
//!
//! Each protocol is a sans-I/O codec (`tokio_util::codec` encoders and decoders over
//! `BytesMut`: fuzzable, no sockets) plus a thin tokio client and server on top.
//!
//! # Layout
//! - [`avro`]: Netty framing, the Avro IPC handshake, `append`/`appendBatch`, `Status`.
//! - [`client`]: [`client::RpcClient`], Flume's RPC client SDK (default, failover, load
//!   balancing, thrift) on top of both clients; the avro and thrift sinks use it.
//! - [`thrift`]: framed transport, compact and binary protocols, `append`/`appendBatch`.
//! - [`tls`]: rustls configurations from PEM files, shared by both protocols (`ssl = true`).
//! - [`zlib`]: the zlib stream layer of Avro's `compression-type = deflate` under TLS.

pub mod avro;
pub mod client;
pub mod thrift;
pub mod tls;
pub mod zlib;
