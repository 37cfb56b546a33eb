//! Sources: one module per Flume source type.
//!
//! Each module holds its typed `<Name>SourceConfig` (Flume's keys and defaults), the source
//! itself, and a `DESCRIPTOR` registered in [`SOURCES`] below.

use super::SourceDescriptor;

pub mod avro;
pub mod exec;
pub mod http;
pub mod netcat;
pub mod netcat_udp;
pub mod seq;
pub mod spooldir;
pub mod stress;
pub mod syslog;
pub mod taildir;
pub(crate) mod tcp_listener;
pub mod thrift;
pub mod tls_keys;

#[cfg(test)]
pub(crate) mod testing;

/// Every source type flumen knows, one line each.
pub static SOURCES: &[SourceDescriptor] = &[
    netcat::DESCRIPTOR,
    netcat_udp::DESCRIPTOR,
    seq::DESCRIPTOR,
    stress::DESCRIPTOR,
    exec::DESCRIPTOR,
    taildir::DESCRIPTOR,
    spooldir::DESCRIPTOR,
    thrift::DESCRIPTOR,
    avro::DESCRIPTOR,
    http::DESCRIPTOR,
    syslog::tcp::DESCRIPTOR,
    syslog::multiport_tcp::DESCRIPTOR,
    syslog::udp::DESCRIPTOR,
];
