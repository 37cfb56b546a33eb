//! File channel tests: Flume's transaction semantics on real files, durability across a
//! reopen, capacity, and configuration errors.

use std::sync::Arc;

use flumen_config::Props;
use flumen_core::{Channel, ChannelError, Event};

use super::{DESCRIPTOR, FileChannelConfig};
use crate::components::ChannelBuildContext;

fn props(dir: &std::path::Path, extra: &[(&str, &str)]) -> Props {
    let mut p = Props::new("a1.channels.c1.", "channel c1");
    p.insert(
        "checkpointDir",
        dir.join("checkpoint").display().to_string(),
        1,
    );
    p.insert("dataDirs", dir.join("data").display().to_string(), 2);
    p.insert("minimumRequiredSpace", "1048576", 3);
    for (i, (k, v)) in extra.iter().enumerate() {
        p.insert(*k, *v, 4 + i as u32);
    }
    p
}

fn open(dir: &std::path::Path, extra: &[(&str, &str)]) -> Arc<dyn Channel> {
    let cx = ChannelBuildContext {
        name: "c1".into(),
        counters: Arc::default(),
    };
    match (DESCRIPTOR.build)(&props(dir, extra), &cx) {
        Ok((ch, _)) => ch,
        Err(e) => panic!("{e:?}"),
    }
}

fn ev(i: usize) -> Event {
    Event::with_headers(
        [("n", i.to_string())].into_iter().collect(),
        format!("event {i}"),
    )
}

async fn put(ch: &dyn Channel, range: std::ops::Range<usize>) -> Result<(), ChannelError> {
    let mut tx = ch.begin();
    tx.put(range.map(ev).collect()).await?;
    tx.commit().await
}

async fn take_all(ch: &dyn Channel) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let mut tx = ch.begin();
        let n = tx.take(100).await.unwrap();
        if n == 0 {
            return out;
        }
        out.extend(
            tx.taken()
                .iter()
                .map(|e| String::from_utf8(e.body.to_vec()).unwrap()),
        );
        tx.commit().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_survive_a_reopen_and_uncommitted_takes_come_back_first() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ch = open(dir.path(), &[]);
        put(&*ch, 0..10).await.unwrap();
        let mut tx = ch.begin();
        assert_eq!(tx.take(3).await.unwrap(), 3);
        tx.commit().await.unwrap(); // 0..3 gone for good
        let mut tx = ch.begin();
        assert_eq!(tx.take(2).await.unwrap(), 2);
        // 3 and 4 taken but not committed when the channel goes away.
        std::mem::forget(tx);
        ch.close().await.unwrap();
    }
    let ch = open(dir.path(), &[]);
    let got = take_all(&*ch).await;
    let expected: Vec<String> = (3..10).map(|i| format!("event {i}")).collect();
    assert_eq!(got, expected);
    ch.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_returns_events_to_the_head_in_order_with_their_headers() {
    let dir = tempfile::tempdir().unwrap();
    let ch = open(dir.path(), &[]);
    put(&*ch, 0..5).await.unwrap();
    let mut tx = ch.begin();
    tx.take(3).await.unwrap();
    assert_eq!(tx.taken()[1].headers.get("n"), Some("1"));
    tx.rollback();
    assert_eq!(
        take_all(&*ch).await,
        (0..5).map(|i| format!("event {i}")).collect::<Vec<_>>()
    );
    assert_eq!(ch.counters().event_put_success.get(), 5);
    assert_eq!(ch.counters().event_take_success.get(), 5);
    ch.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_channel_refuses_puts_after_keep_alive() {
    let dir = tempfile::tempdir().unwrap();
    let ch = open(
        dir.path(),
        &[
            ("capacity", "10"),
            ("transactionCapacity", "10"),
            ("keep-alive", "0"),
        ],
    );
    put(&*ch, 0..8).await.unwrap();
    assert!(matches!(
        put(&*ch, 8..11).await,
        Err(ChannelError::Full { capacity: 10, .. })
    ));
    let mut tx = ch.begin();
    tx.take(5).await.unwrap();
    // Taken but not committed: still counted.
    assert!(put(&*ch, 8..11).await.is_err());
    tx.commit().await.unwrap();
    put(&*ch, 8..11).await.unwrap();
    let mut big = ch.begin();
    assert!(matches!(
        big.put((0..11).map(ev).collect()).await,
        Err(ChannelError::TransactionCapacity { .. })
    ));
    ch.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_all_land_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let ch = open(dir.path(), &[]);
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..25usize {
                let start = w * 10_000 + b * 40;
                put(&*ch, start..start + 40).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut got = take_all(&*ch).await;
    got.sort();
    let mut expected: Vec<String> = (0..4)
        .flat_map(|w| (0..1000).map(move |i| format!("event {}", w * 10_000 + i)))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
    ch.close().await.unwrap();
}

#[test]
fn configuration_errors_name_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let cx = ChannelBuildContext {
        name: "c1".into(),
        counters: Arc::default(),
    };
    let errs = |extra: &[(&str, &str)]| -> Vec<String> {
        match (DESCRIPTOR.build)(&props(dir.path(), extra), &cx) {
            Ok(_) => Vec::new(),
            Err(d) => d
                .into_iter()
                .filter(|d| d.is_error())
                .map(|d| d.message)
                .collect(),
        }
    };
    assert_eq!(
        errs(&[("transactionCapacity", "20"), ("capacity", "10")]),
        ["transactionCapacity (20) must not exceed capacity (10)"]
    );
    assert_eq!(
        errs(&[("useDualCheckpoints", "true")]),
        ["useDualCheckpoints needs backupCheckpointDir"]
    );
    assert_eq!(
        errs(&[("encryption.activeKey", "key-0")]),
        ["file channel encryption is not supported by flumen"]
    );
    assert_eq!(
        errs(&[("maxFileSize", "1000")]),
        ["maxFileSize must be at least 1048576 bytes"]
    );
}

#[test]
fn defaults_are_flumes() {
    let c = FileChannelConfig::default();
    assert_eq!(
        (c.capacity, c.transaction_capacity, c.keep_alive),
        (1_000_000, 10_000, 3)
    );
    assert_eq!(
        (
            c.checkpoint_interval,
            c.max_file_size,
            c.minimum_required_space
        ),
        (30_000, 2_146_435_071, 524_288_000)
    );
    assert!(c.checkpoint_on_close && c.fsync_per_transaction);
}
