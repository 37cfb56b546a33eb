//! The component registry: one static descriptor table per kind (fluent-bit style).
//!
//! A component is one module plus one `DESCRIPTOR` line in its kind's table. Lookup of a
//! configured `type` is case-insensitive on the Flume alias and exact on the Flume class name,
//! as Flume's `SourceType.valueOf(type.toUpperCase())` + class-name fallback behave.

use std::sync::Arc;

use flumen_config::{Diagnostic, Props, did_you_mean};
use flumen_core::{
    Channel, ChannelCounters, Interceptor, Sink, SinkCounters, Source, SourceCounters,
};

pub mod channels;
pub mod interceptors;
pub mod sinks;
pub mod sources;

/// What a build function returns: the component and its warnings, or every error found.
pub type BuildResult<T> = Result<(T, Vec<Diagnostic>), Vec<Diagnostic>>;

/// Deserializes a typed config from `props`, validates it with `validate`, and builds with
/// `make`; the common shape of every build function.
pub fn build_with<C, T>(
    props: &Props,
    validate: impl FnOnce(&C, &Props) -> Vec<Diagnostic>,
    make: impl FnOnce(C) -> Result<T, Vec<Diagnostic>>,
) -> BuildResult<T>
where
    C: serde::de::DeserializeOwned,
{
    let (config, warnings) = props.deserialize::<C>()?;
    let errors = validate(&config, props);
    if !errors.is_empty() {
        return Err(errors.into_iter().chain(warnings).collect());
    }
    let component = make(config)?;
    Ok((component, warnings))
}

/// What a source's build function gets besides its properties.
#[derive(Debug, Clone)]
pub struct SourceBuildContext {
    /// The source's configured name.
    pub name: String,
    /// Its counters; the runtime registers them for `/metrics`.
    pub counters: Arc<SourceCounters>,
}

/// What a sink's build function gets besides its properties.
#[derive(Debug, Clone)]
pub struct SinkBuildContext {
    /// The sink's configured name.
    pub name: String,
    /// Its counters; the sink updates the connection counters, the driver the rest.
    pub counters: Arc<SinkCounters>,
}

/// What a channel's build function gets besides its properties.
#[derive(Debug, Clone)]
pub struct ChannelBuildContext {
    /// The channel's configured name.
    pub name: String,
    /// Its counters.
    pub counters: Arc<ChannelCounters>,
}

/// A source type. `props` holds the source's keys without `type`, `channels`, `selector.*` and
/// `interceptors*`, which the topology handles.
pub struct SourceDescriptor {
    /// Flume alias (`type` value), lower case.
    pub name: &'static str,
    /// Flume class names accepted as `type`.
    pub classes: &'static [&'static str],
    /// One line for `flumen components`.
    pub description: &'static str,
    /// The property holding the batch size, for the `transactionCapacity` check's message.
    pub batch_size_key: Option<&'static str>,
    /// Builds the source from its properties.
    pub build: fn(&Props, &SourceBuildContext) -> BuildResult<Box<dyn Source>>,
}

/// A sink type. `props` holds the sink's keys without `type` and `channel`.
pub struct SinkDescriptor {
    /// Flume alias (`type` value), lower case.
    pub name: &'static str,
    /// Flume class names accepted as `type`.
    pub classes: &'static [&'static str],
    /// One line for `flumen components`.
    pub description: &'static str,
    /// The property holding the batch size, for the `transactionCapacity` check's message.
    pub batch_size_key: Option<&'static str>,
    /// Builds the sink from its properties.
    pub build: fn(&Props, &SinkBuildContext) -> BuildResult<Box<dyn Sink>>,
}

/// A channel type. `props` holds the channel's keys without `type`.
pub struct ChannelDescriptor {
    /// Flume alias (`type` value), lower case.
    pub name: &'static str,
    /// Flume class names accepted as `type`.
    pub classes: &'static [&'static str],
    /// One line for `flumen components`.
    pub description: &'static str,
    /// Builds the channel from its properties.
    pub build: fn(&Props, &ChannelBuildContext) -> BuildResult<Arc<dyn Channel>>,
}

/// An interceptor type. `props` holds `interceptors.<name>.*` without `type`.
pub struct InterceptorDescriptor {
    /// Flume alias (`type` value), lower case.
    pub name: &'static str,
    /// Flume class names accepted as `type` (the nested `$Builder` class).
    pub classes: &'static [&'static str],
    /// One line for `flumen components`.
    pub description: &'static str,
    /// Builds the interceptor from its properties.
    pub build: fn(&Props) -> BuildResult<Box<dyn Interceptor>>,
}

/// The parts of a descriptor that type lookup needs.
pub trait Descriptor {
    /// Flume alias.
    fn alias(&self) -> &'static str;
    /// Flume class names.
    fn classes(&self) -> &'static [&'static str];
}

macro_rules! impl_descriptor {
    ($($t:ty),*) => {$(
        impl Descriptor for $t {
            fn alias(&self) -> &'static str { self.name }
            fn classes(&self) -> &'static [&'static str] { self.classes }
        }
    )*};
}
impl_descriptor!(
    SourceDescriptor,
    SinkDescriptor,
    ChannelDescriptor,
    InterceptorDescriptor
);

/// Finds the descriptor for a configured `type`: alias case-insensitively, or class name.
///
/// # Errors
/// A message naming the known types, with a did-you-mean hint when one is close.
pub fn lookup<'a, D: Descriptor>(
    table: &'a [D],
    type_name: &str,
) -> Result<&'a D, (String, Option<String>)> {
    let t = type_name.trim();
    if let Some(d) = table
        .iter()
        .find(|d| d.alias().eq_ignore_ascii_case(t) || d.classes().contains(&t))
    {
        return Ok(d);
    }
    let known: Vec<&str> = table.iter().map(|d| d.alias()).collect();
    let hint = did_you_mean(t, known.iter().copied());
    Err((
        format!("unknown type `{t}`; known types: {}", known.join(", ")),
        hint,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_by_alias_any_case_and_by_class_name() {
        assert_eq!(
            lookup(channels::CHANNELS, "MEMORY").map(|d| d.name).ok(),
            Some("memory")
        );
        assert_eq!(
            lookup(channels::CHANNELS, "org.apache.flume.channel.MemoryChannel")
                .map(|d| d.name)
                .ok(),
            Some("memory")
        );
        let (msg, hint) = lookup(channels::CHANNELS, "memroy").err().unwrap();
        assert!(msg.contains("unknown type `memroy`"), "{msg}");
        assert_eq!(hint.as_deref(), Some("did you mean `memory`?"));
    }
}
