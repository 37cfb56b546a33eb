//! Fuzzes WAL recovery: the input becomes one segment file, and optionally a checkpoint, in a
//! fresh temp dir; `Wal::open` must never panic (errors are fine), and whatever it recovered must
//! be readable.
//!
//! Input layout: first byte `b`; if `b` is odd, the rest is split at `b as usize * 4` (clamped):
//! the first part is the checkpoint, the second the segment. Otherwise the rest is the segment.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let (checkpoint, segment) = if first % 2 == 1 {
        let at = (first as usize * 4).min(rest.len());
        let (c, s) = rest.split_at(at);
        (Some(c), s)
    } else {
        (None, rest)
    };
    let Ok(dir) = tempfile::tempdir() else { return };
    let data_dir = dir.path().join("data");
    let ckpt_dir = dir.path().join("checkpoint");
    if std::fs::create_dir_all(&data_dir).is_err() || std::fs::create_dir_all(&ckpt_dir).is_err() {
        return;
    }
    if std::fs::write(data_dir.join("log-00000000000000000001.wal"), segment).is_err() {
        return;
    }
    if let Some(c) = checkpoint {
        if std::fs::write(ckpt_dir.join("checkpoint"), c).is_err() {
            return;
        }
    }
    let mut config = flumen_wal::WalConfig::new(ckpt_dir, vec![data_dir]);
    config.checkpoint_interval = std::time::Duration::ZERO;
    config.checkpoint_on_close = false;
    config.minimum_required_space = 0;
    if let Ok((wal, _report)) = flumen_wal::Wal::open(config) {
        let _ = wal.take(usize::MAX);
        let _ = wal.close();
    }
});
