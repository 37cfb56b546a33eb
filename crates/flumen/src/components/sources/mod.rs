//! Sources: one module per Flume source type.

use super::SourceDescriptor;

/// Every source type flumen knows, one line each.
pub static SOURCES: &[SourceDescriptor] = &[];
