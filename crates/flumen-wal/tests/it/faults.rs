//! Fault injection through `FaultyFs`: ENOSPC and short writes mid-group, fsync and truncation
//! failures, read errors, the free-space threshold.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use flumen_wal::testing::{Faults, FaultyFs, ManualClock, crash};
use flumen_wal::{Seq, Wal, WalError};

use crate::util::{Dirs, drain, payloads};

fn open_faulty(d: &Dirs) -> (Arc<Wal>, Arc<Faults>, Arc<ManualClock>) {
    let fs = FaultyFs::default();
    let faults = Arc::clone(&fs.faults);
    let clock = Arc::new(ManualClock::default());
    let (wal, _) = Wal::open_with(d.config(), Arc::new(fs), clock.clone()).unwrap();
    (wal, faults, clock)
}

#[test]
fn enospc_mid_group_fails_the_whole_group_and_the_log_stays_valid() {
    let d = Dirs::new();
    let (wal, faults, _) = open_faulty(&d);
    wal.commit_blocking(payloads("ok", 2), vec![]).unwrap();
    // A short write then ENOSPC, in the middle of a group of several requests.
    *faults.write_budget.lock().unwrap() = Some(10);
    let (tx, rx) = mpsc::channel();
    for i in 0..5 {
        let tx = tx.clone();
        wal.commit(
            payloads(&format!("g{i}"), 3),
            vec![],
            Box::new(move |r| tx.send(r).unwrap()),
        );
    }
    for _ in 0..5 {
        let r = rx.recv().unwrap();
        assert!(
            matches!(&r, Err(WalError::Io { source, .. }) if source.raw_os_error() == Some(28)),
            "{r:?}"
        );
    }
    assert_eq!(wal.len(), 2, "state untouched");
    // Space returns: commits work again, in the same segment.
    *faults.write_budget.lock().unwrap() = None;
    wal.commit_blocking(payloads("after", 1), vec![]).unwrap();
    crash(&wal);
    drop(wal);
    let (wal, report) = d.open();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let mut want = payloads("ok", 2);
    want.extend(payloads("after", 1));
    assert_eq!(drain(&wal, false), want);
}

#[test]
fn fsync_failure_fails_the_group_and_abandons_the_segment() {
    let d = Dirs::new();
    let (wal, faults, _) = open_faulty(&d);
    wal.commit_blocking(payloads("a", 1), vec![]).unwrap();
    faults.failing_syncs.store(1, Ordering::Release);
    let r = wal.commit_blocking(payloads("lost", 1), vec![]);
    assert!(
        matches!(
            &r,
            Err(WalError::Io {
                op: "fdatasync",
                ..
            })
        ),
        "{r:?}"
    );
    let segs_before = d.segments().len();
    wal.commit_blocking(payloads("b", 1), vec![]).unwrap();
    assert_eq!(
        d.segments().len(),
        segs_before + 1,
        "a new segment after the failed sync"
    );
    assert_eq!(wal.len(), 2);
    crash(&wal);
    drop(wal);
    let (wal, report) = d.open();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(
        drain(&wal, false),
        [payloads("a", 1), payloads("b", 1)].concat()
    );
}

#[test]
fn failed_truncation_abandons_the_segment_and_replay_reports_the_partial_record() {
    let d = Dirs::new();
    let (wal, faults, _) = open_faulty(&d);
    wal.commit_blocking(payloads("a", 1), vec![]).unwrap();
    faults.fail_set_len.store(true, Ordering::Release);
    *faults.write_budget.lock().unwrap() = Some(7);
    assert!(wal.commit_blocking(payloads("lost", 1), vec![]).is_err());
    faults.fail_set_len.store(false, Ordering::Release);
    *faults.write_budget.lock().unwrap() = None;
    wal.commit_blocking(payloads("b", 1), vec![]).unwrap();
    crash(&wal);
    drop(wal);
    let (wal, report) = d.open();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].skipped_bytes, 7);
    assert_eq!(
        drain(&wal, false),
        [payloads("a", 1), payloads("b", 1)].concat()
    );
}

#[test]
fn low_free_space_refuses_puts_keeps_takes_and_resumes() {
    let d = Dirs::new();
    let (wal, faults, clock) = open_faulty(&d);
    wal.commit_blocking(payloads("a", 3), vec![]).unwrap();
    *faults.free_space.lock().unwrap() = Some(1000);
    clock.advance(Duration::from_secs(1));
    let r = wal.commit_blocking(payloads("b", 1), vec![]);
    assert!(
        matches!(r, Err(WalError::Full { free: 1000, required, .. }) if required == flumen_wal::MIN_REQUIRED_SPACE_FLOOR),
        "{r:?}"
    );
    let t = wal.take(2).unwrap();
    wal.commit_blocking(vec![], t.iter().map(|t| t.seq).collect())
        .unwrap();
    assert_eq!(wal.len(), 1);
    *faults.free_space.lock().unwrap() = None;
    clock.advance(Duration::from_secs(1));
    wal.commit_blocking(payloads("b", 1), vec![]).unwrap();
    assert_eq!(drain(&wal, false), vec![b"a-2".to_vec(), b"b-0".to_vec()]);
}

#[test]
fn read_error_returns_entries_to_the_head() {
    let d = Dirs::new();
    let (wal, faults, _) = open_faulty(&d);
    wal.commit_blocking(payloads("a", 3), vec![]).unwrap();
    faults.failing_reads.store(1, Ordering::Release);
    let r = wal.take(2);
    assert!(
        matches!(&r, Err(WalError::Io { op: "read", path, .. }) if path.to_string_lossy().contains("log-")),
        "{r:?}"
    );
    assert_eq!((wal.len(), wal.in_flight()), (3, 0));
    assert_eq!(drain(&wal, false), payloads("a", 3));
}

#[test]
fn takes_of_unknown_or_impossible_seqs_are_harmless() {
    let d = Dirs::new();
    let (wal, _, _) = open_faulty(&d);
    // Takes naming seqs that never existed are harmless.
    wal.commit_blocking(vec![], vec![Seq(u64::MAX), Seq(12345)])
        .unwrap();
    wal.commit_blocking(payloads("a", 1), vec![]).unwrap();
    crash(&wal);
    drop(wal);
    let (wal, report) = d.open();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(drain(&wal, false), payloads("a", 1));
}
