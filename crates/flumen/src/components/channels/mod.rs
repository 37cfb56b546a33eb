//! Channels: one module per Flume channel type.

use super::ChannelDescriptor;

pub mod memory;

/// Every channel type flumen knows, one line each.
pub static CHANNELS: &[ChannelDescriptor] = &[memory::DESCRIPTOR];
