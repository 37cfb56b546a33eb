//! Channels: one module per Flume channel type.

use super::ChannelDescriptor;

pub mod file;
pub mod memory;
pub mod spillable_memory;

/// Every channel type flumen knows, one line each.
pub static CHANNELS: &[ChannelDescriptor] = &[
    memory::DESCRIPTOR,
    file::DESCRIPTOR,
    spillable_memory::DESCRIPTOR,
];
