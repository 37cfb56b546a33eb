//! The runtime: build an agent's components from its configuration, run them, reload them.
//!
//! # Layout
//! - [`build`]: `AgentDef` → `Plan` (every component built and validated, nothing started).
//! - [`running`]: starts a plan, stops it in Flume's order, and applies a new plan as a diff.
//! - [`runner`]: the task loops: sink runners (with back-off) and the source supervisor.

pub mod build;
pub mod runner;
pub mod running;

pub use build::{BuildOptions, Plan, build};
pub use running::RunningAgent;
