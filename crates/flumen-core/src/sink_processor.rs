//! Sink processors: how a sink group picks which member sink runs each round.
//! A closed set of Flume policies, so an enum.

use std::time::Duration;

use tokio::time::Instant;

use crate::sink::{SinkDriver, SinkError, Status};

/// Failed-sink cool-down unit of both Flume processors (`FAILURE_PENALTY`, 1 s).
const FAILURE_PENALTY: Duration = Duration::from_millis(1000);

fn penalty(failures: u32, cap: Duration) -> Duration {
    FAILURE_PENALTY
        .saturating_mul(1u32 << failures.min(20))
        .min(cap)
}

/// Flume's sink processors.
#[derive(Debug)]
pub enum SinkProcessor {
    /// One sink, no policy.
    Default(SinkDriver),
    /// Highest-priority live sink; failed sinks are parked with a growing penalty.
    Failover(FailoverProcessor),
    /// Spread rounds across sinks; on failure try the next one.
    LoadBalance(LoadBalanceProcessor),
}

impl SinkProcessor {
    /// One round of the group.
    ///
    /// # Errors
    /// Every eligible sink failed this round.
    pub async fn process(&mut self) -> Result<Status, SinkError> {
        match self {
            Self::Default(d) => d.process().await,
            Self::Failover(f) => f.process().await,
            Self::LoadBalance(l) => l.process().await,
        }
    }

    /// Every member sink.
    pub fn drivers_mut(&mut self) -> Vec<&mut SinkDriver> {
        match self {
            Self::Default(d) => vec![d],
            Self::Failover(f) => f.sinks.iter_mut().map(|s| &mut s.driver).collect(),
            Self::LoadBalance(l) => l.sinks.iter_mut().map(|s| &mut s.driver).collect(),
        }
    }

    /// Idle housekeeping of every member; failures are logged here.
    pub async fn idle(&mut self) {
        for d in self.drivers_mut() {
            if let Err(error) = d.idle().await {
                tracing::warn!(%error, "Sink housekeeping failed.");
            }
        }
    }

    /// Stops every member sink.
    pub async fn stop(&mut self) {
        for d in self.drivers_mut() {
            d.stop().await;
        }
    }
}

#[derive(Debug)]
struct Member {
    driver: SinkDriver,
    priority: i64,
    /// Consecutive failures; 0 while live.
    failures: u32,
    /// When a failed (or backed-off) sink may be tried again.
    retry_at: Option<Instant>,
}

impl Member {
    fn new(driver: SinkDriver, priority: i64) -> Self {
        Self {
            driver,
            priority,
            failures: 0,
            retry_at: None,
        }
    }
}

/// Flume's `FailoverSinkProcessor`.
#[derive(Debug)]
pub struct FailoverProcessor {
    /// Members, highest priority first.
    sinks: Vec<Member>,
    max_penalty: Duration,
}

impl FailoverProcessor {
    /// `sinks` with their `priority.<sink>` values (higher wins; ties keep the given order);
    /// `max_penalty` is `maxpenalty`.
    pub fn new(sinks: Vec<(SinkDriver, i64)>, max_penalty: Duration) -> Self {
        let mut sinks: Vec<Member> = sinks.into_iter().map(|(d, p)| Member::new(d, p)).collect();
        sinks.sort_by_key(|m| std::cmp::Reverse(m.priority));
        Self { sinks, max_penalty }
    }

    /// Flume's `FailedSink.incFails`: penalty `min(maxpenalty, 2^failures s)`.
    fn penalize(&mut self, i: usize, now: Instant) {
        self.sinks[i].failures = self.sinks[i].failures.saturating_add(1);
        self.park(i, now);
    }

    fn park(&mut self, i: usize, now: Instant) {
        let m = &mut self.sinks[i];
        m.retry_at = Some(now + penalty(m.failures, self.max_penalty));
    }

    async fn process(&mut self) -> Result<Status, SinkError> {
        let now = Instant::now();
        // First give failed sinks whose penalty expired a chance, as Flume does; a success
        // makes them live again, and being higher priority they become active.
        for i in 0..self.sinks.len() {
            if matches!(self.sinks[i].retry_at, Some(t) if t <= now) {
                match self.sinks[i].driver.process().await {
                    Ok(Status::Ready) => {
                        tracing::info!(
                            sink = self.sinks[i].driver.name(),
                            "Failed sink recovered."
                        );
                        self.sinks[i].failures = 0;
                        self.sinks[i].retry_at = None;
                        return Ok(Status::Ready);
                    }
                    Ok(Status::Backoff) => {
                        // Nothing to prove it recovered with: Flume keeps it failed until it
                        // delivers, so park it again at the same penalty.
                        self.park(i, now);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "Sink still failing.");
                        self.penalize(i, now);
                    }
                }
            }
        }
        let mut last_error = None;
        for i in 0..self.sinks.len() {
            if self.sinks[i].retry_at.is_some() {
                continue;
            }
            match self.sinks[i].driver.process().await {
                Ok(s) => return Ok(s),
                Err(error) => {
                    tracing::warn!(%error, "Sink failed; failing over to the next one.");
                    self.penalize(i, now);
                    last_error = Some(error.to_string());
                }
            }
        }
        Err(SinkError::AllFailed(last_error.unwrap_or_else(|| {
            "every sink is in its failure penalty".into()
        })))
    }
}

/// How a load-balancing group orders its sinks each round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkSelector {
    /// Start one further each round.
    RoundRobin,
    /// A random order each round.
    Random,
}

/// Flume's `LoadBalancingSinkProcessor`.
#[derive(Debug)]
pub struct LoadBalanceProcessor {
    sinks: Vec<Member>,
    selector: SinkSelector,
    /// `processor.backoff`: park failed sinks with exponential back-off.
    backoff: bool,
    /// `processor.selector.maxTimeOut`.
    max_timeout: Duration,
    next: usize,
}

impl LoadBalanceProcessor {
    /// `sinks` in configuration order.
    pub fn new(
        sinks: Vec<SinkDriver>,
        selector: SinkSelector,
        backoff: bool,
        max_timeout: Duration,
    ) -> Self {
        let sinks = sinks.into_iter().map(|d| Member::new(d, 0)).collect();
        Self {
            sinks,
            selector,
            backoff,
            max_timeout,
            next: 0,
        }
    }

    fn order(&mut self, now: Instant) -> Vec<usize> {
        let n = self.sinks.len();
        let mut order: Vec<usize> = match self.selector {
            SinkSelector::RoundRobin => {
                let start = self.next % n.max(1);
                self.next = self.next.wrapping_add(1);
                (0..n).map(|k| (start + k) % n).collect()
            }
            SinkSelector::Random => {
                let mut v: Vec<usize> = (0..n).collect();
                fastrand::shuffle(&mut v);
                v
            }
        };
        if self.backoff {
            order.retain(|&i| !matches!(self.sinks[i].retry_at, Some(t) if t > now));
        }
        order
    }

    async fn process(&mut self) -> Result<Status, SinkError> {
        let now = Instant::now();
        let mut last_error = None;
        let order = self.order(now);
        if order.is_empty() {
            return Err(SinkError::AllFailed("every sink is backing off".into()));
        }
        let first = order[0];
        for i in order {
            match self.sinks[i].driver.process().await {
                Ok(s) => {
                    self.sinks[i].failures = 0;
                    self.sinks[i].retry_at = None;
                    // A turn that found the channel empty does not count: otherwise traffic
                    // arriving in bursts of one batch always lands on the same sink (its
                    // partner's turn always comes right after the burst was taken).
                    if s == Status::Backoff
                        && i == first
                        && self.selector == SinkSelector::RoundRobin
                    {
                        self.next = self.next.wrapping_sub(1);
                    }
                    return Ok(s);
                }
                Err(error) => {
                    tracing::warn!(%error, "Sink failed; trying the next one.");
                    if self.backoff {
                        let m = &mut self.sinks[i];
                        m.failures = m.failures.saturating_add(1);
                        m.retry_at = Some(now + penalty(m.failures, self.max_timeout));
                    }
                    last_error = Some(error.to_string());
                }
            }
        }
        Err(SinkError::AllFailed(last_error.unwrap_or_default()))
    }
}
