//! Disk-space behaviour: the free-space estimate between statvfs readings (bug A), checkpoints
//! on a full disk (bug B), payload checksums checked by `take` (bug C) and the take reserve
//! (bug D).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use flumen_wal::testing::{Faults, FaultyFs, ManualClock, crash};
use flumen_wal::{CheckpointStatus, Seq, Wal, WalConfig, WalError};

use crate::util::{Dirs, drain, open_cfg, payloads};

/// Opens `config` on a `FaultyFs` with a clock that never moves (every free-space reading stays
/// "fresh" for the whole test).
fn open_faulty(config: WalConfig) -> (Arc<Wal>, Arc<Faults>) {
    let fs = FaultyFs::default();
    let faults = Arc::clone(&fs.faults);
    let (wal, _) = Wal::open_with(config, Arc::new(fs), Arc::new(ManualClock::default())).unwrap();
    (wal, faults)
}

fn take_commit(wal: &Wal, n: usize) -> Vec<Vec<u8>> {
    let t = wal.take(n).unwrap();
    wal.commit_blocking(vec![], t.iter().map(|t| t.seq).collect())
        .unwrap();
    t.into_iter().map(|t| t.payload).collect()
}

// ---- A: the free-space estimate ------------------------------------------------------------

/// Fast writes within one cache window: the cached reading is reduced by what was written, so
/// puts are refused with `Full` while `minimum_required_space` is still free, not when the disk
/// runs out.
#[test]
fn bytes_written_since_the_reading_count_against_the_cached_free_space() {
    const MIB: u64 = 1 << 20;
    let d = Dirs::new();
    let mut c = d.config();
    c.minimum_required_space = 4 * MIB;
    let (wal, faults) = open_faulty(c);
    *faults.disk.lock().unwrap() = Some(12 * MIB);
    let mut accepted = 0;
    let err = loop {
        match wal.commit_blocking(vec![vec![b'x'; 256 << 10]], vec![]) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "never refused");
    };
    let free = faults.disk.lock().unwrap().unwrap();
    assert!(
        matches!(err, WalError::Full { required, .. } if required == 4 * MIB),
        "refused by {err:?} with {free} bytes free"
    );
    // Checked before each group: at most one group (256 KiB) and a reserve top-up past the limit.
    assert!(free >= 3 * MIB, "only {free} bytes left free");
    assert!(
        accepted >= 25,
        "refused too early: {accepted} accepted, {free} free"
    );
    // The clock never moved: without the estimate there would have been a single reading.
    assert!(faults.free_space_reads.load(Ordering::Acquire) > 1);
    // Space returns: puts resume.
    *faults.disk.lock().unwrap() = Some(100 * MIB);
    wal.commit_blocking(payloads("after", 1), vec![]).unwrap();
    assert_eq!(wal.len(), accepted + 1);
}

// ---- B: checkpoints on a full disk ---------------------------------------------------------

/// Fills several small segments, checkpoints, drains all but `keep_queued` + `keep_in_flight`
/// entries; returns the expected queue after a restart (in-flight ones first, then queued).
fn fill_and_drain(
    wal: &Wal,
    keep_in_flight: usize,
    keep_queued: usize,
) -> (Vec<Vec<u8>>, Vec<Seq>) {
    let all: Vec<Vec<u8>> = (0..300)
        .map(|i| format!("entry-{i:04}-{}", "p".repeat(200)).into_bytes())
        .collect();
    for chunk in all.chunks(10) {
        wal.commit_blocking(chunk.to_vec(), vec![]).unwrap();
    }
    wal.checkpoint().unwrap();
    let n = all.len() - keep_in_flight - keep_queued;
    let mut done = 0;
    while done < n {
        done += take_commit(wal, (n - done).min(7)).len();
    }
    let in_flight = wal.take(keep_in_flight).unwrap();
    let seqs = in_flight.iter().map(|t| t.seq).collect();
    (all[n..].to_vec(), seqs)
}

#[test]
fn failed_checkpoints_free_consumed_segments_and_recovery_stays_exact() {
    let d = Dirs::new();
    let mut c = d.config();
    c.max_file_size = 8192;
    let (wal, faults) = open_faulty(c.clone());
    let (want, in_flight) = fill_and_drain(&wal, 5, 20);
    assert_eq!((wal.len(), wal.in_flight()), (20, 5));
    let before = d.segments();
    assert!(before.len() > 6, "{} segments", before.len());
    assert!(d.ckpt().join("checkpoint").is_file());
    // Every checkpoint write fails with ENOSPC, the retry too.
    *faults.no_space_for.lock().unwrap() = Some("checkpoint".into());
    let r = wal.checkpoint();
    assert!(
        matches!(&r, Err(WalError::Io { source, .. }) if source.raw_os_error() == Some(28)),
        "{r:?}"
    );
    assert!(
        !d.ckpt().join("checkpoint.tmp").exists(),
        "checkpoint.tmp left behind"
    );
    assert!(
        !d.ckpt().join("checkpoint").exists(),
        "stale checkpoint kept"
    );
    let after = d.segments();
    assert!(
        after.len() <= 3,
        "consumed segments not freed: {} of {} left",
        after.len(),
        before.len()
    );
    assert!(
        after
            .iter()
            .all(|s| before.contains(s) || s > before.last().unwrap())
    );
    assert_eq!((wal.len(), wal.in_flight()), (20, 5));
    // Crash without any checkpoint: a full replay of what is left is exact, in-flight entries
    // come back first.
    crash(&wal);
    drop(wal);
    let (wal, report) = open_cfg(c);
    assert_eq!(report.checkpoint, CheckpointStatus::Missing);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(drain(&wal, false), want);
    assert_eq!(in_flight.len(), 5);
}

#[test]
fn checkpoint_on_a_full_disk_succeeds_after_freeing_consumed_segments() {
    let d = Dirs::new();
    let mut c = d.config();
    c.max_file_size = 8192;
    let (wal, faults) = open_faulty(c.clone());
    let (want, _) = fill_and_drain(&wal, 3, 10);
    let before = d.segments().len();
    // The disk is full to the last byte: the checkpoint cannot be written until the consumed
    // segments are unlinked.
    *faults.disk.lock().unwrap() = Some(0);
    wal.checkpoint().unwrap();
    assert!(d.ckpt().join("checkpoint").is_file());
    assert!(!d.ckpt().join("checkpoint.tmp").exists());
    assert!(
        d.segments().len() <= 3,
        "{} of {before} segments left",
        d.segments().len()
    );
    assert!(faults.disk.lock().unwrap().unwrap() > 0, "nothing freed");
    crash(&wal);
    drop(wal);
    let (wal, report) = open_cfg(c);
    assert_eq!(report.checkpoint, CheckpointStatus::Loaded);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(drain(&wal, false), want);
}

#[test]
fn leftover_checkpoint_tmp_is_removed_at_open() {
    let d = Dirs::new();
    std::fs::create_dir_all(d.ckpt()).unwrap();
    std::fs::write(d.ckpt().join("checkpoint.tmp"), b"half").unwrap();
    let (wal, report) = d.open();
    assert_eq!(report.checkpoint, CheckpointStatus::Missing);
    assert!(!d.ckpt().join("checkpoint.tmp").exists());
    wal.close().unwrap();
}

// ---- C: payload checksums ------------------------------------------------------------------

#[test]
fn damaged_payload_under_a_checkpoint_is_dropped_not_delivered() {
    let d = Dirs::new();
    let (wal, _) = d.open();
    wal.commit_blocking(payloads("a", 3), vec![]).unwrap();
    let victim = b"victim-payload-0123456789".to_vec();
    wal.commit_blocking(
        vec![b"b-0".to_vec(), victim.clone(), b"b-2".to_vec()],
        vec![],
    )
    .unwrap();
    wal.commit_blocking(payloads("c", 2), vec![]).unwrap();
    // Graceful close: the checkpoint covers every record, replay will not read them again.
    wal.close().unwrap();
    drop(wal);
    let seg = d.segments()[0].clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes
        .windows(victim.len())
        .position(|w| w == victim.as_slice())
        .unwrap();
    bytes[at + victim.len() - 1] ^= 0x5A;
    std::fs::write(&seg, &bytes).unwrap();

    let (wal, report) = d.open();
    assert_eq!(report.checkpoint, CheckpointStatus::Loaded);
    assert_eq!(report.replayed_records, 0);
    assert_eq!(wal.len(), 8);
    let t = wal.take(100).unwrap();
    let got: Vec<Vec<u8>> = t.iter().map(|t| t.payload.clone()).collect();
    let mut want = payloads("a", 3);
    want.extend([b"b-0".to_vec(), b"b-2".to_vec()]);
    want.extend(payloads("c", 2));
    assert_eq!(
        got, want,
        "the damaged payload was returned or others were lost"
    );
    assert_eq!(wal.corrupt_entries(), 1);
    // The damaged entry is gone for good (a TAKE was committed for it), the rest is in flight.
    assert_eq!((wal.len(), wal.in_flight()), (0, 7));
    wal.rollback(&t.iter().map(|t| t.seq).collect::<Vec<_>>());
    crash(&wal);
    drop(wal);
    let (wal, report) = d.open();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(drain(&wal, false), want);
    assert_eq!(wal.corrupt_entries(), 0);
}

// ---- D: the take reserve -------------------------------------------------------------------

#[test]
fn takes_keep_working_on_a_disk_filled_by_another_process() {
    let d = Dirs::new();
    let mut c = d.config();
    c.max_file_size = 4096;
    let fs = FaultyFs::default();
    let faults = Arc::clone(&fs.faults);
    let clock = Arc::new(ManualClock::default());
    let (wal, _) = Wal::open_with(c.clone(), Arc::new(fs), clock.clone()).unwrap();
    *faults.disk.lock().unwrap() = Some(64 << 20);
    for i in 0..200 {
        wal.commit_blocking(
            vec![format!("e-{i:03}-{}", "q".repeat(300)).into_bytes()],
            vec![],
        )
        .unwrap();
    }
    let seg = d.segments().last().unwrap().clone();
    let size = std::fs::metadata(&seg).unwrap().len();
    assert!(
        faults.allocated(&seg) >= size + 4096,
        "no reserve: {} allocated for {size} bytes",
        faults.allocated(&seg)
    );
    // Another process takes every free byte (and the cached free-space reading expires).
    *faults.disk.lock().unwrap() = Some(0);
    clock.advance(std::time::Duration::from_secs(1));
    let r = wal.commit_blocking(payloads("refused", 1), vec![]);
    assert!(matches!(r, Err(WalError::Full { free: 0, .. })), "{r:?}");
    // Every take commit still works, one entry each: ~25-byte TAKE records, more than fit before
    // max_file_size, so the segment goes past it (no new segment can be created).
    for _ in 0..150 {
        assert_eq!(take_commit(&wal, 1).len(), 1);
    }
    assert_eq!(
        d.segments().last().unwrap(),
        &seg,
        "a segment was created on a full disk"
    );
    let size = std::fs::metadata(&seg).unwrap().len();
    assert!(
        size > 4096,
        "max_file_size was not exceeded ({size}): the test proves nothing"
    );
    crash(&wal);
    drop(wal);
    let (wal, report) = open_cfg(c);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let left: Vec<Vec<u8>> = (150..200)
        .map(|i| format!("e-{i:03}-{}", "q".repeat(300)).into_bytes())
        .collect();
    assert_eq!(drain(&wal, false), left);
}

#[test]
fn without_fallocate_there_is_no_reserve_and_everything_works() {
    let d = Dirs::new();
    let fs = FaultyFs::default();
    fs.faults
        .allocate_unsupported
        .store(true, Ordering::Release);
    let faults = Arc::clone(&fs.faults);
    let (wal, _) =
        Wal::open_with(d.config(), Arc::new(fs), Arc::new(ManualClock::default())).unwrap();
    wal.commit_blocking(payloads("a", 3), vec![]).unwrap();
    let seg = d.segments()[0].clone();
    assert_eq!(
        faults.allocated(&seg),
        std::fs::metadata(&seg).unwrap().len()
    );
    assert_eq!(take_commit(&wal, 2), payloads("a", 3)[..2].to_vec());
    crash(&wal);
    drop(wal);
    let (wal, _) = d.open();
    assert_eq!(drain(&wal, false), payloads("a", 3)[2..].to_vec());
}

/// Bytes allocated on disk for `path`.
fn allocated_on_disk(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().blocks() * 512
}

/// On the real filesystem: the reserve is allocated past the end of the file without changing
/// its size, recovery reads exactly the records, and gives the reserve of the old newest segment
/// back.
#[test]
fn reserve_leaves_the_file_size_alone_and_recovery_is_unaffected() {
    let d = Dirs::new();
    let (wal, _) = Wal::open(d.config()).unwrap();
    wal.commit_blocking(payloads("a", 50), vec![]).unwrap();
    take_commit(&wal, 10);
    let seg = d.segments()[0].clone();
    let len = std::fs::metadata(&seg).unwrap().len();
    let records_end = {
        // header + one PUT of 50 + one TAKE of one range.
        let put: u64 = payloads("a", 50)
            .iter()
            .map(|p| 8 + p.len() as u64)
            .sum::<u64>()
            + 21;
        16 + put + 8 + 1 + 4 + 12
    };
    assert_eq!(
        len, records_end,
        "the file size must be exactly the records"
    );
    let supported = allocated_on_disk(&seg) >= len + (1 << 20);
    if !supported {
        eprintln!("this filesystem did not preallocate; only the size checks ran");
    }
    crash(&wal);
    drop(wal);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len);
    let (wal, report) = Wal::open(d.config()).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.replayed_records, 2);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len);
    if supported {
        assert!(
            allocated_on_disk(&seg) < len + (1 << 20),
            "recovery kept the old reserve: {} bytes allocated for {len}",
            allocated_on_disk(&seg)
        );
        // The new segment has its own.
        let new = d.segments().last().unwrap().clone();
        assert_ne!(new, seg);
        assert!(allocated_on_disk(&new) >= 16 + (1 << 20));
    }
    let mut want = payloads("a", 50);
    want.drain(..10);
    assert_eq!(drain(&wal, false), want);
    wal.close().unwrap();
}
