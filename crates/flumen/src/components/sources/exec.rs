//! The `exec` source (Flume's `ExecSource`): runs a command and turns each line of its
//! standard output into an event.
//!
//! With `shell` set (e.g. `/bin/sh -c`), the shell is split on whitespace and the command is
//! appended as one argument, so pipes and globs work; without it, the command itself is split
//! on whitespace and executed directly (no quoting, as in Flume).
//!
//! Lines are batched by `batchSize` or `batchTimeout`, whichever comes first, and delivered with
//! retries: while the channel refuses a batch the pipe is not read, so the command blocks on its
//! writes (back-pressure) instead of lines being dropped. Standard error is always drained, in its
//! own task, so a chatty command never blocks on it; its lines are logged at INFO with
//! `logStdErr`, discarded otherwise.
//!
//! Process ownership: the command runs in its own process group. On shutdown the whole group
//! gets SIGTERM, then SIGKILL if anything of it is left after 5 s, so that nothing the command
//! started (`tail -F x | grep y`, background jobs) is orphaned. Members of the group that outlive
//! a command exiting by itself get SIGTERM too. `kill_on_drop` is the last safety net.
//!
//! When the command exits its status is logged, the partial batch is flushed, and with
//! `restart` the command is started again after `restartThrottle`; without it the source
//! returns. A command that cannot be started is an error (retried after `restartThrottle` with
//! `restart`). Like Flume's, a trailing `\r` is stripped; unlike Flume's `readLine`, a lone
//! `\r` does not end a line.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Source, SourceContext, SourceError};
use rustix::process::{Pid, Signal};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::components::{BuildResult, SourceBuildContext, SourceDescriptor, build_with};

/// Registry entry of the `exec` source.
pub const DESCRIPTOR: SourceDescriptor = SourceDescriptor {
    name: "exec",
    classes: &["org.apache.flume.source.ExecSource"],
    description: "Runs a command; one line of its standard output = one event",
    batch_size_key: Some("batchSize"),
    build,
};

/// How long the command's process group gets between SIGTERM and SIGKILL on shutdown.
const TERMINATE_GRACE: Duration = Duration::from_secs(5);
/// How often the group is checked during that grace period.
const TERMINATE_POLL: Duration = Duration::from_millis(20);
/// How long the stderr drain may still run after the command exited (a background process of
/// the command may hold stderr open indefinitely).
const STDERR_LINGER: Duration = Duration::from_secs(1);
/// Size of each stdout read buffer allocation.
const READ_CAPACITY: usize = 64 * 1024;
/// Below this much free room, the read buffer gets a fresh allocation before the next read.
const MIN_SPARE: usize = 4 * 1024;

/// Configuration of the `exec` source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ExecSourceConfig {
    /// The command line to run. Flume key: `command`. Required.
    pub command: Option<String>,
    /// Shell prefix the command is passed to as one argument, e.g. `/bin/sh -c`. Flume key:
    /// `shell`. Default: none (the command is split on whitespace and run directly).
    pub shell: Option<String>,
    /// Start the command again when it exits. Flume key: `restart`. Default: false.
    pub restart: bool,
    /// Milliseconds to wait before a restart. Flume key: `restartThrottle`. Default: 10000.
    #[serde(rename = "restartThrottle")]
    pub restart_throttle: u64,
    /// Log the command's standard error at INFO. Flume key: `logStdErr`. Default: false.
    #[serde(rename = "logStdErr")]
    pub log_std_err: bool,
    /// Lines per channel transaction. Flume key: `batchSize`. Default: 20.
    #[serde(rename = "batchSize")]
    pub batch_size: usize,
    /// Milliseconds after which a partial batch is delivered. Flume key: `batchTimeout`.
    /// Default: 3000.
    #[serde(rename = "batchTimeout")]
    pub batch_timeout: u64,
    /// Charset of the command's output; only UTF-8 is supported (bodies are the bytes
    /// written). Flume key: `charset`. Default: `UTF-8`.
    pub charset: String,
}

impl Default for ExecSourceConfig {
    fn default() -> Self {
        Self {
            command: None,
            shell: None,
            restart: false,
            restart_throttle: 10_000,
            log_std_err: false,
            batch_size: 20,
            batch_timeout: 3000,
            charset: "UTF-8".into(),
        }
    }
}

impl ExecSourceConfig {
    /// Required keys and range checks; every problem found, located at its key.
    pub fn validate(&self, props: &Props) -> Vec<Diagnostic> {
        let mut errors = Vec::new();
        if self.command.as_deref().is_none_or(|c| c.trim().is_empty()) {
            errors.push(props.error("command", "missing required property `command`"));
        }
        if self.batch_size == 0 {
            errors.push(props.error("batchSize", "`batchSize` must be at least 1"));
        }
        if self.batch_timeout == 0 {
            errors.push(props.error("batchTimeout", "`batchTimeout` must be at least 1 ms"));
        }
        if !super::netcat::is_utf8(&self.charset) {
            errors.push(props.error(
                "charset",
                format!(
                    "unsupported charset `{}`: only UTF-8 is supported",
                    self.charset
                ),
            ));
        }
        errors
    }

    /// The program and its arguments, as Flume builds them.
    fn argv(&self) -> Vec<String> {
        let command = self.command.as_deref().unwrap_or_default().trim();
        match self
            .shell
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(shell) => {
                let mut argv: Vec<String> = shell.split_whitespace().map(String::from).collect();
                argv.push(command.to_string());
                argv
            }
            None => command.split_whitespace().map(String::from).collect(),
        }
    }
}

fn build(props: &Props, _cx: &SourceBuildContext) -> BuildResult<Box<dyn Source>> {
    build_with(props, ExecSourceConfig::validate, |config| {
        Ok(Box::new(ExecSource::new(config)) as Box<dyn Source>)
    })
}

/// The exec source.
#[derive(Debug)]
pub struct ExecSource {
    config: ExecSourceConfig,
    /// `argv[0]` is the program; never empty once validated.
    argv: Vec<String>,
}

/// How one run of the command ended.
enum RunEnd {
    /// The command exited (or its output ended); restart if configured.
    Exited,
    /// Shutdown: the source must return.
    Shutdown,
}

impl ExecSource {
    /// A source running `config.command` (assumed validated).
    pub fn new(config: ExecSourceConfig) -> Self {
        let argv = config.argv();
        Self { config, argv }
    }

    fn command_line(&self) -> &str {
        self.config.command.as_deref().unwrap_or_default()
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let (program, args) = self.argv.split_first().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command")
        })?;
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that shutdown can signal everything the command started.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
    }

    /// One run of the command: read, batch and deliver until its output ends or shutdown.
    async fn run_once(&self, mut child: Child, cx: &SourceContext) -> RunEnd {
        let pgid = child.id().and_then(|id| Pid::from_raw(id as i32));
        // Owns the stderr drain: dropping it at the end of this run aborts the task (a
        // background process of the command may keep stderr open after it exits).
        let mut stderr_task = JoinSet::new();
        if let Some(stderr) = child.stderr.take() {
            stderr_task.spawn(drain_stderr(
                stderr,
                cx.name.clone(),
                self.config.log_std_err,
            ));
        }
        let end = match child.stdout.take() {
            Some(stdout) => self.read_stdout(stdout, cx).await,
            None => RunEnd::Exited,
        };
        let end = match end {
            RunEnd::Shutdown => {
                terminate_group(&mut child, pgid).await;
                RunEnd::Shutdown
            }
            RunEnd::Exited => {
                let status = tokio::select! {
                    () = cx.shutdown.cancelled() => None,
                    status = child.wait() => Some(status),
                };
                match status {
                    None => {
                        terminate_group(&mut child, pgid).await;
                        RunEnd::Shutdown
                    }
                    Some(status) => {
                        self.log_exit(cx, status);
                        // Whatever the command left behind in its group goes with it.
                        if let Some(pgid) = pgid {
                            let _ = rustix::process::kill_process_group(pgid, Signal::TERM);
                        }
                        RunEnd::Exited
                    }
                }
            }
        };
        if let RunEnd::Exited = end {
            // Let the drain log what the command wrote last; its stderr normally ends with it.
            let _ = tokio::time::timeout(STDERR_LINGER, stderr_task.join_next()).await;
        }
        drop(stderr_task);
        end
    }

    fn log_exit(&self, cx: &SourceContext, status: std::io::Result<ExitStatus>) {
        match status {
            Ok(status) => {
                tracing::info!(source = %cx.name, command = self.command_line(), %status, "Command exited.");
            }
            Err(error) => {
                tracing::warn!(source = %cx.name, command = self.command_line(), %error, "Waiting for the command failed.");
            }
        }
    }

    /// Reads stdout to its end, delivering batches; returns early on shutdown.
    async fn read_stdout(&self, mut stdout: impl AsyncRead + Unpin, cx: &SourceContext) -> RunEnd {
        let batch_size = self.config.batch_size.clamp(1, cx.processor.max_batch());
        let timeout = Duration::from_millis(self.config.batch_timeout);
        let mut batch: Vec<Event> = Vec::with_capacity(batch_size.min(1024));
        // When the partial batch must go; set when its first event arrives.
        let mut deadline: Option<Instant> = None;
        let mut buf = BytesMut::with_capacity(READ_CAPACITY);
        loop {
            if buf.capacity() - buf.len() < MIN_SPARE {
                buf.reserve(READ_CAPACITY);
            }
            let read = tokio::select! {
                biased;
                () = cx.shutdown.cancelled() => {
                    // Finish the batch in hand: one attempt, no retries.
                    let _ = flush(cx, &mut batch).await;
                    return RunEnd::Shutdown;
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    deadline = None;
                    if flush(cx, &mut batch).await.is_err() {
                        return RunEnd::Shutdown;
                    }
                    continue;
                }
                read = stdout.read_buf(&mut buf) => read,
            };
            let eof = match read {
                Ok(0) => true,
                Ok(_) => false,
                Err(error) => {
                    tracing::warn!(source = %cx.name, %error, "Reading the command's output failed.");
                    true
                }
            };
            if let Some(last) = memchr::memrchr(b'\n', &buf) {
                let chunk = buf.split_to(last + 1).freeze();
                let mut start = 0;
                for nl in memchr::memchr_iter(b'\n', &chunk) {
                    batch.push(Event::new(line_body(&chunk, start, nl)));
                    start = nl + 1;
                    if batch.len() >= batch_size {
                        deadline = None;
                        if flush(cx, &mut batch).await.is_err() {
                            return RunEnd::Shutdown;
                        }
                    }
                }
            }
            if eof {
                if !buf.is_empty() {
                    // A last line without newline is still a line (`readLine` returns it).
                    let rest = buf.split().freeze();
                    let end = rest.len();
                    batch.push(Event::new(line_body(&rest, 0, end)));
                }
                return match flush(cx, &mut batch).await {
                    Ok(()) => RunEnd::Exited,
                    Err(()) => RunEnd::Shutdown,
                };
            }
            if !batch.is_empty() && deadline.is_none() {
                deadline = Some(Instant::now() + timeout);
            }
        }
    }
}

/// Delivers `batch` (emptying it) with retries; `Err` when shutdown came first.
async fn flush(cx: &SourceContext, batch: &mut Vec<Event>) -> Result<(), ()> {
    if batch.is_empty() {
        return Ok(());
    }
    let cap = batch.len();
    let events = std::mem::replace(batch, Vec::with_capacity(cap));
    cx.deliver_retrying(events).await.map_err(|_| ())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The body of the line `chunk[start..nl]`, without one trailing `\r`.
fn line_body(chunk: &Bytes, start: usize, nl: usize) -> Bytes {
    let end = if nl > start && chunk[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    chunk.slice(start..end)
}

/// Reads the command's standard error to its end, logging each line at INFO when `log` is set.
/// Per-line logging is the point of `logStdErr`, and stderr is not the data path.
async fn drain_stderr(stderr: impl AsyncRead + Unpin, source: std::sync::Arc<str>, log: bool) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if log {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    tracing::info!(source = %source, line = text, "Command stderr.");
                }
            }
        }
    }
}

/// SIGTERM to the command's whole group, then SIGKILL once [`TERMINATE_GRACE`] has passed with
/// something of it still alive. Reaps the direct child.
async fn terminate_group(child: &mut Child, pgid: Option<Pid>) {
    let Some(pgid) = pgid else {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return;
    };
    let _ = rustix::process::kill_process_group(pgid, Signal::TERM);
    let deadline = Instant::now() + TERMINATE_GRACE;
    let mut reaped = false;
    while Instant::now() < deadline {
        if !reaped {
            reaped = matches!(child.try_wait(), Ok(Some(_)));
        }
        if reaped && !group_alive(pgid).await {
            return;
        }
        tokio::time::sleep(TERMINATE_POLL).await;
    }
    tracing::warn!(
        pgid = pgid.as_raw_nonzero().get(),
        "Command ignored SIGTERM for 5 s; sending SIGKILL."
    );
    let _ = rustix::process::kill_process_group(pgid, Signal::KILL);
    let _ = child.wait().await;
}

/// Whether any process of group `pgid` is still running. Zombies do not count: an orphan of
/// the group that was killed stays a zombie until init reaps it, and some container inits
/// never do.
pub(crate) async fn group_alive(pgid: Pid) -> bool {
    if rustix::process::test_kill_process_group(pgid).is_err() {
        return false; // ESRCH: no process at all.
    }
    let pgid = pgid.as_raw_nonzero().get();
    tokio::task::spawn_blocking(move || live_member_of_group(pgid))
        .await
        .unwrap_or(true)
}

/// Scans `/proc` for a non-zombie process whose group is `pgid`. Where `/proc` cannot be read
/// the answer is "yes" (the caller then waits out the grace period and uses SIGKILL).
fn live_member_of_group(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return true;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses.
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = after.split_whitespace();
        let state = fields.next();
        let group = fields.nth(1).and_then(|g| g.parse::<i32>().ok());
        if group == Some(pgid) && state != Some("Z") && state != Some("X") {
            return true;
        }
    }
    false
}

#[async_trait::async_trait]
impl Source for ExecSource {
    fn batch_size(&self) -> Option<usize> {
        Some(self.config.batch_size)
    }

    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let throttle = Duration::from_millis(self.config.restart_throttle);
        loop {
            match self.spawn() {
                Ok(child) => {
                    tracing::info!(source = %cx.name, command = self.command_line(), "Command started.");
                    if let RunEnd::Shutdown = self.run_once(child, &cx).await {
                        return Ok(());
                    }
                }
                Err(error) => {
                    if !self.config.restart {
                        return Err(SourceError::Io {
                            context: format!("cannot run command `{}`", self.command_line()),
                            source: error,
                        });
                    }
                    tracing::error!(source = %cx.name, command = self.command_line(), %error, "Cannot run command; retrying after restartThrottle.");
                }
            }
            if !self.config.restart || cx.shutdown.is_cancelled() {
                return Ok(());
            }
            tokio::select! {
                () = cx.shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(throttle) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::sources::testing::{TestChannel, bodies, context, wait_until};
    use std::sync::{Arc, Mutex};

    fn sh(command: &str) -> ExecSourceConfig {
        ExecSourceConfig {
            command: Some(command.into()),
            shell: Some("/bin/sh -c".into()),
            ..Default::default()
        }
    }

    fn source(config: ExecSourceConfig) -> Box<ExecSource> {
        Box::new(ExecSource::new(config))
    }

    fn props(pairs: &[(&str, &str)]) -> Props {
        let mut p = Props::new("a1.sources.r1.", "source r1");
        for (i, (k, v)) in pairs.iter().enumerate() {
            p.insert(*k, *v, i as u32 + 1);
        }
        p
    }

    #[test]
    fn config_keys_defaults_and_argv() {
        let cx = SourceBuildContext {
            name: "r1".into(),
            counters: Default::default(),
        };
        let errs = (DESCRIPTOR.build)(&props(&[]), &cx).err().unwrap();
        assert_eq!(errs[0].message, "missing required property `command`");
        let errs =
            (DESCRIPTOR.build)(&props(&[("command", "x"), ("charset", "latin1")]), &cx).err();
        assert!(errs.unwrap()[0].message.contains("only UTF-8"));
        let p = props(&[
            ("command", "tail -F /var/log/x | grep y"),
            ("shell", "/bin/bash  -c"),
            ("restart", "true"),
            ("restartThrottle", "5"),
            ("logStdErr", "true"),
            ("batchSize", "7"),
            ("batchTimeout", "9"),
            ("charset", "utf-8"),
        ]);
        let (c, w) = p.deserialize::<ExecSourceConfig>().unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.argv(), ["/bin/bash", "-c", "tail -F /var/log/x | grep y"]);
        assert!(c.restart && c.log_std_err);
        assert_eq!(
            (c.restart_throttle, c.batch_size, c.batch_timeout),
            (5, 7, 9)
        );
        let (src, _) = (DESCRIPTOR.build)(&p, &cx).unwrap();
        assert_eq!(src.batch_size(), Some(7));
        let direct = ExecSourceConfig {
            command: Some(" echo  a b ".into()),
            ..Default::default()
        };
        assert_eq!(direct.argv(), ["echo", "a", "b"]);
        let (d, _) = props(&[]).deserialize::<ExecSourceConfig>().unwrap();
        assert_eq!(d, ExecSourceConfig::default());
    }

    #[tokio::test]
    async fn lines_become_events_and_the_source_ends_with_the_command() {
        let ch = TestChannel::new(1000, 100);
        let cx = context(ch.clone());
        source(sh(r"printf 'a\nb\r\nc'"))
            .run(cx.clone())
            .await
            .unwrap();
        assert_eq!(bodies(&ch.drain()), ["a", "b", "c"]);
        let direct = ExecSourceConfig {
            command: Some("echo hello world".into()),
            ..Default::default()
        };
        source(direct).run(cx.clone()).await.unwrap();
        assert_eq!(bodies(&ch.drain()), ["hello world"]);
    }

    #[tokio::test]
    async fn batches_by_size_within_transaction_capacity() {
        let ch = TestChannel::new(1000, 3);
        let cx = context(ch.clone());
        let config = ExecSourceConfig {
            batch_size: 100,
            ..sh("seq 1 10")
        };
        source(config).run(cx.clone()).await.unwrap();
        assert_eq!(ch.drain().len(), 10);
        assert_eq!(cx.counters.channel_write_fail.get(), 0);
        assert_eq!(cx.counters.append_batch_accepted.get(), 4); // 3 + 3 + 3 + 1
    }

    #[tokio::test]
    async fn partial_batch_goes_after_batch_timeout() {
        let ch = TestChannel::new(1000, 100);
        let cx = context(ch.clone());
        let config = ExecSourceConfig {
            batch_timeout: 20,
            ..sh("echo one; exec sleep 1000")
        };
        let task = tokio::spawn(source(config).run(cx.clone()));
        assert_eq!(bodies(&ch.take_at_least(1).await), ["one"]);
        let start = std::time::Instant::now();
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
        assert!(start.elapsed() < TERMINATE_GRACE, "sleep ignored SIGTERM?");
    }

    #[tokio::test]
    async fn restart_runs_the_command_again() {
        let ch = TestChannel::new(1000, 100);
        let cx = context(ch.clone());
        let config = ExecSourceConfig {
            restart: true,
            restart_throttle: 10,
            ..sh("echo x")
        };
        let task = tokio::spawn(source(config).run(cx.clone()));
        let events = ch.take_at_least(3).await;
        assert!(bodies(&events).iter().all(|b| b == "x"));
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn unspawnable_command_is_an_error_or_retried() {
        let ch = TestChannel::new(1000, 100);
        let cx = context(ch.clone());
        let missing = ExecSourceConfig {
            command: Some("/nonexistent/flumen-test-command".into()),
            ..Default::default()
        };
        match source(missing.clone()).run(cx.clone()).await {
            Err(SourceError::Io { context, .. }) => {
                assert!(
                    context.contains("/nonexistent/flumen-test-command"),
                    "{context}"
                )
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
        let retrying = ExecSourceConfig {
            restart: true,
            restart_throttle: 10,
            ..missing
        };
        let task = tokio::spawn(source(retrying).run(cx.clone()));
        tokio::task::yield_now().await;
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn unlogged_stderr_is_drained() {
        let ch = TestChannel::new(1000, 100);
        let cx = context(ch.clone());
        let config = sh("head -c 1000000 /dev/zero >&2; echo done");
        source(config).run(cx.clone()).await.unwrap();
        assert_eq!(bodies(&ch.drain()), ["done"]);
    }

    /// A `MakeWriter` collecting formatted log lines.
    #[derive(Clone, Default)]
    struct LogBuf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for LogBuf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn log_std_err_logs_stderr_lines_at_info() {
        let logs = LogBuf::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let ch = TestChannel::new(1000, 100);
        let cx = context(ch.clone());
        let config = ExecSourceConfig {
            log_std_err: true,
            ..sh("echo oops-on-stderr >&2")
        };
        source(config).run(cx.clone()).await.unwrap();
        let quiet = sh("echo hidden-on-stderr >&2");
        source(quiet).run(cx.clone()).await.unwrap();
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("oops-on-stderr"))
            .unwrap_or_else(|| {
                panic!("stderr line not logged:\n{text}");
            });
        assert!(line.contains("INFO") && line.contains("r1"), "{line}");
        let stderr_lines = text.lines().filter(|l| l.contains("Command stderr."));
        assert_eq!(stderr_lines.count(), 1, "{text}");
    }

    /// Pids of live processes whose command line starts with `marker`, with their groups.
    fn processes_with(marker: &str) -> Vec<(i32, i32)> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            if !String::from_utf8_lossy(&cmdline)
                .replace('\0', " ")
                .starts_with(marker)
            {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let after = &stat[stat.rfind(')').unwrap() + 1..];
            let fields: Vec<&str> = after.split_whitespace().collect();
            if fields[0] != "Z" {
                found.push((pid, fields[2].parse().unwrap()));
            }
        }
        found
    }

    #[tokio::test]
    async fn shutdown_kills_the_whole_process_group() {
        // A marker no other process has, so the scan finds only this test's processes.
        let marker = format!("{}.{}", 900_000 + std::process::id() % 1000, line!());
        let ch = TestChannel::new(1000, 100);
        let cx = context(ch.clone());
        let config = sh(&format!("sleep {marker} & sleep {marker}; echo never"));
        let task = tokio::spawn(source(config).run(cx.clone()));
        wait_until("both sleeps", || {
            processes_with(&format!("sleep {marker}")).len() == 2
        })
        .await;
        let procs = processes_with(&format!("sleep {marker}"));
        let pgid = procs[0].1;
        assert!(procs.iter().all(|&(_, g)| g == pgid), "{procs:?}");
        assert_ne!(
            pgid,
            rustix::process::getpgrp().as_raw_nonzero().get(),
            "own group expected"
        );
        cx.shutdown.cancel();
        task.await.unwrap().unwrap();
        assert!(processes_with(&format!("sleep {marker}")).is_empty());
        let pid = Pid::from_raw(pgid).unwrap();
        assert!(
            !group_alive(pid).await,
            "a process of group {pgid} survived"
        );
        assert!(ch.drain().is_empty());
    }
}
