//! A running agent: starts a [`Plan`], stops it in Flume's order (sources, then sinks with a
//! drain, then channels), and applies a new plan as a diff so that unchanged components keep
//! running and unchanged channels keep their queued events.
//!
//! Metrics: every running component's counter group is registered under Flume's key
//! (`SOURCE.r1`) with its type alias; a component removed by a reload is unregistered (it
//! disappears from `/metrics`, where Flume would keep showing it stopped); a component kept as
//! it was keeps its counters and `StartTime`; a component rebuilt because its configuration
//! changed starts again from zero, as every component does on a Flume reload.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use flumen_core::metrics::ComponentMetrics;
use flumen_core::{CancellationToken, Channel, MetricsRegistry};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::build::{Fingerprint, Plan};
use super::runner::{StopMode, run_sinks, supervise_source};

struct Task {
    fingerprint: Fingerprint,
    /// Asks the task to stop; the task decides how (see `StopMode`).
    stop: CancellationToken,
    /// How a sink runner stops: immediately on reload, draining on shutdown.
    mode: watch::Sender<StopMode>,
    handle: JoinHandle<()>,
    /// Registry keys of the counter groups this task reports (`SOURCE.r1`, `SINK.k1`...).
    metric_keys: Vec<String>,
}

impl Task {
    async fn stop(self, mode: StopMode) {
        let _ = self.mode.send(mode);
        self.stop.cancel();
        if let Err(e) = self.handle.await
            && e.is_panic()
        {
            tracing::error!("A component task panicked while stopping.");
        }
    }
}

struct RunningChannel {
    fingerprint: Fingerprint,
    channel: Arc<dyn Channel>,
}

/// What a reload changed, for the log line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Components started that did not exist.
    pub added: Vec<String>,
    /// Components stopped and started again with a new configuration.
    pub restarted: Vec<String>,
    /// Components stopped for good.
    pub removed: Vec<String>,
    /// Components left running as they were.
    pub kept: Vec<String>,
}

/// The running agent.
pub struct RunningAgent {
    metrics: Arc<MetricsRegistry>,
    channels: BTreeMap<String, RunningChannel>,
    sources: BTreeMap<String, Task>,
    runners: BTreeMap<String, Task>,
}

impl RunningAgent {
    /// An agent running nothing yet, reporting into `metrics`.
    pub fn new(metrics: Arc<MetricsRegistry>) -> Self {
        Self {
            metrics,
            channels: BTreeMap::new(),
            sources: BTreeMap::new(),
            runners: BTreeMap::new(),
        }
    }

    /// The metrics registry the components report into.
    pub fn metrics(&self) -> &Arc<MetricsRegistry> {
        &self.metrics
    }

    /// The running channel named `name`, if its configuration fingerprint is `fp`: lets a new
    /// plan carry it over.
    pub fn reusable_channel(&self, name: &str, fp: &Fingerprint) -> Option<Arc<dyn Channel>> {
        self.channels
            .get(name)
            .filter(|c| &c.fingerprint == fp)
            .map(|c| c.channel.clone())
    }

    /// The channel named `name`.
    pub fn channel(&self, name: &str) -> Option<&Arc<dyn Channel>> {
        self.channels.get(name).map(|c| &c.channel)
    }

    /// Applies `plan`: the first call starts everything; later calls (reloads) stop what
    /// changed or went away, and start what changed or is new. Order: stop sources, stop sink
    /// runners, close retired channels, start runners, start sources — so no source writes
    /// into a channel nobody will drain, and no sink is left on a retired channel.
    pub async fn apply(&mut self, plan: Plan) -> ReloadSummary {
        let mut summary = ReloadSummary::default();
        let new_sources: BTreeMap<&str, &Fingerprint> = plan
            .sources
            .iter()
            .map(|s| (s.name.as_str(), &s.fingerprint))
            .collect();
        let new_runners: BTreeMap<&str, &Fingerprint> = plan
            .runners
            .iter()
            .map(|r| (r.name.as_str(), &r.fingerprint))
            .collect();

        // Stop sources and runners that changed or disappeared.
        let stale_sources: Vec<String> = self
            .sources
            .iter()
            .filter(|(n, t)| new_sources.get(n.as_str()) != Some(&&t.fingerprint))
            .map(|(n, _)| n.clone())
            .collect();
        for n in stale_sources {
            if let Some(t) = self.sources.remove(&n) {
                self.unregister(&t.metric_keys);
                t.stop(StopMode::Immediate).await;
            }
            if new_sources.contains_key(n.as_str()) {
                summary.restarted.push(format!("source {n}"));
            } else {
                summary.removed.push(format!("source {n}"));
            }
        }
        let stale_runners: Vec<String> = self
            .runners
            .iter()
            .filter(|(n, t)| new_runners.get(n.as_str()) != Some(&&t.fingerprint))
            .map(|(n, _)| n.clone())
            .collect();
        for n in stale_runners {
            if let Some(t) = self.runners.remove(&n) {
                self.unregister(&t.metric_keys);
                t.stop(StopMode::Immediate).await;
            }
            if new_runners.contains_key(n.as_str()) {
                summary.restarted.push(format!("sink runner {n}"));
            } else {
                summary.removed.push(format!("sink runner {n}"));
            }
        }

        // Channels: keep the carried-over ones, close the rest.
        let mut channels = BTreeMap::new();
        for c in plan.channels {
            let kept = self
                .channels
                .get(&c.name)
                .is_some_and(|old| Arc::ptr_eq(&old.channel, &c.channel));
            if kept {
                summary.kept.push(format!("channel {}", c.name));
            } else {
                if self.channels.contains_key(&c.name) {
                    summary.restarted.push(format!("channel {}", c.name));
                } else {
                    summary.added.push(format!("channel {}", c.name));
                }
                self.metrics.register_typed(
                    &c.name,
                    ComponentMetrics::Channel(counters_of(&c.channel)),
                    channel_type(&c.fingerprint),
                );
            }
            channels.insert(
                c.name,
                RunningChannel {
                    fingerprint: c.fingerprint,
                    channel: c.channel,
                },
            );
        }
        for (name, old) in std::mem::take(&mut self.channels) {
            let retired = channels
                .get(&name)
                .is_none_or(|c| !Arc::ptr_eq(&c.channel, &old.channel));
            if retired {
                if let Some(new) = channels.get(&name) {
                    let shared = old.channel.storage_key().is_some()
                        && old.channel.storage_key() == new.channel.storage_key();
                    if !shared {
                        transfer(&name, &*old.channel, &*new.channel).await;
                    }
                }
                if !old.channel.is_empty() {
                    tracing::warn!(channel = %name, events = old.channel.len(), "Channel removed by reload with events still queued; they are dropped.");
                }
                if let Err(error) = old.channel.close().await {
                    tracing::error!(channel = %name, %error, "Closing channel failed.");
                }
                if !channels.contains_key(&name) {
                    self.metrics.unregister(&format!("CHANNEL.{name}"));
                    summary.removed.push(format!("channel {name}"));
                }
            }
        }
        self.channels = channels;

        for r in plan.runners {
            if self.runners.contains_key(&r.name) {
                summary.kept.push(format!("sink runner {}", r.name));
                continue;
            }
            if !summary
                .restarted
                .contains(&format!("sink runner {}", r.name))
            {
                summary.added.push(format!("sink runner {}", r.name));
            }
            let types = sink_types(&r.fingerprint);
            let mut metric_keys = Vec::new();
            for (sink, counters) in r.sink_counters() {
                let t = types
                    .iter()
                    .find(|(n, _)| n == sink)
                    .and_then(|(_, t)| t.clone());
                self.metrics
                    .register_typed(sink, ComponentMetrics::Sink(counters), t);
                metric_keys.push(format!("SINK.{sink}"));
            }
            let stop = CancellationToken::new();
            let (mode, mode_rx) = watch::channel(StopMode::Immediate);
            let fingerprint = r.fingerprint.clone();
            let name = r.name.clone();
            let handle = tokio::spawn(run_sinks(r, stop.clone(), mode_rx));
            self.runners.insert(
                name,
                Task {
                    fingerprint,
                    stop,
                    mode,
                    handle,
                    metric_keys,
                },
            );
        }
        for s in plan.sources {
            if self.sources.contains_key(&s.name) {
                summary.kept.push(format!("source {}", s.name));
                continue;
            }
            if !summary.restarted.contains(&format!("source {}", s.name)) {
                summary.added.push(format!("source {}", s.name));
            }
            self.metrics.register_typed(
                &s.name,
                ComponentMetrics::Source(s.context.counters.clone()),
                Some(s.descriptor.name.into()),
            );
            let metric_keys = vec![format!("SOURCE.{}", s.name)];
            let stop = CancellationToken::new();
            let (mode, _) = watch::channel(StopMode::Immediate);
            let fingerprint = s.fingerprint.clone();
            let name = s.name.clone();
            let handle = tokio::spawn(supervise_source(s, stop.clone()));
            self.sources.insert(
                name,
                Task {
                    fingerprint,
                    stop,
                    mode,
                    handle,
                    metric_keys,
                },
            );
        }
        summary
    }

    /// Stops everything in Flume's order: sources stop accepting and finish their batch; sink
    /// runners keep draining until the channels are empty or `drain` has passed; then the
    /// channels close.
    pub async fn shutdown(&mut self, drain: Duration) {
        let sources: Vec<Task> = std::mem::take(&mut self.sources).into_values().collect();
        for t in &sources {
            t.stop.cancel();
        }
        for t in sources {
            t.stop(StopMode::Immediate).await;
        }
        let deadline = Instant::now() + drain;
        let runners: Vec<Task> = std::mem::take(&mut self.runners).into_values().collect();
        for t in &runners {
            let _ = t.mode.send(StopMode::Drain(deadline));
            t.stop.cancel();
        }
        for t in runners {
            t.stop(StopMode::Drain(deadline)).await;
        }
        for (name, c) in std::mem::take(&mut self.channels) {
            if !c.channel.is_empty() {
                tracing::warn!(channel = %name, events = c.channel.len(), "Channel closed with events still queued.");
            }
            if let Err(error) = c.channel.close().await {
                tracing::error!(channel = %name, %error, "Closing channel failed.");
            }
        }
    }

    /// Removes counter groups of components that left the configuration. A restarted
    /// component registers its new group under the same key right after.
    fn unregister(&self, keys: &[String]) {
        for k in keys {
            self.metrics.unregister(k);
        }
    }

    /// Whether every source has finished (finite sources such as `seq`) — used by tests.
    pub fn sources_finished(&self) -> bool {
        self.sources.values().all(|t| t.handle.is_finished())
    }
}

/// Moves the queued events of a channel whose configuration changed into its replacement, in
/// order, one transaction pair at a time: each batch is committed into the new channel before
/// it is taken from the old one, so a failure leaves it in the old channel, never in neither.
/// Stops when the new channel is full (its `keep-alive` already waited for room).
async fn transfer(name: &str, from: &dyn Channel, to: &dyn Channel) {
    let batch = from
        .transaction_capacity()
        .min(to.transaction_capacity())
        .max(1);
    let mut moved = 0usize;
    while !from.is_empty() {
        let mut take = from.begin();
        let n = match take.take(batch).await {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        let mut put = to.begin();
        let staged = put.put(take.taken().to_vec()).await;
        match staged {
            Ok(()) => match put.commit().await {
                Ok(()) => {}
                Err(error) => {
                    tracing::warn!(channel = %name, %error, "The reconfigured channel has no room for the rest of the old channel's events.");
                    break;
                }
            },
            Err(error) => {
                tracing::warn!(channel = %name, %error, "Cannot move events into the reconfigured channel.");
                break;
            }
        }
        if let Err(error) = take.commit().await {
            tracing::error!(channel = %name, %error, "Events were copied to the reconfigured channel but not removed from the old one.");
            break;
        }
        moved += n;
    }
    if moved > 0 {
        tracing::info!(channel = %name, events = moved, "Queued events moved into the reconfigured channel.");
    }
}

fn counters_of(ch: &Arc<dyn Channel>) -> Arc<flumen_core::ChannelCounters> {
    ch.counters().clone()
}

/// The alias of a configured `type` value (an alias in any case, or a Flume class name).
fn alias<'a>(raw: &str, known: impl Iterator<Item = (&'a str, &'a [&'a str])>) -> Arc<str> {
    for (name, classes) in known {
        if name.eq_ignore_ascii_case(raw) || classes.contains(&raw) {
            return name.into();
        }
    }
    raw.to_ascii_lowercase().into()
}

/// A channel's type alias, from its configuration fingerprint.
fn channel_type(fp: &Fingerprint) -> Option<Arc<str>> {
    let raw = fp.iter().find(|(k, _)| k == "type").map(|(_, v)| v)?;
    Some(alias(
        raw,
        crate::components::channels::CHANNELS
            .iter()
            .map(|d| (d.name, d.classes)),
    ))
}

/// Each member sink's type alias, from the runner's fingerprint: every member appears as
/// `("sink", name)` followed by its own properties (then its channel's, prefixed `channel:`).
fn sink_types(fp: &Fingerprint) -> Vec<(String, Option<Arc<str>>)> {
    let mut out: Vec<(String, Option<Arc<str>>)> = Vec::new();
    for (k, v) in fp {
        if k == "sink" {
            out.push((v.clone(), None));
        } else if k == "type"
            && let Some((_, t @ None)) = out.last_mut()
        {
            *t = Some(alias(
                v,
                crate::components::sinks::SINKS
                    .iter()
                    .map(|d| (d.name, d.classes)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(kv: &[(&str, &str)]) -> Fingerprint {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn component_types_from_fingerprints() {
        assert_eq!(
            channel_type(&fp(&[("capacity", "10"), ("type", "MEMORY")])).as_deref(),
            Some("memory")
        );
        assert_eq!(
            channel_type(&fp(&[("type", "org.apache.flume.channel.MemoryChannel")])).as_deref(),
            Some("memory")
        );
        assert_eq!(channel_type(&fp(&[("capacity", "10")])), None);
        // A failover group: the group's own `type` comes before any member.
        let group = fp(&[
            ("type", "failover"),
            ("sink", "k1"),
            ("type", "file_roll"),
            ("channel", "c1"),
            ("channel:type", "memory"),
            ("sink", "k2"),
            ("type", "org.apache.flume.sink.NullSink"),
        ]);
        let types: Vec<(String, Option<String>)> = sink_types(&group)
            .into_iter()
            .map(|(n, t)| (n, t.map(|t| t.to_string())))
            .collect();
        assert_eq!(
            types,
            [
                ("k1".to_owned(), Some("file_roll".to_owned())),
                ("k2".to_owned(), Some("null".to_owned()))
            ]
        );
    }
}
