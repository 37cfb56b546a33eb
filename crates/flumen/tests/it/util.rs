//! Test harness: start the agent binary, find free ports, wait for output.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any wait in these tests may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_flumen")
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it returns true or the deadline passes.
pub fn wait_for(mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A running agent with its own temporary directory; killed on drop.
pub struct Agent {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    log: Arc<Mutex<String>>,
}

/// Replaces `{dir}` in a configuration template with the test's directory.
pub fn render(template: &str, dir: &Path) -> String {
    template.replace("{dir}", &dir.display().to_string())
}

impl Agent {
    /// Writes `template` (with `{dir}` replaced) to `flume.conf` and starts agent `a1` on it.
    pub fn start(template: &str) -> Agent {
        Self::start_with(template, &[])
    }

    pub fn start_with(template: &str, extra: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("flume.conf");
        std::fs::write(&conf, render(template, dir.path())).unwrap();
        let (child, log) = spawn_agent(&conf, extra);
        Agent {
            child,
            dir,
            conf,
            log,
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Everything the agent logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; panics with the log otherwise.
    pub fn expect_log(&self, needle: &str) {
        assert!(
            wait_for(|| self.log().contains(needle)),
            "log never contained {needle:?}; log:\n{}",
            self.log()
        );
    }

    /// Replaces the configuration file (atomically, as editors and config management do).
    pub fn rewrite_conf(&self, template: &str) {
        let tmp = self.dir.path().join("flume.conf.tmp");
        std::fs::write(&tmp, render(template, self.dir.path())).unwrap();
        std::fs::rename(&tmp, &self.conf).unwrap();
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        signal(self.child.id(), "TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "agent did not exit after SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal with the `kill` command (keeps the tests free of unsafe code).
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// Connects to a netcat source, retrying until it listens.
pub fn connect(port: u16) -> TcpStream {
    let mut last = None;
    let ok = wait_for(|| match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => {
            last = Some(s);
            true
        }
        Err(_) => false,
    });
    assert!(ok, "nothing listens on port {port}");
    let s = last.unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Sends lines and reads one reply line per line sent (netcat with `ack-every-event`).
pub fn send_acked(stream: &mut TcpStream, lines: &[String]) -> Vec<String> {
    let mut payload = String::new();
    for l in lines {
        payload.push_str(l);
        payload.push('\n');
    }
    stream.write_all(payload.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut replies = Vec::new();
    for _ in lines {
        let mut r = String::new();
        reader.read_line(&mut r).unwrap();
        replies.push(r.trim_end().to_owned());
    }
    replies
}

/// Every line of every file in `dir`, files in name order.
pub fn lines_in(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Waits until `dir` holds at least `n` lines and returns them.
pub fn wait_lines(dir: &Path, n: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let ok = wait_for(|| {
        lines = lines_in(dir);
        lines.len() >= n
    });
    assert!(
        ok,
        "expected {n} lines in {}, found {}: {:?}",
        dir.display(),
        lines.len(),
        lines.iter().take(5).collect::<Vec<_>>()
    );
    lines
}

pub fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// Like [`wait_for`] with a deadline of `limit` instead of [`DEADLINE`].
pub fn wait_for_within(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Starts `flumen agent -n a1 -f conf` and collects its stdout and stderr into one log.
/// Starts agent `a1` on `conf` with `extra` arguments, collecting stdout and stderr into one log.
fn spawn_agent(conf: &Path, extra: &[&str]) -> (Child, Arc<Mutex<String>>) {
    let mut child = Command::new(bin())
        .args(["agent", "-n", "a1", "-f"])
        .arg(conf)
        .args(["--poll-interval", "1"])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    for stream in [
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
    }
    (child, log)
}

impl Agent {
    /// Starts agent `a1` on the configuration file `conf` (already written) in an existing
    /// directory, which the agent then owns (it is removed when the agent is dropped).
    pub fn start_in(dir: tempfile::TempDir, conf: PathBuf) -> Agent {
        let (child, log) = spawn_agent(&conf, &[]);
        Agent {
            child,
            dir,
            conf,
            log,
        }
    }

    /// Sends SIGKILL (with the `kill` command) and waits for the exit.
    pub fn kill9(&mut self) -> ExitStatus {
        if let Some(status) = self.child.try_wait().unwrap() {
            return status;
        }
        signal(self.child.id(), "KILL");
        self.wait_exit(DEADLINE)
            .unwrap_or_else(|| panic!("agent did not die after SIGKILL"))
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts a new agent process on the same directory and configuration file (which may have
    /// been rewritten meanwhile). The previous process must have exited (`kill9`, `terminate`).
    /// Returns the previous process's log; [`Agent::log`] shows the new process's from now on.
    pub fn restart(&mut self) -> String {
        assert!(
            self.child.try_wait().unwrap().is_some(),
            "restart: the previous agent process is still running"
        );
        let (child, log) = spawn_agent(&self.conf, &[]);
        self.child = child;
        let old = std::mem::replace(&mut self.log, log);
        // Give the old reader threads a moment to collect the last lines of the dead process.
        std::thread::sleep(Duration::from_millis(20));
        old.lock().unwrap().clone()
    }
}

/// The path of the program `name`, looked up in `PATH` and then in the `sbin` directories a
/// non-root `PATH` lacks (where Debian puts `nginx` and `logrotate`); `None` when not installed.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether the tests run as root (the owner of a file they create is uid 0).
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::tempfile().unwrap();
    probe.metadata().unwrap().uid() == 0
}

/// The processes whose program (first argument) ends with `program` and whose command line
/// contains `needle` (e.g. a path unique to the test), from `/proc`.
pub fn pids_of(program: &str, needle: &str) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let first = args.first()?;
            (first.ends_with(program) && args.iter().any(|a| a.contains(needle))).then_some(pid)
        })
        .collect()
}

/// Every file in `dir` whose name starts with `prefix`, in name order.
pub fn files_with_prefix(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    files.sort();
    files
}

/// The last `n` lines of `text`, for failure messages.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
