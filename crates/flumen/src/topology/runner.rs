//! The long-lived tasks: one per sink runner (a sink or a sink group) and one supervisor per
//! source. Every loop selects on its cancellation token.

use std::time::Duration;

use flumen_core::{CancellationToken, SinkProcessor, SourceContext, Status};
use futures_util::FutureExt;
use tokio::time::Instant;

use super::build::{RunnerPlan, SourcePlan};

/// Longest a runner waits on an empty channel before idle housekeeping (rolling files...).
const IDLE_TICK: Duration = Duration::from_secs(1);
/// Back-off after a failed round: doubles from the first value to the cap.
const FAIL_BACKOFF_MIN: Duration = Duration::from_millis(100);
const FAIL_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How a runner ends once its stop token fires.
#[derive(Debug, Clone, Copy)]
pub enum StopMode {
    /// Finish the batch in hand and stop (reload).
    Immediate,
    /// Keep draining while the channels have events, until the deadline (agent shutdown).
    Drain(Instant),
}

/// Runs a sink runner until `stop` fires, restarting the processor after a panic.
pub async fn run_sinks(
    mut plan: RunnerPlan,
    stop: CancellationToken,
    mode: tokio::sync::watch::Receiver<StopMode>,
) {
    let name = plan.name.clone();
    for (_, c) in plan.sink_counters() {
        c.lifecycle.started();
    }
    loop {
        let processor = match plan.instantiate() {
            Ok(p) => p,
            Err(diags) => {
                for d in diags {
                    tracing::error!(runner = %name, error = %d, "Cannot rebuild sink.");
                }
                return;
            }
        };
        let result = std::panic::AssertUnwindSafe(drive(processor, &name, &stop, mode.clone()))
            .catch_unwind()
            .await;
        match result {
            Ok(()) => return,
            Err(_) => {
                tracing::error!(runner = %name, "Sink runner panicked; restarting it in 1 s.");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn drive(
    mut p: SinkProcessor,
    name: &str,
    stop: &CancellationToken,
    mode: tokio::sync::watch::Receiver<StopMode>,
) {
    let channels: Vec<_> = p
        .drivers_mut()
        .iter()
        .map(|d| d.channel().clone())
        .collect();
    let mut fail_backoff = Duration::ZERO;
    let mut failing_since: Option<Instant> = None;
    let mut last_idle = Instant::now();
    loop {
        if stop.is_cancelled() {
            match *mode.borrow() {
                StopMode::Immediate => break,
                StopMode::Drain(deadline) => {
                    if Instant::now() >= deadline || channels.iter().all(|c| c.is_empty()) {
                        break;
                    }
                }
            }
        }
        match p.process().await {
            Ok(Status::Ready) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(runner = %name, after = ?since.elapsed(), "Sink delivers again.");
                }
                fail_backoff = Duration::ZERO;
                // Yield regularly: a busy runner must not starve the other tasks of its thread.
                tokio::task::consume_budget().await;
                if last_idle.elapsed() >= IDLE_TICK {
                    p.idle().await;
                    last_idle = Instant::now();
                }
            }
            Ok(Status::Backoff) => {
                if stop.is_cancelled() {
                    break;
                }
                if last_idle.elapsed() >= IDLE_TICK {
                    p.idle().await;
                    last_idle = Instant::now();
                }
                let readable =
                    futures_util::future::select_all(channels.iter().map(|c| c.readable()));
                tokio::select! {
                    () = stop.cancelled() => {}
                    _ = readable => {}
                    () = tokio::time::sleep(IDLE_TICK) => {}
                }
            }
            Err(error) => {
                if failing_since.is_none() {
                    tracing::warn!(runner = %name, %error, "Sink failed; events stay in the channel and will be retried with back-off.");
                    failing_since = Some(Instant::now());
                } else {
                    tracing::debug!(runner = %name, %error, "Sink still failing.");
                }
                if stop.is_cancelled() {
                    break;
                }
                fail_backoff = (fail_backoff * 2).clamp(FAIL_BACKOFF_MIN, FAIL_BACKOFF_MAX);
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = tokio::time::sleep(fail_backoff) => {}
                }
            }
        }
    }
    p.stop().await;
}

/// Runs a source until `stop` fires; a failed or panicked source is rebuilt and restarted
/// with back-off. A finite source (seq with `totalEvents`) that returns `Ok` is done.
pub async fn supervise_source(mut plan: SourcePlan, stop: CancellationToken) {
    let name = plan.name.clone();
    let counters = plan.context.counters.clone();
    let mut backoff = Duration::from_secs(1);
    loop {
        // Each (re)start is recorded, and each failure below records a stop, so `/ready` and
        // `StartTime`/`StopTime` show a source that cannot run (a port taken) as not running.
        counters.lifecycle.started();
        let source = match plan.instantiate() {
            Ok(s) => s,
            Err(diags) => {
                for d in diags {
                    tracing::error!(source = %name, error = %d, "Cannot rebuild source.");
                }
                break;
            }
        };
        let cx = SourceContext {
            name: name.as_str().into(),
            processor: plan.processor.clone(),
            shutdown: stop.child_token(),
            counters: counters.clone(),
        };
        let started = Instant::now();
        let result = std::panic::AssertUnwindSafe(source.run(cx))
            .catch_unwind()
            .await;
        if stop.is_cancelled() {
            break;
        }
        match result {
            Ok(Ok(())) => {
                tracing::info!(source = %name, "Source finished.");
                break;
            }
            Ok(Err(error)) => {
                tracing::error!(source = %name, %error, retry_in = ?backoff, "Source failed; restarting it.")
            }
            Err(_) => {
                tracing::error!(source = %name, retry_in = ?backoff, "Source panicked; restarting it.")
            }
        }
        counters.lifecycle.stopped();
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    counters.lifecycle.stopped();
}
