//! Interceptors: pure, synchronous per-event transformations run by a source before routing.

use crate::event::Event;

/// Adds, changes or removes headers, rewrites bodies, or drops events.
///
/// Must be thread safe: one instance serves every task of its source.
pub trait Interceptor: Send + Sync {
    /// Transforms one event; `None` drops it.
    fn intercept(&self, event: Event) -> Option<Event>;
    /// Transforms a batch. Override only when a batch can be done faster than its events.
    fn intercept_batch(&self, events: Vec<Event>) -> Vec<Event> {
        events
            .into_iter()
            .filter_map(|e| self.intercept(e))
            .collect()
    }
}

/// The interceptors of one source, run in configuration order.
#[derive(Default)]
pub struct InterceptorChain(Vec<Box<dyn Interceptor>>);

impl InterceptorChain {
    /// A chain running `interceptors` in order.
    pub fn new(interceptors: Vec<Box<dyn Interceptor>>) -> Self {
        Self(interceptors)
    }
    /// Whether the chain has no interceptor (lets the processor skip it).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Runs every interceptor over the batch, in order.
    pub fn intercept_batch(&self, mut events: Vec<Event>) -> Vec<Event> {
        for i in &self.0 {
            events = i.intercept_batch(events);
            if events.is_empty() {
                break;
            }
        }
        events
    }
}

impl std::fmt::Debug for InterceptorChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InterceptorChain({} interceptors)", self.0.len())
    }
}
