//! Process metrics read from `/proc` (Linux): resident and virtual memory, CPU time, open file
//! descriptors and their limit, start time. Reads are blocking file reads of a few hundred
//! bytes; the server runs them on the blocking pool. Elsewhere than Linux they are absent.

use std::path::Path;

/// Kernel clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`): 100 on every Linux ABI
/// flumen targets (fixed by the kernel's user-space ABI, independent of `CONFIG_HZ`).
const USER_HZ: f64 = 100.0;

/// One reading of the process's resources.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    /// Resident set size in bytes (`VmRSS`).
    pub resident_bytes: u64,
    /// Virtual memory size in bytes.
    pub virtual_bytes: u64,
    /// User plus system CPU time in seconds.
    pub cpu_seconds: f64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Soft limit on open file descriptors, if limited.
    pub max_fds: Option<u64>,
    /// Start time since the Unix epoch, in seconds.
    pub start_time_seconds: f64,
}

/// Reads this process's stats from `/proc/self`; `None` when `/proc` is unavailable.
pub fn read_self() -> Option<ProcessStats> {
    read(Path::new("/proc"), "self")
}

/// Reads the stats of process `pid` (`self` for this one) under the proc root `proc`.
pub fn read(proc: &Path, pid: &str) -> Option<ProcessStats> {
    let dir = proc.join(pid);
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let boot = std::fs::read_to_string(proc.join("stat")).ok()?;
    let limits = std::fs::read_to_string(dir.join("limits")).unwrap_or_default();
    let fields = parse_stat(&stat)?;
    let btime = parse_btime(&boot)?;
    let open_fds = std::fs::read_dir(dir.join("fd")).map_or(0, |d| d.count() as u64);
    Some(ProcessStats {
        resident_bytes: parse_vm_rss(&status)?,
        virtual_bytes: fields.vsize,
        cpu_seconds: (fields.utime + fields.stime) as f64 / USER_HZ,
        open_fds,
        max_fds: parse_max_fds(&limits),
        start_time_seconds: btime as f64 + fields.starttime as f64 / USER_HZ,
    })
}

/// The fields of `/proc/<pid>/stat` used here.
#[derive(Debug, PartialEq, Eq)]
pub struct StatFields {
    /// User-mode ticks (field 14).
    pub utime: u64,
    /// Kernel-mode ticks (field 15).
    pub stime: u64,
    /// Start time in ticks after boot (field 22).
    pub starttime: u64,
    /// Virtual memory size in bytes (field 23).
    pub vsize: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<StatFields> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `f[0]` is field 3 (state).
    let n = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
    Some(StatFields {
        utime: n(14)?,
        stime: n(15)?,
        starttime: n(22)?,
        vsize: n(23)?,
    })
}

/// `VmRSS:  1234 kB` of `/proc/<pid>/status`, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `btime <secs>` of `/proc/stat`: boot time since the epoch.
pub fn parse_btime(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit of `Max open files` in `/proc/<pid>/limits`; `None` if unlimited or absent.
pub fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let line = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 \
                    8 0 123456 987654321 1500 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 \
                    0 0 0 0 0\n";
        let f = parse_stat(line).expect("parses");
        assert_eq!(
            f,
            StatFields {
                utime: 250,
                stime: 75,
                starttime: 123_456,
                vsize: 987_654_321
            }
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_boot_and_limits() {
        assert_eq!(
            parse_vm_rss("Name:\tflumen\nVmRSS:\t   10240 kB\nThreads: 4\n"),
            Some(10_485_760)
        );
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert_eq!(
            parse_btime("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_max_fds(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    #[test]
    fn fake_proc_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        std::fs::create_dir_all(p.join("77/fd")).expect("mkdir");
        for i in 0..3 {
            std::fs::write(p.join(format!("77/fd/{i}")), "").expect("fd");
        }
        std::fs::write(
            p.join("77/stat"),
            "77 (flumen) S 1 77 77 0 -1 0 0 0 0 0 300 100 0 0 20 0 8 0 5000 4096 10 0\n",
        )
        .expect("stat");
        std::fs::write(p.join("77/status"), "VmRSS:\t2 kB\n").expect("status");
        std::fs::write(p.join("stat"), "btime 1000\n").expect("boot");
        let s = read(p, "77").expect("reads");
        assert_eq!(s.resident_bytes, 2048);
        assert_eq!(s.virtual_bytes, 4096);
        assert!((s.cpu_seconds - 4.0).abs() < 1e-9);
        assert_eq!(s.open_fds, 3);
        assert_eq!(s.max_fds, None);
        assert!((s.start_time_seconds - 1050.0).abs() < 1e-9);
    }

    #[test]
    fn this_process_on_linux() {
        if cfg!(target_os = "linux") {
            let s = read_self().expect("/proc/self readable on Linux");
            assert!(s.resident_bytes > 0);
            assert!(s.open_fds > 0);
            assert!(s.start_time_seconds > 1_000_000_000.0);
        }
    }
}
