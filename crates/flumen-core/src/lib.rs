//! flumen's core: the data model and the transactional contracts every component plugs into.
//!
//! An [`Event`] (string headers + a zero-copy byte body) enters through a [`Source`], which hands
//! batches to its [`ChannelProcessor`]: the [`InterceptorChain`] runs, the [`ChannelSelector`]
//! picks required and optional channels, and each channel receives the batch in one
//! [`Transaction`]. A [`SinkDriver`] takes a batch from a [`Channel`] in a transaction, asks its
//! [`Sink`] to deliver it, and commits only when delivery succeeded; a [`SinkProcessor`] puts
//! several drivers behind a failover or load-balancing policy.
//!
//! This crate knows nothing of any particular source, channel or sink.
//!
//! # Layout
//! - [`event`]: `Event` and `Headers`.
//! - [`channel`]: the `Channel` and `Transaction` traits and `ChannelError`.
//! - [`interceptor`]: the `Interceptor` trait and the chain that runs them.
//! - [`selector`]: the channel selector policies (replicating, multiplexing, load balancing).
//! - [`processor`]: `ChannelProcessor`, interceptors then selector then channel transactions.
//! - [`source`]: the `Source` trait, `SourceContext` and the pollable-source loop.
//! - [`sink`]: the `Sink` trait and `SinkDriver`, the one place the take/deliver/commit idiom lives.
//! - [`sink_processor`]: the sink group policies (default, failover, load balance).
//! - [`metrics`]: Flume's counters, kept in atomics, and the registry that exposes them.

pub mod channel;
pub mod event;
pub mod interceptor;
pub mod metrics;
pub mod processor;
pub mod selector;
pub mod sink;
pub mod sink_processor;
pub mod source;

pub use channel::{Channel, ChannelError, Transaction};
pub use compact_str::{CompactString, ToCompactString, format_compact};
pub use event::{Event, Headers};
pub use interceptor::{Interceptor, InterceptorChain};
pub use metrics::{ChannelCounters, MetricsRegistry, SinkCounters, SourceCounters};
pub use processor::ChannelProcessor;
pub use selector::{ChannelSelector, Selection};
pub use sink::{DeliveryError, Sink, SinkDriver, Status};
pub use sink_processor::{FailoverProcessor, LoadBalanceProcessor, SinkProcessor, SinkSelector};
pub use source::{PollBackoff, Source, SourceContext, SourceError};
pub use tokio_util::sync::CancellationToken;

/// A boxed error for the places where the cause comes from a component we do not know.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
