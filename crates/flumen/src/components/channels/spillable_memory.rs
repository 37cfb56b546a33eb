//! The `spillablememory` channel (Flume's `SpillableMemoryChannel`): a memory queue that
//! overflows into a `file` channel when it is full, and drains in the order events arrived.
//!
//! Invariants:
//! - `drain` records arrival order as runs: `+n` = the next n events are in memory, `-n` = the
//!   next n are in the overflow. A take transaction drains from one side only, the one at the
//!   head of `drain` when it starts (Flume's rule), so its commit and rollback touch one store;
//! - a put commit goes to memory if it fits within `overflowTimeout` (no wait once overflow is
//!   active), otherwise to the overflow; once active, overflow stays active until at least
//!   `overflowDeactivationThreshold` percent of memory is free again;
//! - memory events keep their slot while taken, so a rollback never waits;
//! - the memory part is lost on a crash, the overflow part is not (as in Flume).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use flumen_config::{Diagnostic, Props};
use flumen_core::channel::attempt_until;
use flumen_core::{Channel, ChannelCounters, ChannelError, Event, Transaction};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::file;
use crate::components::{BuildResult, ChannelBuildContext, ChannelDescriptor};

/// Registry entry.
pub const DESCRIPTOR: ChannelDescriptor = ChannelDescriptor {
    name: "spillablememory",
    classes: &["org.apache.flume.channel.SpillableMemoryChannel"],
    description: "Memory queue that overflows to a file channel when full",
    build,
};

/// The keys of the memory part; every other key configures the overflow file channel.
const OWN_KEYS: &[&str] = &[
    "memoryCapacity",
    "overflowCapacity",
    "overflowTimeout",
    "overflowDeactivationThreshold",
    "byteCapacityBufferPercentage",
    "byteCapacity",
    "avgEventSize",
];

/// Configuration of the memory part of the `spillablememory` channel.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct SpillableMemoryChannelConfig {
    /// Events held in memory; 0 = no memory part. Flume key: `memoryCapacity`. Default: 10000.
    #[serde(rename = "memoryCapacity")]
    pub memory_capacity: usize,
    /// Events held in the overflow; 0 = no overflow. Flume key: `overflowCapacity`.
    /// Default: 100000000.
    #[serde(rename = "overflowCapacity")]
    pub overflow_capacity: usize,
    /// Seconds a put waits for memory before spilling. Flume key: `overflowTimeout`. Default: 3.
    #[serde(rename = "overflowTimeout")]
    pub overflow_timeout: u64,
    /// Percent of memory that must be free to stop spilling. Flume key:
    /// `overflowDeactivationThreshold`. Default: 5.
    #[serde(rename = "overflowDeactivationThreshold")]
    pub overflow_deactivation_threshold: u64,
    /// Share of `byteCapacity` kept for headers. Flume key: `byteCapacityBufferPercentage`.
    /// Default: 20.
    #[serde(rename = "byteCapacityBufferPercentage")]
    pub byte_capacity_buffer_percentage: u64,
    /// Byte budget of the memory part (bodies). Flume key: `byteCapacity`. Default: unlimited.
    #[serde(rename = "byteCapacity")]
    pub byte_capacity: Option<u64>,
    /// Bytes per accounting slot. Flume key: `avgEventSize`. Default: 500.
    #[serde(rename = "avgEventSize")]
    pub avg_event_size: u64,
}

impl Default for SpillableMemoryChannelConfig {
    fn default() -> Self {
        Self {
            memory_capacity: 10_000,
            overflow_capacity: 100_000_000,
            overflow_timeout: 3,
            overflow_deactivation_threshold: 5,
            byte_capacity_buffer_percentage: 20,
            byte_capacity: None,
            avg_event_size: 500,
        }
    }
}

impl SpillableMemoryChannelConfig {
    fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut e = Vec::new();
        if self.memory_capacity == 0 && self.overflow_capacity == 0 {
            e.push(props.error(
                "overflowCapacity",
                "memoryCapacity and overflowCapacity cannot both be 0",
            ));
        }
        if self.avg_event_size == 0 {
            e.push(props.error("avgEventSize", "avgEventSize must be at least 1"));
        }
        if self.overflow_deactivation_threshold > 100 || self.byte_capacity_buffer_percentage > 100
        {
            e.push(props.error(
                "overflowDeactivationThreshold",
                "percentages must be between 0 and 100",
            ));
        }
        e
    }

    /// The memory byte budget in `avgEventSize` slots; under one slot means unlimited.
    fn byte_slots(&self) -> u64 {
        match self.byte_capacity {
            None => u64::MAX,
            Some(b) => {
                let usable = b as f64 * (1.0 - self.byte_capacity_buffer_percentage as f64 / 100.0);
                let slots = (usable / self.avg_event_size as f64) as u64;
                if slots < 1 { u64::MAX } else { slots }
            }
        }
    }
}

fn build(props: &Props, cx: &ChannelBuildContext) -> BuildResult<Arc<dyn Channel>> {
    let others: Vec<&str> = props
        .iter()
        .map(|(k, _, _)| k)
        .filter(|k| !OWN_KEYS.contains(k))
        .collect();
    let (config, mut warnings) = props
        .without(&others)
        .deserialize::<SpillableMemoryChannelConfig>()?;
    let mut errors = config.validate(props);
    for key in ["capacity", "keep-alive"] {
        if props.get(key).is_some() {
            warnings.push(props.warning(key, format!("`{key}` is ignored by spillablememory (set `overflowCapacity` / `overflowTimeout`)")));
        }
    }
    let mut overflow = None;
    if errors.is_empty() && config.overflow_capacity > 0 {
        let mut file_props = props.without(OWN_KEYS).without(&["capacity", "keep-alive"]);
        file_props.insert(
            "capacity",
            config.overflow_capacity.to_string(),
            props.first_line().unwrap_or(0),
        );
        file_props.insert("keep-alive", "0", props.first_line().unwrap_or(0));
        let file_cx = ChannelBuildContext {
            name: format!("{} (overflow)", cx.name),
            counters: Arc::default(),
        };
        match (file::DESCRIPTOR.build)(&file_props, &file_cx) {
            Ok((ch, w)) => {
                warnings.extend(w);
                overflow = Some(ch);
            }
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors.into_iter().chain(warnings).collect());
    }
    let tx_cap = props
        .without(OWN_KEYS)
        .deserialize::<file::FileChannelConfig>()
        .map(|(c, _)| c.transaction_capacity)
        .unwrap_or(10_000);
    let ch: Arc<dyn Channel> = Arc::new(SpillableMemoryChannel::new(
        &cx.name,
        config,
        tx_cap,
        overflow,
        cx.counters.clone(),
    ));
    Ok((ch, warnings))
}

/// The `spillablememory` channel.
pub struct SpillableMemoryChannel {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    config: SpillableMemoryChannelConfig,
    transaction_capacity: usize,
    byte_slots: u64,
    overflow: Option<Arc<dyn Channel>>,
    state: Mutex<State>,
    /// Wakes sink runners when a put commits or a take rolls back.
    readable: Notify,
    /// Wakes puts waiting for memory room when a memory take commits.
    space: Notify,
    counters: Arc<ChannelCounters>,
}

#[derive(Default)]
struct State {
    memory: VecDeque<Event>,
    /// Memory events taken by open transactions (they keep their slots).
    memory_in_flight: usize,
    /// Byte slots used by queued and in-flight memory events.
    used_slots: u64,
    /// Arrival order: `+n` memory run, `-n` overflow run.
    drain: VecDeque<i64>,
    overflow_active: bool,
}

impl State {
    fn push_back(&mut self, run: i64) {
        match self.drain.back_mut() {
            Some(last) if last.signum() == run.signum() => *last += run,
            _ => self.drain.push_back(run),
        }
    }
    fn push_front(&mut self, run: i64) {
        match self.drain.front_mut() {
            Some(first) if first.signum() == run.signum() => *first += run,
            _ => self.drain.push_front(run),
        }
    }
    /// Takes up to `max` events from the head run and returns how many.
    fn pop_head(&mut self, max: usize) -> usize {
        let Some(head) = self.drain.front_mut() else {
            return 0;
        };
        let k = (head.unsigned_abs() as usize).min(max);
        if *head > 0 {
            *head -= k as i64;
        } else {
            *head += k as i64;
        }
        if *head == 0 {
            self.drain.pop_front();
        }
        k
    }
    fn overflow_len(&self) -> u64 {
        self.drain
            .iter()
            .filter(|r| **r < 0)
            .map(|r| r.unsigned_abs())
            .sum()
    }
}

fn slots(events: &[Event], avg: u64) -> u64 {
    events
        .iter()
        .map(|e| (e.body.len() as u64).max(1).div_ceil(avg))
        .sum()
}

impl SpillableMemoryChannel {
    /// A channel whose overflow (if any) is the given file channel.
    pub fn new(
        name: &str,
        config: SpillableMemoryChannelConfig,
        transaction_capacity: usize,
        overflow: Option<Arc<dyn Channel>>,
        counters: Arc<ChannelCounters>,
    ) -> Self {
        let mut state = State::default();
        // Events left in the overflow by an earlier run drain first.
        if let Some(o) = &overflow {
            let n = o.len() as i64;
            if n > 0 {
                state.push_back(-n);
            }
        }
        counters
            .channel_capacity
            .set((config.memory_capacity + config.overflow_capacity) as u64);
        counters.channel_size.set(state.overflow_len());
        counters.recovered(state.overflow_len());
        counters.lifecycle.started();
        let byte_slots = config.byte_slots();
        Self {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                transaction_capacity,
                byte_slots,
                overflow,
                state: Mutex::new(state),
                config,
                readable: Notify::new(),
                space: Notify::new(),
                counters,
            }),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_size(&self, st: &State) {
        self.counters
            .channel_size
            .set(st.memory.len() as u64 + st.overflow_len());
    }

    /// Tries to put into memory, waiting up to the overflow timeout (none once overflow is
    /// active). Returns the events back when they do not fit.
    async fn put_memory(&self, events: Vec<Event>) -> Result<(), Vec<Event>> {
        let n = events.len();
        if self.config.memory_capacity == 0 || n > self.config.memory_capacity {
            return Err(events);
        }
        let need = if self.byte_slots == u64::MAX {
            0
        } else {
            slots(&events, self.config.avg_event_size)
        };
        let wait = if self.lock().overflow_active {
            0
        } else {
            self.config.overflow_timeout
        };
        let deadline = Instant::now() + Duration::from_secs(wait);
        let mut events = Some(events);
        let stored = attempt_until(&self.space, Some(deadline), || {
            let mut st = self.lock();
            let fits = st.memory.len() + st.memory_in_flight + n <= self.config.memory_capacity
                && (self.byte_slots == u64::MAX || st.used_slots + need <= self.byte_slots);
            if !fits {
                return None;
            }
            st.used_slots += need;
            st.memory.extend(events.take()?);
            st.push_back(n as i64);
            self.update_size(&st);
            Some(())
        })
        .await;
        match (stored, events) {
            (Some(()), _) => Ok(()),
            (None, Some(events)) => Err(events),
            (None, None) => unreachable!("events are taken only when stored"),
        }
    }

    async fn put_overflow(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        let Some(overflow) = &self.overflow else {
            return Err(ChannelError::Full {
                channel: self.name.clone(),
                capacity: self.config.memory_capacity,
            });
        };
        let n = events.len();
        self.lock().overflow_active = true;
        // Flume retries once after the overflow timeout when the overflow is full.
        let mut result = Ok(());
        for attempt in 0..2 {
            let mut tx = overflow.begin();
            tx.put(events.clone()).await?;
            result = tx.commit().await;
            match &result {
                Err(ChannelError::Full { .. }) if attempt == 0 => {
                    tokio::time::sleep(Duration::from_secs(self.config.overflow_timeout)).await;
                }
                _ => break,
            }
        }
        result.map_err(|e| match e {
            ChannelError::Full { .. } => ChannelError::Full {
                channel: self.name.clone(),
                capacity: self.config.memory_capacity + self.config.overflow_capacity,
            },
            other => other,
        })?;
        let mut st = self.lock();
        st.push_back(-(n as i64));
        self.update_size(&st);
        Ok(())
    }
}

#[async_trait]
impl Channel for SpillableMemoryChannel {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn begin(&self) -> Box<dyn Transaction> {
        Box::new(SpillTransaction {
            ch: self.inner.clone(),
            puts: Vec::new(),
            side: None,
            taken: Vec::new(),
            overflow_tx: None,
        })
    }

    async fn readable(&self) {
        let inner = &self.inner;
        attempt_until(&inner.readable, None, || {
            (!inner.lock().drain.is_empty()).then_some(())
        })
        .await;
    }

    fn counters(&self) -> &Arc<ChannelCounters> {
        &self.inner.counters
    }

    fn transaction_capacity(&self) -> usize {
        self.inner.transaction_capacity
    }

    fn len(&self) -> usize {
        let st = self.inner.lock();
        st.memory.len() + st.overflow_len() as usize
    }

    fn storage_key(&self) -> Option<String> {
        self.inner.overflow.as_ref().and_then(|o| o.storage_key())
    }

    async fn close(&self) -> Result<(), ChannelError> {
        self.inner.counters.lifecycle.stopped();
        match &self.inner.overflow {
            Some(o) => o.close().await,
            None => Ok(()),
        }
    }
}

/// Which store a take transaction drains.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Memory,
    Overflow,
}

struct SpillTransaction {
    ch: Arc<Inner>,
    puts: Vec<Event>,
    side: Option<Side>,
    /// Memory events taken (overflow events live in `overflow_tx`).
    taken: Vec<Event>,
    overflow_tx: Option<Box<dyn Transaction>>,
}

impl SpillTransaction {
    fn undo_takes(&mut self) {
        let ch = &self.ch;
        match self.side {
            Some(Side::Memory) if !self.taken.is_empty() => {
                let mut st = ch.lock();
                let k = self.taken.len();
                st.memory_in_flight -= k;
                for e in self.taken.drain(..).rev() {
                    st.memory.push_front(e);
                }
                st.push_front(k as i64);
                ch.update_size(&st);
            }
            Some(Side::Overflow) => {
                if let Some(tx) = self.overflow_tx.take() {
                    let k = tx.taken().len();
                    drop(tx); // rolls back in the file channel
                    if k > 0 {
                        let mut st = ch.lock();
                        st.push_front(-(k as i64));
                        ch.update_size(&st);
                    }
                }
            }
            _ => return,
        }
        ch.readable.notify_waiters();
    }
}

#[async_trait]
impl Transaction for SpillTransaction {
    async fn put(&mut self, events: Vec<Event>) -> Result<(), ChannelError> {
        let ch = &self.ch;
        ch.counters.event_put_attempt.add(events.len() as u64);
        if self.puts.len() + events.len() > ch.transaction_capacity {
            return Err(ChannelError::TransactionCapacity {
                channel: ch.name.clone(),
                capacity: ch.transaction_capacity,
            });
        }
        self.puts.extend(events);
        Ok(())
    }

    async fn take(&mut self, max: usize) -> Result<usize, ChannelError> {
        let ch = self.ch.clone();
        let already = self.taken.len() + self.overflow_tx.as_ref().map_or(0, |t| t.taken().len());
        let room = ch.transaction_capacity.saturating_sub(already);
        if room == 0 && max > 0 {
            return Err(ChannelError::TransactionCapacity {
                channel: ch.name.clone(),
                capacity: ch.transaction_capacity,
            });
        }
        let want = max.min(room);
        let (side, k) = {
            let mut st = ch.lock();
            let head_is_memory = match st.drain.front() {
                None => {
                    ch.counters.event_take_attempt.add(u64::from(want > 0));
                    return Ok(0);
                }
                Some(h) => *h > 0,
            };
            let side = if head_is_memory {
                Side::Memory
            } else {
                Side::Overflow
            };
            // A transaction drains one side only: stop when the head switches.
            if self.side.is_some_and(|s| s != side) {
                return Ok(0);
            }
            let k = st.pop_head(want);
            if side == Side::Memory {
                st.memory_in_flight += k;
                let taken: Vec<Event> = st.memory.drain(..k).collect();
                self.taken.extend(taken);
            }
            ch.update_size(&st);
            (side, k)
        };
        self.side = Some(side);
        let n = if side == Side::Overflow {
            let Some(overflow) = &ch.overflow else {
                return Ok(0);
            };
            let tx = self.overflow_tx.get_or_insert_with(|| overflow.begin());
            let before = tx.taken().len();
            let got = match tx.take(k).await {
                Ok(got) => got,
                Err(e) => {
                    ch.lock().push_front(-(k as i64));
                    return Err(e);
                }
            };
            if got < k {
                ch.lock().push_front(-((k - got) as i64));
            }
            tx.taken().len() - before
        } else {
            k
        };
        ch.counters
            .event_take_attempt
            .add((n + usize::from(n < want)) as u64);
        Ok(n)
    }

    fn taken(&self) -> &[Event] {
        match (&self.side, &self.overflow_tx) {
            (Some(Side::Overflow), Some(tx)) => tx.taken(),
            _ => &self.taken,
        }
    }

    async fn commit(mut self: Box<Self>) -> Result<(), ChannelError> {
        let ch = self.ch.clone();
        match self.side {
            Some(Side::Overflow) => {
                if let Some(tx) = self.overflow_tx.take() {
                    let k = tx.taken().len();
                    if let Err(e) = tx.commit().await {
                        let mut st = ch.lock();
                        st.push_front(-(k as i64));
                        ch.update_size(&st);
                        return Err(e);
                    }
                    ch.counters.event_take_success.add(k as u64);
                }
            }
            Some(Side::Memory) => {
                let k = self.taken.len();
                let freed = if ch.byte_slots == u64::MAX {
                    0
                } else {
                    slots(&self.taken, ch.config.avg_event_size)
                };
                self.taken.clear();
                {
                    let mut st = ch.lock();
                    st.memory_in_flight -= k;
                    st.used_slots = st.used_slots.saturating_sub(freed);
                    let cap = ch.config.memory_capacity as f64;
                    let free = if cap == 0.0 {
                        0.0
                    } else {
                        (cap - st.memory.len() as f64 - st.memory_in_flight as f64) / cap
                    };
                    if st.overflow_active
                        && free * 100.0 >= ch.config.overflow_deactivation_threshold as f64
                    {
                        st.overflow_active = false;
                        tracing::info!(channel = %ch.name, "Memory has room again; overflow deactivated.");
                    }
                }
                ch.counters.event_take_success.add(k as u64);
                ch.space.notify_waiters();
            }
            None => {}
        }
        let puts = std::mem::take(&mut self.puts);
        let n = puts.len();
        if n > 0 {
            if let Err(events) = ch.put_memory(puts).await {
                ch.put_overflow(events).await?;
            }
            ch.counters.put_committed(n as u64);
            ch.readable.notify_waiters();
        }
        Ok(())
    }

    fn rollback(self: Box<Self>) {}
}

impl Drop for SpillTransaction {
    fn drop(&mut self) {
        self.undo_takes();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path, extra: &[(&str, &str)]) -> Arc<dyn Channel> {
        let mut p = Props::new("a1.channels.c1.", "channel c1");
        p.insert("checkpointDir", dir.join("cp").display().to_string(), 1);
        p.insert("dataDirs", dir.join("data").display().to_string(), 2);
        p.insert("minimumRequiredSpace", "1048576", 3);
        for (i, (k, v)) in extra.iter().enumerate() {
            p.insert(*k, *v, 4 + i as u32);
        }
        let cx = ChannelBuildContext {
            name: "c1".into(),
            counters: Arc::default(),
        };
        match build(&p, &cx) {
            Ok((ch, _)) => ch,
            Err(e) => panic!("{e:?}"),
        }
    }

    async fn put(ch: &dyn Channel, range: std::ops::Range<usize>) -> Result<(), ChannelError> {
        let mut tx = ch.begin();
        tx.put(range.map(|i| Event::new(i.to_string())).collect())
            .await?;
        tx.commit().await
    }

    async fn take_all(ch: &dyn Channel) -> Vec<usize> {
        let mut out = Vec::new();
        loop {
            let mut tx = ch.begin();
            let n = tx.take(7).await.unwrap();
            if n == 0 {
                // The head may have switched sides within this transaction.
                if ch.is_empty() {
                    return out;
                }
            }
            out.extend(tx.taken().iter().map(|e| {
                std::str::from_utf8(&e.body)
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            }));
            tx.commit().await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spills_to_disk_when_memory_is_full_and_drains_in_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let ch = open(
            dir.path(),
            &[
                ("memoryCapacity", "10"),
                ("overflowTimeout", "0"),
                ("transactionCapacity", "10"),
            ],
        );
        put(&*ch, 0..8).await.unwrap(); // memory
        put(&*ch, 8..14).await.unwrap(); // does not fit: overflow
        put(&*ch, 14..16).await.unwrap(); // fits in memory, but overflow is active: overflow
        assert_eq!(ch.len(), 16);
        // A rolled-back take comes back first.
        let mut tx = ch.begin();
        assert_eq!(tx.take(5).await.unwrap(), 5);
        tx.rollback();
        assert_eq!(take_all(&*ch).await, (0..16).collect::<Vec<_>>());
        ch.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overflow_survives_a_restart_and_drains_first() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ch = open(
                dir.path(),
                &[
                    ("memoryCapacity", "5"),
                    ("overflowTimeout", "0"),
                    ("transactionCapacity", "5"),
                ],
            );
            put(&*ch, 0..5).await.unwrap(); // memory: lost at restart, as in Flume
            put(&*ch, 5..10).await.unwrap(); // overflow: durable
            ch.close().await.unwrap();
        }
        let ch = open(
            dir.path(),
            &[
                ("memoryCapacity", "5"),
                ("overflowTimeout", "0"),
                ("transactionCapacity", "5"),
            ],
        );
        assert_eq!(take_all(&*ch).await, (5..10).collect::<Vec<_>>());
        ch.close().await.unwrap();
    }

    #[tokio::test]
    async fn memory_only_mode_refuses_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let ch = open(
            dir.path(),
            &[
                ("memoryCapacity", "4"),
                ("overflowCapacity", "0"),
                ("overflowTimeout", "0"),
                ("transactionCapacity", "4"),
            ],
        );
        put(&*ch, 0..4).await.unwrap();
        assert!(matches!(
            put(&*ch, 4..5).await,
            Err(ChannelError::Full { .. })
        ));
        assert!(
            !dir.path().join("data").exists(),
            "no overflow storage without overflowCapacity"
        );
        assert_eq!(take_all(&*ch).await, (0..4).collect::<Vec<_>>());
    }

    #[test]
    fn config_errors_and_ignored_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Props::new("a1.channels.c1.", "channel c1");
        p.insert("memoryCapacity", "0", 1);
        p.insert("overflowCapacity", "0", 2);
        let cx = ChannelBuildContext {
            name: "c1".into(),
            counters: Arc::default(),
        };
        let e = build(&p, &cx).err().unwrap();
        assert!(
            e.iter()
                .any(|d| d.message == "memoryCapacity and overflowCapacity cannot both be 0"),
            "{e:?}"
        );
        let mut p = Props::new("a1.channels.c1.", "channel c1");
        p.insert("overflowCapacity", "0", 1);
        p.insert("capacity", "5", 2);
        p.insert(
            "checkpointDir",
            dir.path().join("cp").display().to_string(),
            3,
        );
        let (_, w) = build(&p, &cx).unwrap();
        assert!(
            w.iter().any(|d| d
                .message
                .contains("`capacity` is ignored by spillablememory")),
            "{w:?}"
        );
    }
}
