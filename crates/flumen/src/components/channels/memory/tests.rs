//! Memory channel tests: Flume's transaction semantics, a model-based property test over
//! arbitrary interleavings, and a concurrent stress test.

use std::collections::VecDeque;
use std::sync::Arc;

use flumen_core::{Channel, ChannelCounters, ChannelError, Event, Transaction};
use proptest::prelude::*;

use super::{MemoryChannel, MemoryChannelConfig};

fn channel(capacity: usize, tx_cap: usize) -> MemoryChannel {
    let config = MemoryChannelConfig {
        capacity,
        transaction_capacity: tx_cap,
        keep_alive: 0,
        ..MemoryChannelConfig::default()
    };
    MemoryChannel::new("c1", config, Arc::new(ChannelCounters::default()))
}

fn ev(i: u64) -> Event {
    Event::new(i.to_string())
}

fn id(e: &Event) -> u64 {
    std::str::from_utf8(&e.body).unwrap().parse().unwrap()
}

async fn put(ch: &MemoryChannel, ids: std::ops::Range<u64>) -> Result<(), ChannelError> {
    let mut tx = ch.begin();
    tx.put(ids.map(ev).collect()).await?;
    tx.commit().await
}

#[tokio::test]
async fn put_is_invisible_until_commit_and_rollback_discards_it() {
    let ch = channel(10, 10);
    let mut tx = ch.begin();
    tx.put(vec![ev(1), ev(2)]).await.unwrap();
    assert_eq!(ch.len(), 0);
    tx.rollback();
    assert_eq!(ch.len(), 0);
    put(&ch, 3..5).await.unwrap();
    assert_eq!(ch.len(), 2);
    assert_eq!(ch.counters().event_put_attempt.get(), 4);
    assert_eq!(ch.counters().event_put_success.get(), 2);
}

#[tokio::test]
async fn rolled_back_take_comes_out_again_first_in_order() {
    let ch = channel(10, 10);
    put(&ch, 0..5).await.unwrap();
    let mut tx = ch.begin();
    assert_eq!(tx.take(3).await.unwrap(), 3);
    assert_eq!(tx.taken().iter().map(id).collect::<Vec<_>>(), [0, 1, 2]);
    drop(tx); // rollback by drop
    put(&ch, 5..6).await.unwrap();
    let mut tx = ch.begin();
    assert_eq!(tx.take(10).await.unwrap(), 6);
    assert_eq!(
        tx.taken().iter().map(id).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    tx.commit().await.unwrap();
    assert!(ch.is_empty());
    assert_eq!(ch.counters().event_take_success.get(), 6);
    assert_eq!(ch.counters().channel_size.get(), 0);
}

#[tokio::test]
async fn full_channel_refuses_after_keep_alive_and_taken_slots_stay_reserved() {
    let ch = channel(4, 4);
    put(&ch, 0..3).await.unwrap();
    let err = put(&ch, 3..5).await.unwrap_err();
    assert!(
        matches!(err, ChannelError::Full { capacity: 4, .. }),
        "{err}"
    );
    // Taking does not free room until the take commits.
    let mut tx = ch.begin();
    tx.take(3).await.unwrap();
    assert!(put(&ch, 3..5).await.is_err());
    tx.commit().await.unwrap();
    put(&ch, 3..5).await.unwrap();
    assert_eq!(ch.len(), 2);
}

#[tokio::test]
async fn transaction_capacity_is_enforced_for_puts_and_takes() {
    let ch = channel(10, 2);
    let mut tx = ch.begin();
    let err = tx.put(vec![ev(0), ev(1), ev(2)]).await.unwrap_err();
    assert!(matches!(
        err,
        ChannelError::TransactionCapacity { capacity: 2, .. }
    ));
    put(&ch, 0..2).await.unwrap();
    put(&ch, 2..4).await.unwrap();
    let mut tx = ch.begin();
    assert_eq!(tx.take(5).await.unwrap(), 2);
    assert!(matches!(
        tx.take(1).await,
        Err(ChannelError::TransactionCapacity { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn waiting_put_succeeds_when_a_take_commits_within_keep_alive() {
    let config = MemoryChannelConfig {
        capacity: 2,
        transaction_capacity: 2,
        keep_alive: 3,
        ..Default::default()
    };
    let ch = Arc::new(MemoryChannel::new("c1", config, Arc::default()));
    put(&ch, 0..2).await.unwrap();
    let producer = {
        let ch = ch.clone();
        tokio::spawn(async move { put(&ch, 2..3).await })
    };
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let mut tx = ch.begin();
    tx.take(1).await.unwrap();
    tx.commit().await.unwrap();
    producer.await.unwrap().unwrap();
    assert_eq!(ch.len(), 2);
}

#[tokio::test]
async fn byte_capacity_counts_bodies_in_100_byte_slots() {
    // 1000 bytes with 20% reserved = 800 usable = 8 slots.
    let config = MemoryChannelConfig {
        capacity: 100,
        transaction_capacity: 100,
        keep_alive: 0,
        byte_capacity: Some(1000),
        ..Default::default()
    };
    let ch = MemoryChannel::new("c1", config, Arc::default());
    let big = |n| Event::new(vec![b'x'; n]);
    let mut tx = ch.begin();
    tx.put(vec![big(250), big(250)]).await.unwrap(); // 3 + 3 slots
    tx.commit().await.unwrap();
    let mut tx = ch.begin();
    tx.put(vec![big(300)]).await.unwrap(); // 3 more: 9 > 8
    assert!(matches!(
        tx.commit().await,
        Err(ChannelError::ByteCapacity { .. })
    ));
    let mut tx = ch.begin();
    tx.put(vec![big(200)]).await.unwrap(); // 2 more: 8
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn readable_wakes_on_commit() {
    let ch = Arc::new(channel(10, 10));
    let waiter = {
        let ch = ch.clone();
        tokio::spawn(async move { ch.readable().await })
    };
    tokio::task::yield_now().await;
    put(&ch, 0..1).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
}

#[test]
fn config_validation_names_the_keys() {
    let mut props = flumen_config::Props::new("a1.channels.c1.", "channel c1");
    props.insert("capacity", "10", 3);
    props.insert("transactionCapacity", "20", 4);
    let err = super::build(
        &props,
        &crate::components::ChannelBuildContext {
            name: "c1".into(),
            counters: Arc::default(),
        },
    )
    .err()
    .unwrap();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].line, Some(4));
    assert!(
        err[0]
            .message
            .contains("transactionCapacity (20) must not exceed capacity (10)"),
        "{}",
        err[0]
    );
}

/// One step of the interleaving property test; `t` picks one of a few open transactions.
#[derive(Debug, Clone)]
enum Op {
    Put(usize, usize),
    Take(usize, usize),
    Commit(usize),
    Rollback(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 1..5usize).prop_map(|(t, n)| Op::Put(t, n)),
        (0..3usize, 1..5usize).prop_map(|(t, n)| Op::Take(t, n)),
        (0..3usize).prop_map(Op::Commit),
        (0..3usize).prop_map(Op::Rollback),
    ]
}

/// What the model predicts for a transaction slot.
#[derive(Default, Clone)]
struct ModelTx {
    puts: Vec<u64>,
    takes: Vec<u64>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any interleaving of put/take/commit/rollback over three open transactions behaves as a
    /// FIFO model: takes return exactly the model's events in order, a full commit fails
    /// exactly when the model says it does not fit, and at the end every committed put is
    /// either taken-and-committed or still queued, exactly once.
    #[test]
    fn interleavings_match_the_fifo_model(ops in prop::collection::vec(op(), 1..80), cap in 3usize..12) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async move {
            let tx_cap = cap.min(6);
            let ch = channel(cap, tx_cap);
            let mut txs: Vec<Option<Box<dyn Transaction>>> = vec![None, None, None];
            let mut model_txs = vec![ModelTx::default(); 3];
            let mut model: VecDeque<u64> = VecDeque::new();
            let mut in_flight = 0usize;
            let mut next_id = 0u64;
            let mut committed_puts: Vec<u64> = Vec::new();
            let mut committed_takes: Vec<u64> = Vec::new();
            for op in ops {
                match op {
                    Op::Put(t, n) => {
                        let tx = txs[t].get_or_insert_with(|| ch.begin());
                        let ids: Vec<u64> = (next_id..next_id + n as u64).collect();
                        let res = tx.put(ids.iter().copied().map(ev).collect()).await;
                        if model_txs[t].puts.len() + n > tx_cap {
                            prop_assert!(res.is_err());
                        } else {
                            prop_assert!(res.is_ok());
                            model_txs[t].puts.extend(&ids);
                            next_id += n as u64;
                        }
                    }
                    Op::Take(t, n) => {
                        let tx = txs[t].get_or_insert_with(|| ch.begin());
                        let room = tx_cap - model_txs[t].takes.len();
                        let res = tx.take(n).await;
                        if room == 0 {
                            prop_assert!(res.is_err());
                        } else {
                            let k = n.min(room).min(model.len());
                            prop_assert_eq!(res.unwrap(), k);
                            let expected: Vec<u64> = model.drain(..k).collect();
                            let got: Vec<u64> = tx.taken()[tx.taken().len() - k..].iter().map(id).collect();
                            prop_assert_eq!(&got, &expected);
                            model_txs[t].takes.extend(expected);
                            in_flight += k;
                        }
                    }
                    Op::Commit(t) => {
                        if let Some(tx) = txs[t].take() {
                            let m = std::mem::take(&mut model_txs[t]);
                            let fits = model.len() + in_flight - m.takes.len() + m.puts.len() <= cap;
                            let res = tx.commit().await;
                            if m.puts.is_empty() || fits {
                                prop_assert!(res.is_ok(), "{:?}", res);
                                in_flight -= m.takes.len();
                                model.extend(&m.puts);
                                committed_puts.extend(&m.puts);
                                committed_takes.extend(&m.takes);
                            } else {
                                prop_assert!(matches!(res, Err(ChannelError::Full { .. })), "{:?}", res);
                                in_flight -= m.takes.len();
                                for id in m.takes.into_iter().rev() {
                                    model.push_front(id);
                                }
                            }
                        }
                    }
                    Op::Rollback(t) => {
                        if let Some(tx) = txs[t].take() {
                            let m = std::mem::take(&mut model_txs[t]);
                            tx.rollback();
                            in_flight -= m.takes.len();
                            for id in m.takes.into_iter().rev() {
                                model.push_front(id);
                            }
                        }
                    }
                }
                prop_assert_eq!(ch.len(), model.len());
            }
            drop(txs);
            // Drain and check exactly-once accounting of everything committed.
            let mut rest = Vec::new();
            loop {
                let mut tx = ch.begin();
                let n = tx.take(tx_cap).await.unwrap();
                if n == 0 { break; }
                rest.extend(tx.taken().iter().map(id));
                tx.commit().await.unwrap();
            }
            let mut all: Vec<u64> = committed_takes.into_iter().chain(rest).collect();
            all.sort_unstable();
            committed_puts.sort_unstable();
            prop_assert_eq!(all, committed_puts);
            Ok(())
        })?;
    }
}

/// Several producers and one consumer on a multi-threaded runtime, the consumer rolling back
/// every third take: every event arrives exactly once, and each producer's events in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_with_rollbacks_lose_and_duplicate_nothing() {
    const PRODUCERS: u64 = 4;
    const PER: u64 = 5_000;
    let config = MemoryChannelConfig {
        capacity: 500,
        transaction_capacity: 50,
        keep_alive: 30,
        ..Default::default()
    };
    let ch = Arc::new(MemoryChannel::new("c1", config, Arc::default()));
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let ch = ch.clone();
        producers.push(tokio::spawn(async move {
            let mut i = 0;
            while i < PER {
                let n = (1 + (i % 37)).min(PER - i);
                let mut tx = ch.begin();
                tx.put((i..i + n).map(|k| ev(p * 1_000_000 + k)).collect())
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                i += n;
            }
        }));
    }
    let mut last = vec![None::<u64>; PRODUCERS as usize];
    let mut received = 0u64;
    let mut round = 0u64;
    while received < PRODUCERS * PER {
        ch.readable().await;
        let mut tx = ch.begin();
        let n = tx.take(50).await.unwrap();
        round += 1;
        if n == 0 {
            continue;
        }
        if round.is_multiple_of(3) {
            tx.rollback();
            continue;
        }
        for e in tx.taken() {
            let v = id(e);
            let (p, k) = ((v / 1_000_000) as usize, v % 1_000_000);
            assert_eq!(
                last[p].map_or(0, |l| l + 1),
                k,
                "producer {p} out of order or duplicated"
            );
            last[p] = Some(k);
        }
        received += n as u64;
        tx.commit().await.unwrap();
    }
    for p in producers {
        p.await.unwrap();
    }
    assert!(ch.is_empty());
    assert_eq!(ch.counters().event_put_success.get(), PRODUCERS * PER);
    assert_eq!(ch.counters().event_take_success.get(), PRODUCERS * PER);
}

#[tokio::test]
async fn put_batch_hands_refused_events_back_unchanged() {
    let ch = channel(3, 3);
    ch.put_batch((0..2).map(ev).collect()).await.unwrap();
    let (err, back) = ch.put_batch((2..4).map(ev).collect()).await.unwrap_err();
    assert!(matches!(err, ChannelError::Full { .. }), "{err}");
    assert_eq!(back.iter().map(id).collect::<Vec<_>>(), [2, 3]);
    let (err, back) = ch.put_batch((0..5).map(ev).collect()).await.unwrap_err();
    assert!(
        matches!(err, ChannelError::TransactionCapacity { .. }),
        "{err}"
    );
    assert_eq!(back.len(), 5);
    assert_eq!(ch.len(), 2);
}

/// A source that retries a refused batch runs its interceptors once, and nothing is lost or
/// duplicated when the channel frees up.
#[tokio::test(start_paused = true)]
async fn deliver_retrying_intercepts_once_and_retries_the_same_events() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use flumen_core::{
        ChannelProcessor, ChannelSelector, Interceptor, InterceptorChain, SourceContext,
    };

    struct Count(Arc<AtomicUsize>);
    impl Interceptor for Count {
        fn intercept(&self, e: Event) -> Option<Event> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Some(e)
        }
    }
    let seen = Arc::new(AtomicUsize::new(0));
    let ch: Arc<MemoryChannel> = Arc::new(channel(2, 2));
    ch.put_batch((0..2).map(ev).collect()).await.unwrap();
    let processor = ChannelProcessor::new(
        vec![ch.clone() as Arc<dyn Channel>],
        ChannelSelector::replicating_all(1),
        InterceptorChain::new(vec![Box::new(Count(seen.clone()))]),
    );
    let cx = SourceContext {
        name: "r1".into(),
        processor,
        shutdown: flumen_core::CancellationToken::new(),
        counters: Arc::default(),
    };
    let source = {
        let cx = cx.clone();
        tokio::spawn(async move { cx.deliver_retrying((2..4).map(ev).collect()).await })
    };
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let mut tx = ch.begin();
    tx.take(2).await.unwrap();
    tx.commit().await.unwrap();
    source.await.unwrap().unwrap();
    assert_eq!(
        seen.load(Ordering::Relaxed),
        2,
        "interceptors ran once per event"
    );
    let mut tx = ch.begin();
    tx.take(2).await.unwrap();
    assert_eq!(tx.taken().iter().map(id).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(cx.counters.event_received.get(), 2);
    assert_eq!(cx.counters.event_accepted.get(), 2);
    assert!(cx.counters.channel_write_fail.get() >= 1);
}
