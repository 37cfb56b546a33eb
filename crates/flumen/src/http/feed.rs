//! Periodic snapshots of every counter group, for live views (the web console's Server-Sent
//! Events or WebSocket feed).
//!
//! One sampler task per server, started by the first [`AppState::subscribe`]; it reads the
//! registry (atomics only) once per period and publishes an `Arc<Snapshot>` on a `watch`
//! channel, so any number of clients share one sample and a slow client only ever sees the
//! latest. While nobody but the state itself holds a receiver, it samples nothing.
//!
//! [`AppState::subscribe`]: super::AppState::subscribe

use std::sync::Arc;
use std::time::Duration;

use flumen_core::MetricsRegistry;
use flumen_core::metrics::{Attribute, now_ms};
use tokio::sync::watch;

/// How often the feed samples.
pub const PERIOD: Duration = Duration::from_secs(1);

/// Every component's attributes at one instant.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Epoch ms of the sample (0 for the empty initial value).
    pub at_ms: u64,
    /// Components in key order.
    pub components: Vec<ComponentSnapshot>,
}

/// One component in a [`Snapshot`].
#[derive(Debug)]
pub struct ComponentSnapshot {
    /// Flume's key, `SOURCE.r1`.
    pub key: String,
    /// Its type alias (`netcat`), when known.
    pub component_type: Option<Arc<str>>,
    /// Its Flume attributes, as `/metrics` shows them.
    pub attributes: Vec<Attribute>,
}

/// Takes one snapshot of `registry` now.
pub fn sample(registry: &MetricsRegistry) -> Snapshot {
    Snapshot {
        at_ms: now_ms(),
        components: registry
            .entries()
            .into_iter()
            .map(|e| ComponentSnapshot {
                attributes: e.group.attributes(),
                key: e.key,
                component_type: e.component_type,
            })
            .collect(),
    }
}

/// Starts the sampler on the current runtime; the returned receiver is kept by the caller
/// (it does not count as a subscriber).
pub fn spawn(registry: Arc<MetricsRegistry>, period: Duration) -> watch::Receiver<Arc<Snapshot>> {
    let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            // The state's own receiver is always there; sample only for real subscribers.
            if tx.receiver_count() > 1 && tx.send(Arc::new(sample(&registry))).is_err() {
                return;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use flumen_core::SourceCounters;
    use flumen_core::metrics::ComponentMetrics;

    use super::*;

    #[tokio::test]
    async fn subscribers_see_fresh_samples() {
        let registry = Arc::new(MetricsRegistry::default());
        let c = Arc::new(SourceCounters::default());
        registry.register_typed(
            "r1",
            ComponentMetrics::Source(c.clone()),
            Some("netcat".into()),
        );
        let own = spawn(registry, Duration::from_millis(10));
        let mut rx = own.clone();
        c.event_accepted.set(42);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            tokio::time::timeout_at(deadline, rx.changed())
                .await
                .expect("a sample within 10 s")
                .expect("sampler alive");
            let snap = rx.borrow_and_update().clone();
            let r1 = &snap.components[0];
            assert_eq!(r1.key, "SOURCE.r1");
            assert_eq!(r1.component_type.as_deref(), Some("netcat"));
            if r1
                .attributes
                .iter()
                .any(|(n, v)| *n == "EventAcceptedCount" && v == "42")
            {
                assert!(snap.at_ms > 0);
                break;
            }
        }
    }
}
