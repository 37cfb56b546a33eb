//! Crash-style and corruption tests: torn tails at every byte, flipped bytes, damaged
//! checkpoints and headers, and "open never panics on arbitrary bytes".

use std::path::Path;

use flumen_wal::testing::crash;
use flumen_wal::{CheckpointStatus, WalError};
use proptest::prelude::*;

use crate::util::{Dirs, drain, open_cfg, payloads, segments_in};

/// Copies `data` (segments) and `ckpt` dirs of `from` into a fresh `Dirs`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "in_use.lock" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn torn_tail_at_every_byte_recovers_exactly_the_committed_prefix() {
    let d = Dirs::new();
    let (wal, _) = d.open();
    let seg = d.segments()[0].clone();
    let size = || std::fs::metadata(&seg).unwrap().len();
    // Each step: (end offset of its records, expected queue after it).
    let mut steps: Vec<(u64, Vec<Vec<u8>>)> = vec![(size(), vec![])];
    wal.commit_blocking(payloads("a", 3), vec![]).unwrap();
    steps.push((size(), payloads("a", 3)));
    wal.commit_blocking(payloads("b", 2), vec![]).unwrap();
    let mut all = payloads("a", 3);
    all.extend(payloads("b", 2));
    steps.push((size(), all.clone()));
    let t = wal.take(1).unwrap();
    wal.commit_blocking(vec![], vec![t[0].seq]).unwrap();
    all.remove(0);
    steps.push((size(), all.clone()));
    wal.commit_blocking(vec![b"c-0".to_vec(), vec![0xAB; 300]], vec![])
        .unwrap();
    all.extend([b"c-0".to_vec(), vec![0xAB; 300]]);
    steps.push((size(), all.clone()));
    crash(&wal);
    drop(wal);
    let bytes = std::fs::read(&seg).unwrap();
    let name = seg.file_name().unwrap().to_owned();
    for cut in 0..=bytes.len() as u64 {
        let d2 = Dirs::new();
        std::fs::create_dir_all(d2.data()).unwrap();
        std::fs::write(d2.data().join(&name), &bytes[..cut as usize]).unwrap();
        let (wal, report) = d2.open();
        let (end, want) = steps
            .iter()
            .rev()
            .find(|(end, _)| *end <= cut)
            .cloned()
            .unwrap_or((0, vec![]));
        assert_eq!(drain(&wal, false), want, "cut at {cut}");
        if cut >= 16 && cut != end {
            assert_eq!(
                report.problems.len(),
                1,
                "cut at {cut}: {:?}",
                report.problems
            );
            let p = &report.problems[0];
            assert_eq!(
                (p.offset, p.skipped_bytes),
                (end, cut - end),
                "cut at {cut}"
            );
            assert!(p.reason.contains("torn write"), "{}", p.reason);
            assert_eq!(std::fs::metadata(d2.data().join(&name)).unwrap().len(), end);
        } else if cut >= 16 {
            assert!(
                report.problems.is_empty(),
                "cut at {cut}: {:?}",
                report.problems
            );
        }
        crash(&wal);
    }
}

#[test]
fn flipped_byte_in_a_middle_segment_is_reported_and_everything_else_recovered() {
    let d = Dirs::new();
    let mut c = d.config();
    c.max_file_size = 1024;
    let (wal, _) = open_cfg(c.clone());
    let all: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("payload-{i:04}-xxxxxxxxxxxxxxxxxxxx").into_bytes())
        .collect();
    for p in &all {
        wal.commit_blocking(vec![p.clone()], vec![]).unwrap();
    }
    crash(&wal);
    drop(wal);
    let segs = d.segments();
    assert!(segs.len() >= 4);
    let victim = &segs[segs.len() / 2];
    let mut bytes = std::fs::read(victim).unwrap();
    // Damage the payload of the second record of the victim segment.
    let find = |from: usize| {
        from + bytes[from..]
            .windows(8)
            .position(|w| w == b"payload-")
            .unwrap()
    };
    let second = find(find(0) + 1);
    let damaged: Vec<u8> = bytes[second..second + all[0].len()].to_vec();
    bytes[second + 3] ^= 0x01;
    std::fs::write(victim, &bytes).unwrap();
    let (wal, report) = open_cfg(c);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    assert_eq!(&p.file, victim);
    assert_eq!(p.offset, second as u64 - 29, "offset of the damaged record");
    assert!(p.reason.contains("checksum"), "{}", p.reason);
    assert_eq!(p.skipped_bytes, 29 + all[0].len() as u64);
    let want: Vec<Vec<u8>> = all.iter().filter(|p| **p != damaged).cloned().collect();
    assert_eq!(want.len(), 99);
    assert_eq!(drain(&wal, false), want);
}

#[test]
fn garbage_between_records_is_skipped_by_resync() {
    let d = Dirs::new();
    let (wal, _) = d.open();
    wal.commit_blocking(payloads("a", 2), vec![]).unwrap();
    crash(&wal);
    drop(wal);
    // Insert garbage after the first segment's first record, then a valid copy of it follows.
    let seg = d.segments()[0].clone();
    let bytes = std::fs::read(&seg).unwrap();
    let mut damaged = bytes[..16].to_vec();
    damaged.extend_from_slice(&[0xFF; 37]);
    damaged.extend_from_slice(&bytes[16..]);
    std::fs::write(&seg, &damaged).unwrap();
    let (wal, report) = d.open();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(
        (report.problems[0].offset, report.problems[0].skipped_bytes),
        (16, 37)
    );
    assert_eq!(drain(&wal, false), payloads("a", 2));
}

#[test]
fn missing_or_damaged_checkpoint_falls_back_to_full_replay_and_backup() {
    let d = Dirs::new();
    let mut c = d.config();
    c.backup_checkpoint_dir = Some(d.tmp.path().join("backup"));
    let (wal, _) = open_cfg(c.clone());
    for i in 0..5 {
        wal.commit_blocking(payloads(&format!("p{i}"), 4), vec![])
            .unwrap();
    }
    let t = wal.take(6).unwrap();
    wal.commit_blocking(vec![], t.iter().map(|t| t.seq).collect())
        .unwrap();
    wal.checkpoint().unwrap();
    wal.commit_blocking(payloads("tail", 2), vec![]).unwrap();
    crash(&wal);
    drop(wal);
    let saved = d.tmp.path().join("saved");
    copy_dir(&d.ckpt(), &saved.join("ckpt"));
    let (wal, report) = open_cfg(c.clone());
    assert_eq!(report.checkpoint, CheckpointStatus::Loaded);
    assert_eq!(report.replayed_records, 1);
    let reference = drain(&wal, false);
    assert_eq!(reference.len(), 16);
    crash(&wal);
    drop(wal);

    // Primary damaged: the backup is used, same state.
    let primary = d.ckpt().join("checkpoint");
    copy_dir(&saved.join("ckpt"), &d.ckpt());
    let mut b = std::fs::read(&primary).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x10;
    std::fs::write(&primary, &b).unwrap();
    let (wal, report) = open_cfg(c.clone());
    assert_eq!(report.checkpoint, CheckpointStatus::Backup);
    assert!(report.problems.iter().any(|p| p.file == primary));
    assert_eq!(drain(&wal, false), reference);
    crash(&wal);
    drop(wal);

    // Both damaged / deleted: full replay, same state.
    std::fs::write(&primary, &b).unwrap();
    std::fs::remove_file(d.tmp.path().join("backup/checkpoint")).unwrap();
    let (wal, report) = open_cfg(c.clone());
    assert!(
        matches!(report.checkpoint, CheckpointStatus::Damaged(_)),
        "{:?}",
        report.checkpoint
    );
    assert_eq!(drain(&wal, false), reference);
    crash(&wal);
    drop(wal);
    std::fs::remove_file(&primary).unwrap();
    let (wal, report) = open_cfg(c);
    assert_eq!(report.checkpoint, CheckpointStatus::Missing);
    assert_eq!(drain(&wal, false), reference);
}

#[test]
fn bad_segment_header_is_skipped_and_other_versions_refused() {
    let d = Dirs::new();
    let mut c = d.config();
    c.max_file_size = 200;
    let (wal, _) = open_cfg(c.clone());
    for i in 0..6 {
        wal.commit_blocking(payloads(&format!("p{i}"), 3), vec![])
            .unwrap();
    }
    let before = drain(&wal, false);
    crash(&wal);
    drop(wal);
    let segs = d.segments();
    let victim = &segs[1];
    let mut b = std::fs::read(victim).unwrap();
    let lost = {
        // Which payloads lived in the victim segment.
        let text = String::from_utf8_lossy(&b).into_owned();
        before
            .iter()
            .filter(|p| text.contains(std::str::from_utf8(p).unwrap()))
            .count()
    };
    assert!(lost > 0);
    b[0] = b'X';
    std::fs::write(victim, &b).unwrap();
    let (wal, report) = open_cfg(c.clone());
    assert!(
        report
            .problems
            .iter()
            .any(|p| &p.file == victim && p.reason.contains("magic"))
    );
    assert_eq!(drain(&wal, false).len(), before.len() - lost);
    crash(&wal);
    drop(wal);
    b[0] = b'F';
    b[7] = b'7';
    std::fs::write(victim, &b).unwrap();
    let err = flumen_wal::Wal::open(c).unwrap_err();
    assert!(
        matches!(&err, WalError::UnsupportedVersion { file, .. } if file == victim),
        "{err}"
    );
}

#[test]
fn empty_newest_segment_from_a_crashed_roll_is_removed() {
    let d = Dirs::new();
    let (wal, _) = d.open();
    wal.commit_blocking(payloads("a", 1), vec![]).unwrap();
    crash(&wal);
    drop(wal);
    let stray = d.data().join("log-00000000000000000099.wal");
    std::fs::write(&stray, b"FLUMW").unwrap();
    let (wal, report) = d.open();
    assert_eq!(report.problems.len(), 1);
    assert!(!stray.exists());
    assert_eq!(drain(&wal, false), payloads("a", 1));
}

/// Opens a WAL whose only segment holds `seg` and whose checkpoint (if any) holds `ckpt`.
fn open_arbitrary(seg: &[u8], ckpt: Option<&[u8]>) {
    let d = Dirs::new();
    std::fs::create_dir_all(d.data()).unwrap();
    std::fs::create_dir_all(d.ckpt()).unwrap();
    std::fs::write(d.data().join("log-00000000000000000001.wal"), seg).unwrap();
    if let Some(c) = ckpt {
        std::fs::write(d.ckpt().join("checkpoint"), c).unwrap();
    }
    if let Ok((wal, _report)) = flumen_wal::Wal::open(d.config()) {
        // Whatever was recovered can be read back.
        let _ = wal.take(usize::MAX);
        crash(&wal);
    }
}

/// A valid segment prefix, so the fuzzer gets past the header quickly.
fn valid_segment() -> Vec<u8> {
    let d = Dirs::new();
    let (wal, _) = d.open();
    wal.commit_blocking(payloads("x", 3), vec![]).unwrap();
    let t = wal.take(1).unwrap();
    wal.commit_blocking(vec![], vec![t[0].seq]).unwrap();
    crash(&wal);
    std::fs::read(&segments_in(&d.data())[0]).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Open never panics on arbitrary segment bytes.
    #[test]
    fn open_never_panics_on_arbitrary_segment_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut seg = b"FLUMWAL1\x01\0\0\0\0\0\0\0".to_vec();
        seg.extend_from_slice(&bytes);
        open_arbitrary(&seg, None);
        open_arbitrary(&bytes, None);
    }

    /// Open never panics on a mutated valid segment plus an arbitrary checkpoint.
    #[test]
    fn open_never_panics_on_mutated_segments_and_checkpoints(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        ckpt in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
    ) {
        let mut seg = valid_segment();
        for (i, v) in flips {
            let at = i.index(seg.len());
            seg[at] = v;
        }
        seg.truncate(cut.index(seg.len() + 1));
        let ckpt = ckpt.map(|mut c| {
            if c.len() >= 8 { c[..8].copy_from_slice(b"FLUMCKP1"); }
            c
        });
        open_arbitrary(&seg, ckpt.as_deref());
    }
}
