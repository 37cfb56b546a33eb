//! Sinks: one module per Flume sink type.

use super::SinkDescriptor;

/// Every sink type flumen knows, one line each.
pub static SINKS: &[SinkDescriptor] = &[];
