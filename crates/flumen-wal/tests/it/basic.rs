//! Put, take, commit, rollback, restart, lock, checkpoint, roll and deletion.

use std::sync::Arc;

use flumen_wal::{CheckpointStatus, Seq, WalError};

use crate::util::{Dirs, drain, open_cfg, payloads};

#[test]
fn put_take_commit_rollback_and_restart() {
    let d = Dirs::new();
    let (wal, report) = d.open();
    assert_eq!(report.checkpoint, CheckpointStatus::Missing);
    assert_eq!(report.recovered_entries, 0);
    wal.commit_blocking(payloads("a", 3), vec![]).unwrap();
    wal.commit_blocking(payloads("b", 2), vec![]).unwrap();
    assert_eq!(wal.len(), 5);
    let t = wal.take(2).unwrap();
    assert_eq!(t[0].payload, b"a-0");
    assert_eq!(t[1].payload, b"a-1");
    assert!(t[0].seq < t[1].seq);
    assert_eq!((wal.len(), wal.in_flight()), (3, 2));
    wal.rollback(&[t[1].seq]);
    wal.commit_blocking(vec![], vec![t[0].seq]).unwrap();
    assert_eq!((wal.len(), wal.in_flight()), (4, 0));
    // An uncommitted take comes back after a restart, in order.
    let t2 = wal.take(1).unwrap();
    assert_eq!(t2[0].payload, b"a-1");
    flumen_wal::testing::crash(&wal);
    drop(wal);
    let (wal, report) = d.open();
    assert_eq!(report.recovered_entries, 4);
    assert_eq!(report.replayed_records, 3);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(
        drain(&wal, true),
        vec![
            b"a-1".to_vec(),
            b"a-2".to_vec(),
            b"b-0".to_vec(),
            b"b-1".to_vec()
        ]
    );
    // New seqs continue after the old ones.
    wal.commit_blocking(payloads("c", 1), vec![]).unwrap();
    let t = wal.take(1).unwrap();
    assert!(t[0].seq > t2[0].seq);
}

#[test]
fn empty_commit_and_closed() {
    let d = Dirs::new();
    let (wal, _) = d.open();
    wal.commit_blocking(vec![], vec![]).unwrap();
    wal.close().unwrap();
    wal.close().unwrap();
    assert!(matches!(
        wal.commit_blocking(payloads("x", 1), vec![]),
        Err(WalError::Closed)
    ));
    assert!(matches!(wal.take(1), Err(WalError::Closed)));
    assert!(matches!(wal.checkpoint(), Err(WalError::Closed)));
}

#[test]
fn second_open_is_locked_until_close() {
    let d = Dirs::new();
    let (wal, _) = d.open();
    let err = flumen_wal::Wal::open(d.config()).unwrap_err();
    assert!(
        matches!(&err, WalError::Locked { path } if path.ends_with("in_use.lock")),
        "{err}"
    );
    assert!(err.to_string().contains("another agent"));
    wal.close().unwrap();
    let (_again, _) = d.open();
}

#[test]
fn checkpoint_on_close_skips_replay() {
    let d = Dirs::new();
    let (wal, _) = d.open();
    for i in 0..10 {
        wal.commit_blocking(payloads(&format!("p{i}"), 10), vec![])
            .unwrap();
    }
    let t = wal.take(15).unwrap();
    wal.commit_blocking(vec![], t[..10].iter().map(|t| t.seq).collect())
        .unwrap();
    wal.close().unwrap();
    drop(wal);
    let (wal, report) = d.open();
    assert_eq!(report.checkpoint, CheckpointStatus::Loaded);
    assert_eq!(report.replayed_records, 0);
    // 100 put, 10 committed takes, 5 in flight at close come back.
    assert_eq!(report.recovered_entries, 90);
    let all = drain(&wal, true);
    assert_eq!(all[0], b"p1-0");
    assert_eq!(all.len(), 90);
}

#[test]
fn concurrent_commits_share_fsyncs() {
    let d = Dirs::new();
    let fs = flumen_wal::testing::FaultyFs::default();
    let faults = Arc::clone(&fs.faults);
    let (wal, _) = flumen_wal::Wal::open_with(
        d.config(),
        Arc::new(fs),
        Arc::new(flumen_wal::testing::ManualClock::default()),
    )
    .unwrap();
    let before = faults.syncs.load(std::sync::atomic::Ordering::Acquire);
    let threads = 8;
    let per_thread = 200;
    std::thread::scope(|s| {
        for t in 0..threads {
            let wal = &wal;
            s.spawn(move || {
                for i in 0..per_thread {
                    wal.commit_blocking(vec![format!("{t}-{i}").into_bytes()], vec![])
                        .unwrap();
                }
            });
        }
    });
    let syncs = faults.syncs.load(std::sync::atomic::Ordering::Acquire) - before;
    let commits = (threads * per_thread) as u64;
    assert_eq!(wal.len() as u64, commits);
    assert!(syncs < commits, "{syncs} syncs for {commits} commits");
    // Per-thread order is commit order.
    let all = drain(&wal, false);
    for t in 0..threads {
        let mine: Vec<&Vec<u8>> = all
            .iter()
            .filter(|p| p.starts_with(format!("{t}-").as_bytes()))
            .collect();
        let want: Vec<Vec<u8>> = (0..per_thread)
            .map(|i| format!("{t}-{i}").into_bytes())
            .collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>());
    }
}

#[test]
fn segments_roll_and_are_deleted_after_takes_and_checkpoint() {
    let d = Dirs::new();
    let mut c = d.config();
    c.max_file_size = 4096;
    let (wal, _) = open_cfg(c.clone());
    for i in 0..200 {
        wal.commit_blocking(vec![vec![i as u8; 100]], vec![])
            .unwrap();
    }
    let segs = d.segments();
    assert!(segs.len() > 5, "{} segments", segs.len());
    for s in &segs {
        assert!(std::fs::metadata(s).unwrap().len() <= 4096);
    }
    let full = wal.disk_usage();
    // A record larger than max_file_size gets its own segment.
    wal.commit_blocking(vec![vec![7; 10_000]], vec![]).unwrap();
    assert!(
        d.segments()
            .iter()
            .any(|s| std::fs::metadata(s).unwrap().len() > 10_000)
    );
    // Take half, checkpoint: the prefix holding only taken entries goes.
    let t = wal.take(100).unwrap();
    wal.commit_blocking(vec![], t.iter().map(|t| t.seq).collect())
        .unwrap();
    wal.checkpoint().unwrap();
    let half = wal.disk_usage();
    assert!(half < full * 3 / 4 + 10_100, "{half} vs {full}");
    drain(&wal, true);
    wal.checkpoint().unwrap();
    assert!(wal.disk_usage() <= 4096, "disk use {}", wal.disk_usage());
    assert!(d.segments().len() <= 2);
    wal.close().unwrap();
    drop(wal);
    // Full replay (no checkpoint) over what is left is still exact.
    std::fs::remove_file(d.ckpt().join("checkpoint")).unwrap();
    let (wal, report) = open_cfg(c);
    assert_eq!(report.recovered_entries, 0, "{report:?}");
    assert!(report.problems.is_empty());
    assert_eq!(wal.len(), 0);
}

#[test]
fn rollback_of_unknown_seq_is_ignored() {
    let d = Dirs::new();
    let (wal, _) = d.open();
    wal.rollback(&[Seq(42)]);
    wal.commit_blocking(payloads("a", 2), vec![]).unwrap();
    let t = wal.take(2).unwrap();
    wal.rollback(&[t[1].seq]);
    wal.rollback(&[t[0].seq]);
    assert_eq!(drain(&wal, true), payloads("a", 2));
}
