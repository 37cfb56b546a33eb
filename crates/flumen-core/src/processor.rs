//! The channel processor: what a source calls to hand events to its channels.
//!
//! Runs the interceptor chain, asks the selector where each event goes, then writes each
//! required channel in its own transaction, and the optional ones best effort.

use std::sync::Arc;

use crate::channel::{Channel, ChannelError};
use crate::event::Event;
use crate::interceptor::InterceptorChain;
use crate::selector::ChannelSelector;

/// Interceptors + selector + the source's channels. Cheap to clone: every connection task of a
/// source holds one.
#[derive(Clone)]
pub struct ChannelProcessor {
    inner: Arc<Inner>,
}

struct Inner {
    interceptors: InterceptorChain,
    selector: ChannelSelector,
    channels: Vec<Arc<dyn Channel>>,
    max_batch: usize,
}

impl ChannelProcessor {
    /// A processor writing to `channels` (the source's `channels` list, in order; selector
    /// indexes refer to it).
    pub fn new(
        channels: Vec<Arc<dyn Channel>>,
        selector: ChannelSelector,
        interceptors: InterceptorChain,
    ) -> Self {
        let max_batch = channels
            .iter()
            .map(|c| c.transaction_capacity())
            .min()
            .unwrap_or(usize::MAX)
            .max(1);
        Self {
            inner: Arc::new(Inner {
                interceptors,
                selector,
                channels,
                max_batch,
            }),
        }
    }

    /// The channels this processor writes to.
    pub fn channels(&self) -> &[Arc<dyn Channel>] {
        &self.inner.channels
    }

    /// The largest batch one call may pass: the smallest `transactionCapacity` of the channels.
    /// Sources that choose their own batch sizes (netcat, exec) cut batches to this.
    pub fn max_batch(&self) -> usize {
        self.inner.max_batch
    }

    /// Intercepts, routes and commits one event.
    ///
    /// # Errors
    /// As [`ChannelProcessor::process_batch`].
    pub async fn process_event(&self, event: Event) -> Result<(), ChannelError> {
        self.process_batch(vec![event]).await
    }

    /// Intercepts, routes and commits a batch.
    ///
    /// Each required channel gets the events selected for it in one transaction, one channel
    /// after the other; the first failure is returned and the source must retry or refuse its
    /// client. Delivery is therefore at-least-once: a retry after a failure on the second
    /// required channel puts the batch into the first one again. Optional channels are written
    /// afterwards and their failures are logged, not returned.
    ///
    /// # Errors
    /// The first required channel's [`ChannelError`] (full, transaction capacity, closed...).
    pub async fn process_batch(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        self.put_intercepted(self.intercept(events))
            .await
            .map_err(|(e, _)| e)
    }

    /// Runs the interceptor chain. Sources that retry a refused batch intercept once and then
    /// retry [`ChannelProcessor::put_intercepted`], so interceptors see each event once.
    pub fn intercept(&self, events: Vec<Event>) -> Vec<Event> {
        let chain = &self.inner.interceptors;
        if chain.is_empty() {
            events
        } else {
            chain.intercept_batch(events)
        }
    }

    /// Routes and commits already intercepted events (see [`ChannelProcessor::process_batch`]).
    /// On failure the events are handed back for a retry: the single-channel path never copies
    /// them.
    ///
    /// # Errors
    /// The first required channel's error, with the events.
    pub async fn put_intercepted(
        &self,
        events: Vec<Event>,
    ) -> Result<(), (ChannelError, Vec<Event>)> {
        let inner = &*self.inner;
        if events.is_empty() {
            return Ok(());
        }
        if let Some(i) = inner.selector.single_channel() {
            return inner.channels[i].put_batch(events).await;
        }

        let n = inner.channels.len();
        let mut required: Vec<Vec<Event>> = vec![Vec::new(); n];
        let mut optional: Vec<Vec<Event>> = vec![Vec::new(); n];
        for event in &events {
            let sel = inner.selector.select(event);
            for &c in sel.required {
                required[c].push(event.clone());
            }
            for &c in sel.optional {
                optional[c].push(event.clone());
            }
        }
        for (c, batch) in required.into_iter().enumerate() {
            if !batch.is_empty()
                && let Err((e, _)) = inner.channels[c].put_batch(batch).await
            {
                return Err((e, events));
            }
        }
        for (c, batch) in optional.into_iter().enumerate() {
            if batch.is_empty() {
                continue;
            }
            if let Err((error, _)) = inner.channels[c].put_batch(batch).await {
                tracing::warn!(channel = inner.channels[c].name(), %error, "Put to optional channel failed; ignored.");
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for ChannelProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.inner.channels.iter().map(|c| c.name()).collect();
        f.debug_struct("ChannelProcessor")
            .field("channels", &names)
            .finish()
    }
}
