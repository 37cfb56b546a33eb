//! flumen: a log collection agent that runs Apache Flume configuration files unchanged.
//!
//! # Layout
//! - [`cli`]: the command line (`agent`, `check`, `components`).
//! - [`components`]: the registry and every source, channel, sink and interceptor.
//! - [`topology`]: builds an agent from its configuration, runs it, reloads it.

pub mod cli;
pub mod components;
pub mod topology;
