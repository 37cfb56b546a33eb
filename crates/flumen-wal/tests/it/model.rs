//! Model test: random sequences of puts, takes, commits, rollbacks, checkpoints, crashes (with a
//! torn trailing write) and restarts against an in-memory model.

use std::collections::BTreeMap;
use std::io::Write;

use flumen_wal::testing::crash;
use flumen_wal::{Seq, Wal};
use proptest::prelude::*;

use crate::util::{Dirs, open_cfg};

#[derive(Debug, Clone)]
enum Op {
    Put(usize),
    Take(usize),
    CommitTake,
    RollbackTake,
    Checkpoint,
    /// Crash, appending this many garbage bytes (a torn group) to the newest segment.
    Crash(Vec<u8>),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..5).prop_map(Op::Put),
        3 => (1usize..5).prop_map(Op::Take),
        2 => Just(Op::CommitTake),
        1 => Just(Op::RollbackTake),
        1 => Just(Op::Checkpoint),
        1 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::Crash),
        1 => Just(Op::Restart),
    ]
}

/// Live payload ids, by put order (= seq order).
type Model = BTreeMap<u64, ()>;

fn check(wal: &Wal, model: &Model) {
    let taken = wal.take(usize::MAX).unwrap();
    let got: Vec<u64> = taken
        .iter()
        .map(|t| std::str::from_utf8(&t.payload).unwrap().parse().unwrap())
        .collect();
    let want: Vec<u64> = model.keys().copied().collect();
    wal.rollback(&taken.iter().map(|t| t.seq).collect::<Vec<_>>());
    assert_eq!(got, want);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn wal_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let d = Dirs::new();
        let mut config = d.config();
        config.max_file_size = 300;
        let (mut wal, _) = open_cfg(config.clone());
        let mut model = Model::new();
        let mut next_id = 0u64;
        // The open take transaction: (seq, id).
        let mut txn: Vec<(Seq, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::Put(n) => {
                    let ids: Vec<u64> = (next_id..next_id + n as u64).collect();
                    next_id += n as u64;
                    wal.commit_blocking(ids.iter().map(|i| i.to_string().into_bytes()).collect(), vec![]).unwrap();
                    model.extend(ids.into_iter().map(|i| (i, ())));
                }
                Op::Take(k) => {
                    let t = wal.take(k).unwrap();
                    let in_txn: Vec<u64> = txn.iter().map(|(_, id)| *id).collect();
                    let want: Vec<u64> = model.keys().filter(|id| !in_txn.contains(id)).take(k).copied().collect();
                    let got: Vec<u64> = t.iter().map(|t| std::str::from_utf8(&t.payload).unwrap().parse().unwrap()).collect();
                    prop_assert_eq!(&got, &want);
                    txn.extend(t.iter().map(|t| t.seq).zip(got));
                }
                Op::CommitTake => {
                    wal.commit_blocking(vec![], txn.iter().map(|(s, _)| *s).collect()).unwrap();
                    for (_, id) in txn.drain(..) {
                        model.remove(&id);
                    }
                }
                Op::RollbackTake => {
                    wal.rollback(&txn.iter().map(|(s, _)| *s).collect::<Vec<_>>());
                    txn.clear();
                }
                Op::Checkpoint => wal.checkpoint().unwrap(),
                Op::Crash(garbage) => {
                    crash(&wal);
                    drop(wal);
                    let newest = d.segments().pop().unwrap();
                    std::fs::OpenOptions::new().append(true).open(newest).unwrap().write_all(&garbage).unwrap();
                    txn.clear();
                    wal = open_cfg(config.clone()).0;
                    check(&wal, &model);
                }
                Op::Restart => {
                    wal.close().unwrap();
                    drop(wal);
                    txn.clear();
                    let (w, report) = open_cfg(config.clone());
                    prop_assert!(report.problems.is_empty(), "{:?}", report.problems);
                    wal = w;
                    check(&wal, &model);
                }
            }
        }
        if !txn.is_empty() {
            wal.rollback(&txn.iter().map(|(s, _)| *s).collect::<Vec<_>>());
        }
        check(&wal, &model);
        crash(&wal);
        drop(wal);
        // A full replay without any checkpoint gives the same state (prefix deletion).
        let _ = std::fs::remove_file(d.ckpt().join("checkpoint"));
        let (wal, _) = open_cfg(config);
        check(&wal, &model);
    }
}
