//! Flume `.properties` agent configuration for flumen: read Flume's files unchanged, report
//! every problem with file, line and full key, and hand typed configs to components.
//!
//! The pipeline parses once and then works on types only:
//!
//! 1. [`properties::parse`] lexes the text exactly like `java.util.Properties.load`.
//! 2. [`load_agent`] applies Flume's key grammar for one agent (`-n a1`): lists, components,
//!    `channels`/`channel` wiring, selectors, interceptors, sink groups, `${...}` substitution.
//! 3. [`Props::deserialize`] turns one component's keys into its typed config struct, warning
//!    about unknown keys with a did-you-mean hint (Flume ignores them silently).
//!
//! Where Flume drops a broken component and keeps running, flumen reports every problem as a
//! [`Diagnostic`] and lets the caller refuse the configuration.
//!
//! # Layout
//!
//! - [`diagnostic`]: [`Diagnostic`], [`Severity`], [`did_you_mean`].
//! - [`properties`]: the `.properties` lexer ([`Entry`], [`parse_properties`]).
//! - [`props`]: [`Props`], the keys of one component with their lines.
//! - [`de`]: the serde deserializer behind [`Props::deserialize`].
//! - [`agent`]: [`load_agent`], [`load_file`] and the `*Def` types.

pub mod agent;
pub mod de;
pub mod diagnostic;
pub mod properties;
pub mod props;

pub use agent::{
    AgentDef, ChannelDef, ComponentDef, InterceptorDef, SinkDef, SinkGroupDef, SourceDef,
    load_agent, load_file,
};
pub use diagnostic::{Diagnostic, Severity, did_you_mean};
pub use properties::{Entry, parse as parse_properties};
pub use props::Props;
