//! flumen: a log collection agent that runs Apache Flume configuration files unchanged.
//!
//! # Layout
//! - [`cli`]: the command line (`agent`, `check`, `components`, `avro-client`).
//! - [`components`]: the registry and every source, channel, sink and interceptor.
//! - [`http`]: the metrics server (`/metrics` JSON and Prometheus, `/health`, `/ready`) and the
//!   web console.
//! - [`topology`]: builds an agent from its configuration, runs it, reloads it.

pub mod cli;
pub mod components;
pub mod http;
pub mod topology;
