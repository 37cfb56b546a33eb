//! Tests of the TAILDIR source with real files in temporary directories, a real memory
//! channel, and real inotify notifications.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use flumen_config::Props;
use flumen_core::{
    Channel, ChannelProcessor, ChannelSelector, Event, InterceptorChain, Source, SourceContext,
    SourceCounters, SourceError,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::components::channels::memory::{MemoryChannel, MemoryChannelConfig};

fn props(pairs: &[(&str, &str)]) -> Props {
    let mut p = Props::new("a1.sources.r1.", "source r1");
    for (i, (k, v)) in pairs.iter().enumerate() {
        p.insert(*k, *v, i as u32 + 1);
    }
    p
}

fn build_props(pairs: &[(&str, &str)]) -> BuildResult<Box<dyn Source>> {
    let cx = SourceBuildContext {
        name: "r1".into(),
        counters: Default::default(),
    };
    (DESCRIPTOR.build)(&props(pairs), &cx)
}

/// A source under test: its directory, channel, context and task.
struct Harness {
    dir: tempfile::TempDir,
    ch: Arc<MemoryChannel>,
    cx: SourceContext,
    task: Option<JoinHandle<Result<(), SourceError>>>,
}

fn memory_channel() -> Arc<MemoryChannel> {
    memory_channel_of(100_000, 1000)
}

fn memory_channel_of(capacity: usize, transaction_capacity: usize) -> Arc<MemoryChannel> {
    let config = MemoryChannelConfig {
        capacity,
        transaction_capacity,
        ..Default::default()
    };
    Arc::new(MemoryChannel::new("c1", config, Arc::default()))
}

fn context(ch: Arc<MemoryChannel>) -> SourceContext {
    let channels: Vec<Arc<dyn Channel>> = vec![ch];
    SourceContext {
        name: Arc::from("r1"),
        processor: ChannelProcessor::new(
            channels,
            ChannelSelector::replicating_all(1),
            InterceptorChain::default(),
        ),
        shutdown: CancellationToken::new(),
        counters: Arc::new(SourceCounters::default()),
    }
}

impl Harness {
    /// A fresh directory; nothing running yet.
    fn new() -> Self {
        Self::with_channel(memory_channel())
    }

    /// A fresh directory, delivering into `ch`.
    fn with_channel(ch: Arc<MemoryChannel>) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            cx: context(ch.clone()),
            ch,
            task: None,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pos_file(&self) -> PathBuf {
        self.path("state/pos.json")
    }

    /// Group `g1` = `<dir>/logs/<pattern>`, position file in `<dir>/state`, plus `extra`.
    fn start(&mut self, pattern: &str, extra: &[(&str, &str)]) {
        std::fs::create_dir_all(self.path("logs")).unwrap();
        let group = format!("{}/{pattern}", self.path("logs").display());
        let pos = self.pos_file().display().to_string();
        let mut pairs = vec![
            ("filegroups", "g1"),
            ("filegroups.g1", group.as_str()),
            ("positionFile", pos.as_str()),
            ("backoffSleepIncrement", "100"),
            ("maxBackoffSleep", "500"),
            ("writePosInterval", "100"),
        ];
        pairs.extend_from_slice(extra);
        let (src, warnings) = build_props(&pairs).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        self.cx = context(self.ch.clone());
        let cx = self.cx.clone();
        self.task = Some(tokio::spawn(src.run(cx)));
    }

    /// Graceful stop; the source writes its final positions.
    async fn stop(&mut self) {
        self.cx.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    /// Takes at least `n` events; panics after 10 s.
    async fn take(&self, n: usize) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        while out.len() < n {
            let got = self.take_now().await;
            if got.is_empty() {
                tokio::select! {
                    () = self.ch.readable() => {}
                    () = tokio::time::sleep_until(deadline) => {
                        panic!("timed out: {} events of {n}: {:?}", out.len(), bodies(&out))
                    }
                }
            }
            out.extend(got);
        }
        out
    }

    /// Whatever is in the channel now.
    async fn take_now(&self) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let mut tx = self.ch.begin();
            let n = tx.take(1000).await.unwrap();
            out.extend(tx.taken().iter().cloned());
            tx.commit().await.unwrap();
            if n == 0 {
                return out;
            }
        }
    }
}

fn bodies(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn lines(prefix: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{prefix}{i:05}\n")).collect()
}

fn expected(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:05}")).collect()
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// Polls `cond` until it holds; panics after 10 s.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------- config

#[test]
fn config_defaults_lookup_and_errors() {
    let (c, w) = props(&[]).deserialize::<TaildirSourceConfig>().unwrap();
    assert_eq!(c, TaildirSourceConfig::default());
    assert!(w.is_empty());
    let table = crate::components::sources::SOURCES;
    for t in [
        "TAILDIR",
        "taildir",
        "org.apache.flume.source.taildir.TaildirSource",
    ] {
        assert_eq!(
            crate::components::lookup(table, t).map(|d| d.name).ok(),
            Some("taildir")
        );
    }
    let msgs = |pairs: &[(&str, &str)]| -> Vec<String> {
        build_props(pairs)
            .err()
            .unwrap()
            .iter()
            .map(|d| d.message.clone())
            .collect()
    };
    assert!(msgs(&[]).contains(&"missing required property `filegroups`".to_string()));
    assert!(
        msgs(&[("filegroups.g1", "/x/y")])
            .iter()
            .any(|m| m.contains("`filegroups`"))
    );
    let m = msgs(&[("filegroups", "g1 g2"), ("filegroups.g1", "/var/log/a.log")]);
    assert!(
        m.contains(&"missing required property `filegroups.g2`".to_string()),
        "{m:?}"
    );
    let m = msgs(&[("filegroups", "g1"), ("filegroups.g1", "logs/a.log")]);
    assert!(m[0].contains("not an absolute path"), "{m:?}");
    let m = msgs(&[("filegroups", "g1"), ("filegroups.g1", "/var/log/a(.log")]);
    assert!(m[0].contains("invalid file-name regex"), "{m:?}");
    let m = msgs(&[
        ("filegroups", "g1"),
        ("filegroups.g1", "/var/log/a.log"),
        ("batchSize", "0"),
        ("multiline.pattern", "(("),
    ]);
    assert_eq!(m.len(), 2, "{m:?}");

    let (src, warnings) = build_props(&[
        ("filegroups", "g1 g2"),
        ("filegroups.g1", "/var/log/app/.*\\.log"),
        ("filegroups.g2", "/var/log/b.log"),
        ("headers.g1.topic", "app"),
        ("headers.g2.topic", "b"),
        ("batchSize", "500"),
        ("maxBatchCount", "9223372036854775807"),
        ("positionFile", "/tmp/p.json"),
        ("bogus", "1"),
    ])
    .unwrap();
    assert_eq!(src.batch_size(), Some(500));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].message.contains("bogus"));
    assert_eq!(DESCRIPTOR.batch_size_key, Some("batchSize"));

    let (c, _) = config::deserialize(&props(&[
        ("filegroups", "g1"),
        ("filegroups.g1", "/var/log/app/a.*"),
        ("headers.g1.k1", "v1"),
        ("headers.g1.k.2", "v2"),
    ]))
    .unwrap();
    let s = c.settings(&props(&[])).unwrap();
    assert_eq!(s.groups[0].dir, PathBuf::from("/var/log/app"));
    assert!(s.groups[0].pattern.is_match("a.log"));
    assert!(!s.groups[0].pattern.is_match("ba.log"), "whole-name match");
    assert_eq!(s.groups[0].headers.get("k1"), Some("v1"));
    assert_eq!(s.groups[0].headers.get("k.2"), Some("v2"));
    assert!(s.position_file.ends_with(".flumen/taildir_position.json"));
}

// ---------------------------------------------------------------- reading

#[tokio::test]
async fn tails_existing_and_appended_lines() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/app.log");
    append(&log, "one\ntwo\r\nthree\n");
    append(&h.path("logs/other.txt"), "not matched\n");
    h.start("app\\.log", &[]);
    assert_eq!(bodies(&h.take(3).await), ["one", "two", "three"]);
    append(&log, "four\n\nsix\n");
    assert_eq!(bodies(&h.take(3).await), ["four", "", "six"]);
    h.stop().await;
    assert!(h.take_now().await.is_empty());
    assert_eq!(h.cx.counters.event_accepted.get(), 6);
}

#[tokio::test]
async fn skip_to_end_starts_unknown_files_at_their_end() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/a.log");
    append(&log, "old1\nold2\n");
    h.start("a\\.log", &[("skipToEnd", "true")]);
    // The first position write shows the source has found the file and placed it at its end.
    let size = std::fs::metadata(&log).unwrap().len();
    let pos_file = h.pos_file();
    wait_until("the position file", || {
        std::fs::read_to_string(&pos_file).is_ok_and(|t| t.contains(&format!("\"pos\":{size}")))
    })
    .await;
    append(&log, "new\n");
    assert_eq!(bodies(&h.take(1).await), ["new"]);
    // A file created later is read from its start: skipToEnd is for startup only.
    append(&h.path("logs/a.log.tmp"), "ignored\n");
    h.stop().await;
    assert!(h.take_now().await.is_empty());
}

#[tokio::test]
async fn partial_lines_wait_for_their_newline_or_idle_close() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/a.log");
    append(&log, "first\nsec");
    h.start("a\\.log", &[("idleTimeout", "300")]);
    // Both were read together: had the partial line been emitted, it would be here too.
    assert_eq!(bodies(&h.take(1).await), ["first"]);
    assert!(h.take_now().await.is_empty());
    append(&log, "ond\nthi");
    assert_eq!(bodies(&h.take(1).await), ["second"]);
    // No newline ever comes: idle close delivers it once.
    assert_eq!(bodies(&h.take(1).await), ["thi"]);
    append(&log, "rd\n");
    assert_eq!(bodies(&h.take(1).await), ["rd"]);
    h.stop().await;
    assert!(h.take_now().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_and_create_rotation_loses_and_duplicates_nothing() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/access.log");
    append(&log, "");
    h.start("access\\.log", &[("batchSize", "50")]);
    const ROUNDS: usize = 5;
    const PER: usize = 2000;
    let dir = h.path("logs");
    let writer = tokio::task::spawn_blocking(move || {
        let log = dir.join("access.log");
        let mut n = 0;
        for r in 0..ROUNDS {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap();
            for _ in 0..PER {
                writeln!(f, "line-{n:07}").unwrap();
                n += 1;
            }
            // Rotate: rename away (the name no longer matches), then keep writing to the
            // old handle for a while, as a server does until it reopens its log.
            std::fs::rename(&log, dir.join(format!("access.log.{r}"))).unwrap();
            for _ in 0..10 {
                writeln!(f, "line-{n:07}").unwrap();
                n += 1;
            }
            drop(f);
        }
        n
    });
    let total = writer.await.unwrap();
    let got = bodies(&h.take(total).await);
    h.stop().await;
    let mut all = got;
    all.extend(bodies(&h.take_now().await));
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "duplicates");
    assert_eq!(all.len(), total);
    let mut sorted = all.clone();
    sorted.sort();
    let want: Vec<String> = (0..total).map(|n| format!("line-{n:07}")).collect();
    assert_eq!(sorted, want);
}

#[tokio::test]
async fn copytruncate_rereads_from_the_start() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/a.log");
    append(&log, &lines("old-", 0..500));
    h.start("a\\.log", &[]);
    assert_eq!(bodies(&h.take(500).await), expected("old-", 0..500));
    // copytruncate: copy (not followed: the copy's name does not match), then truncate.
    std::fs::copy(&log, h.path("logs/a.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, &lines("new-", 0..100));
    assert_eq!(bodies(&h.take(100).await), expected("new-", 0..100));
    append(&log, &lines("new-", 100..1000));
    assert_eq!(bodies(&h.take(900).await), expected("new-", 100..1000));
    h.stop().await;
    assert!(h.take_now().await.is_empty());
}

#[tokio::test]
async fn new_matching_files_are_picked_up() {
    let mut h = Harness::new();
    h.start(".*\\.log", &[("fileHeader", "true")]);
    // Let the source start (it writes its position file once it has scanned).
    let pos_file = h.pos_file();
    wait_until("the first position write", || pos_file.exists()).await;
    append(&h.path("logs/b.txt"), "not matched\n");
    append(&h.path("logs/a.log"), "hello\n");
    let e = h.take(1).await;
    assert_eq!(bodies(&e), ["hello"]);
    assert_eq!(
        e[0].headers.get("file"),
        Some(h.path("logs/a.log").to_str().unwrap())
    );
    append(&h.path("logs/c.log"), "world\n");
    assert_eq!(bodies(&h.take(1).await), ["world"]);
    h.stop().await;
    assert!(h.take_now().await.is_empty());
}

#[tokio::test]
async fn group_file_and_offset_headers() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/a.log");
    append(&log, "abc\nde\r\nf\n");
    h.start(
        "a\\.log",
        &[
            ("headers.g1.topic", "web"),
            ("headers.g1.dc", "eu"),
            ("fileHeader", "true"),
            ("fileHeaderKey", "path"),
            ("byteOffsetHeader", "true"),
        ],
    );
    let events = h.take(3).await;
    let offsets: Vec<&str> = events
        .iter()
        .map(|e| e.headers.get("byteoffset").unwrap())
        .collect();
    assert_eq!(offsets, ["0", "4", "8"]);
    for e in &events {
        assert_eq!(e.headers.get("topic"), Some("web"));
        assert_eq!(e.headers.get("dc"), Some("eu"));
        assert_eq!(e.headers.get("path"), Some(log.to_str().unwrap()));
        assert_eq!(e.headers.len(), 4);
    }
    h.stop().await;
}

// ---------------------------------------------------------------- positions

#[tokio::test]
async fn positions_are_written_in_flume_format_and_resumed() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/a.log");
    append(&log, &lines("l", 0..10));
    h.start("a\\.log", &[]);
    assert_eq!(bodies(&h.take(10).await), expected("l", 0..10));
    h.stop().await;
    let text = std::fs::read_to_string(h.pos_file()).unwrap();
    let size = std::fs::metadata(&log).unwrap().len();
    assert_eq!(
        text,
        format!(
            "[{{\"inode\":{},\"pos\":{size},\"file\":\"{}\"}}]",
            inode(&log),
            log.display()
        )
    );
    append(&log, &lines("l", 10..15));
    h.start("a\\.log", &[]);
    assert_eq!(bodies(&h.take(5).await), expected("l", 10..15));
    h.stop().await;
    assert!(h.take_now().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_source_loses_nothing_and_repeats_only_uncommitted_lines() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/a.log");
    const N: usize = 20_000;
    append(&log, &lines("k", 0..N));
    h.start(
        "a\\.log",
        &[("batchSize", "100"), ("writePosInterval", "1")],
    );
    let mut first = bodies(&h.take(N / 2).await);
    // Crash: no final position write, the in-flight batch may be lost.
    let task = h.task.take().unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    first.extend(bodies(&h.take_now().await));
    // A position write already handed to the blocking pool may still land (in a real crash
    // it dies with the process): resume from a snapshot taken now.
    let snapshot = h.path("state/snapshot.json");
    // No position file yet: the crash came before the first write, so all is read again.
    let _ = std::fs::copy(h.pos_file(), &snapshot);
    // The periodic writes may lag behind the commits; whatever they recorded was committed.
    let entries = position::load_blocking(&snapshot).unwrap();
    assert!(entries.len() <= 1, "{entries:?}");
    let line_len = 7; // "k00000\n"
    let resumed = entries.first().map_or(0, |e| e.pos as usize / line_len);
    assert!(resumed <= first.len(), "position ahead of commits");
    let snapshot = snapshot.display().to_string();
    h.start(
        "a\\.log",
        &[("batchSize", "100"), ("positionFile", snapshot.as_str())],
    );
    let second = bodies(&h.take(N - resumed).await);
    h.stop().await;
    assert!(h.take_now().await.is_empty());
    assert_eq!(second, expected("k", resumed..N));
    let mut all: Vec<String> = first.clone();
    all.extend(second.iter().cloned());
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), N, "a line was lost");
    // Duplicates are exactly the lines committed after the last position write.
    assert_eq!(all.len() - N, first.len() - resumed);
}

#[tokio::test]
async fn reads_a_flume_written_position_file() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    std::fs::create_dir_all(h.path("state")).unwrap();
    let log = h.path("logs/a.log");
    append(&log, &lines("f", 0..6));
    // As Gson might lay it out: other field order, whitespace, a second stale entry.
    let text = format!(
        "[\n  {{ \"file\": \"{}\", \"pos\": 21, \"inode\": {} }},\n  {{\"inode\":1,\"pos\":5,\"file\":\"/gone.log\"}}\n]\n",
        log.display(),
        inode(&log)
    );
    std::fs::write(h.pos_file(), text).unwrap();
    h.start("a\\.log", &[]);
    assert_eq!(bodies(&h.take(3).await), expected("f", 3..6));
    h.stop().await;
    assert!(h.take_now().await.is_empty());
}

#[tokio::test]
async fn a_damaged_position_file_restarts_from_the_beginning_or_the_end() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    std::fs::create_dir_all(h.path("state")).unwrap();
    let log = h.path("logs/a.log");
    append(&log, &lines("d", 0..3));
    std::fs::write(h.pos_file(), "[{\"inode\":12,\"pos\":").unwrap();
    h.start("a\\.log", &[]);
    assert_eq!(bodies(&h.take(3).await), expected("d", 0..3));
    h.stop().await;
    assert_eq!(position::load_blocking(&h.pos_file()).unwrap().len(), 1);

    std::fs::write(h.pos_file(), "garbage").unwrap();
    h.start("a\\.log", &[("skipToEnd", "true")]);
    let pos_file = h.pos_file();
    wait_until("a valid position file", || {
        position::load_blocking(&pos_file).is_ok()
    })
    .await;
    append(&log, "d-new\n");
    assert_eq!(bodies(&h.take(1).await), ["d-new"]);
    h.stop().await;
    assert!(h.take_now().await.is_empty());
}

// ---------------------------------------------------------------- multi-line, fairness

#[tokio::test]
async fn multiline_joins_a_java_stack_trace() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/a.log");
    let trace = "2024-05-01 12:00:00 ERROR Request failed\n\
                 java.lang.IllegalStateException: boom\n\
                 \tat com.example.Foo.bar(Foo.java:42)\n\
                 \tat com.example.Main.main(Main.java:7)\n\
                 Caused by: java.io.IOException: disk\n\
                 \t... 2 more\n";
    append(&log, &format!("{trace}2024-05-01 12:00:01 INFO next\n"));
    h.start(
        "a\\.log",
        &[
            ("multiline.pattern", "^\\d{4}-\\d{2}-\\d{2} "),
            ("multiline.flushTimeout", "200"),
            ("byteOffsetHeader", "true"),
        ],
    );
    let e = h.take(1).await;
    assert_eq!(bodies(&e), [trace.trim_end_matches('\n')]);
    assert_eq!(e[0].headers.get("byteoffset"), Some("0"));
    // The last event has no successor yet: the flush timeout delivers it.
    let e = h.take(1).await;
    assert_eq!(bodies(&e), ["2024-05-01 12:00:01 INFO next"]);
    assert_eq!(
        e[0].headers.get("byteoffset"),
        Some(trace.len().to_string().as_str())
    );
    append(&log, "2024-05-01 12:00:02 WARN x\n  continued\n");
    assert_eq!(
        bodies(&h.take(1).await),
        ["2024-05-01 12:00:02 WARN x\n  continued"]
    );
    h.stop().await;
    let text = std::fs::read_to_string(h.pos_file()).unwrap();
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(text.contains(&format!("\"pos\":{size}")), "{text}");
}

#[tokio::test]
async fn max_batch_count_takes_turns_between_files() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    append(&h.path("logs/a.log"), &lines("a", 0..1000));
    append(&h.path("logs/b.log"), &lines("b", 0..1000));
    h.start(".*\\.log", &[("batchSize", "10"), ("maxBatchCount", "1")]);
    let events = bodies(&h.take(2000).await);
    // Batches of 10 alternate between the two files.
    let firsts: Vec<char> = events
        .chunks(10)
        .take(20)
        .map(|c| {
            let f = c[0].chars().next().unwrap();
            assert!(c.iter().all(|l| l.starts_with(f)), "{c:?}");
            f
        })
        .collect();
    for pair in firsts.windows(2) {
        assert_ne!(pair[0], pair[1], "{firsts:?}");
    }
    h.stop().await;
}

/// Files written at about the same time are read in one round and delivered together: with
/// small batches and `maxBatchCount` 1, across a truncation of one of them, every line arrives
/// exactly once, each file's lines in order, and the positions end at the files' ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_written_together_are_delivered_together_exactly_once() {
    const FILES: usize = 40;
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let logs = h.path("logs");
    let name = |i: usize| logs.join(format!("f{i:02}.log"));
    for i in 0..FILES {
        std::fs::File::create(name(i)).unwrap();
    }
    h.start(".*\\.log", &[("batchSize", "7"), ("maxBatchCount", "1")]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut expected = Vec::new();
    for round in 0..3 {
        for i in 0..FILES {
            let text = lines(&format!("f{i:02}-r{round}"), 0..5);
            append(&name(i), &text);
            expected.extend(text.lines().map(str::to_owned));
        }
        let got = bodies(&h.take(expected.len() - (round * FILES * 5)).await);
        assert_eq!(got.len(), FILES * 5, "round {round}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One file truncated (copytruncate without a copy) while the others are written.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(name(3))
        .unwrap();
    let mut fresh = Vec::new();
    for i in 0..FILES {
        let text = lines(&format!("f{i:02}-after"), 0..2);
        append(&name(i), &text);
        fresh.extend(text.lines().map(str::to_owned));
    }
    let got = bodies(&h.take(fresh.len()).await);
    let mut sorted = got.clone();
    sorted.sort();
    let mut want = fresh.clone();
    want.sort();
    assert_eq!(sorted, want);
    for i in 0..FILES {
        let prefix = format!("f{i:02}-after");
        let mine: Vec<&String> = got.iter().filter(|l| l.starts_with(&prefix)).collect();
        let in_order: Vec<&String> = fresh.iter().filter(|l| l.starts_with(&prefix)).collect();
        assert_eq!(mine, in_order);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(h.take_now().await.is_empty(), "duplicates");
    h.stop().await;
    let entries = position::load_blocking(&h.pos_file()).unwrap();
    assert_eq!(entries.len(), FILES);
    for e in entries {
        let size = std::fs::metadata(&e.file).unwrap().len();
        assert_eq!(e.pos, size, "{}", e.file);
    }
}

/// Throughput: `cargo test --release -p flumen --lib taildir::tests::throughput --
/// --ignored --nocapture`. 2 M lines of 200 bytes from one file into a memory channel drained
/// by a consumer (a null sink), with batchSize 1000 and with Flume's default 100.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn throughput() {
    const N: usize = 2_000_000;
    for batch in ["1000", "100"] {
        let mut h = Harness::new();
        std::fs::create_dir_all(h.path("logs")).unwrap();
        let log = h.path("logs/big.log");
        {
            let file = std::fs::File::create(&log).unwrap();
            let mut f = std::io::BufWriter::with_capacity(1 << 20, file);
            let pad = "x".repeat(189);
            for i in 0..N {
                writeln!(f, "{i:010}{pad}").unwrap();
            }
        }
        let bytes = std::fs::metadata(&log).unwrap().len();
        let t = std::time::Instant::now();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cat {} > /dev/null", log.display()))
            .status()
            .unwrap();
        assert!(status.success());
        let cat = t.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        h.start("big\\.log", &[("batchSize", batch)]);
        let mut got = 0;
        while got < N {
            let mut tx = h.ch.begin();
            let n = tx.take(1000).await.unwrap();
            tx.commit().await.unwrap();
            if n == 0 {
                h.ch.readable().await;
            }
            got += n;
        }
        let secs = start.elapsed().as_secs_f64();
        let mib = bytes as f64 / 1048576.0;
        println!(
            "batchSize {batch}: {N} lines ({mib:.0} MiB) in {secs:.3} s: {:.2} M lines/s, \
             {:.0} MiB/s (cat > /dev/null: {cat:.3} s, {:.0} MiB/s)",
            N as f64 / secs / 1e6,
            mib / secs,
            mib / cat
        );
        h.stop().await;
    }
}

/// User + system CPU of this process, from `/proc/self/stat` (clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the `(comm)`: state is field 3; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Idle cost: `cargo test --release -p flumen --lib taildir::tests::many_files_idle_cost --
/// --ignored --nocapture`. 1,000 files, 100 lines/s in all (each file every 10 s), 10 s.
/// CPU of the whole test process per wall second, minus the writer's own (measured alone
/// first), and the process RSS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn many_files_idle_cost() {
    const FILES: usize = 1000;
    const SECS: u64 = 10;
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    for i in 0..FILES {
        append(&h.path(&format!("logs/f{i:04}.log")), "start\n");
    }
    h.start(
        ".*\\.log",
        &[
            ("backoffSleepIncrement", "1000"),
            ("maxBackoffSleep", "5000"),
            ("writePosInterval", "3000"),
        ],
    );
    let _ = h.take(FILES).await;
    let write = |dir: PathBuf| {
        move || {
            let mut n = 0usize;
            let end = std::time::Instant::now() + Duration::from_secs(SECS);
            while std::time::Instant::now() < end {
                let line = format!("{n:0190}\n");
                append(&dir.join(format!("f{:04}.log", (n * 7) % FILES)), &line);
                n += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            n
        }
    };
    // Baseline: the writer alone, into files nobody follows.
    let other = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        append(&other.path().join(format!("f{i:04}.log")), "start\n");
    }
    let (cpu0, t0) = (cpu_seconds(), std::time::Instant::now());
    tokio::task::spawn_blocking(write(other.path().to_path_buf()))
        .await
        .unwrap();
    let base = (cpu_seconds() - cpu0) / t0.elapsed().as_secs_f64();
    let (cpu0, t0) = (cpu_seconds(), std::time::Instant::now());
    let writer = tokio::task::spawn_blocking(write(h.path("logs")));
    let mut got = 0;
    let written = loop {
        got += h.take_now().await.len();
        if writer.is_finished() {
            break writer.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    got += h.take(written - got).await.len();
    let cpu = cpu_seconds() - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "{FILES} files, {written} lines in {wall:.1} s: CPU {:.2}% of a core with the \
         writer, {:.2}% without it (writer alone {:.2}%), RSS {:.1} MiB",
        cpu / wall * 100.0,
        (cpu / wall - base) * 100.0,
        base * 100.0,
        rss_mib()
    );
    assert_eq!(got, written);
    h.stop().await;
}

// ---------------------------------------------------------------- copytruncate copy, journal

/// Truncates `path` to 0 in place, as copytruncate does after its copy.
fn truncate(path: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[tokio::test]
async fn copytruncate_behind_a_full_channel_recovers_lines_from_the_copy() {
    // A channel of 100 events: the source reads the first 300 lines, delivers 100 and waits.
    let mut h = Harness::with_channel(memory_channel_of(100, 100));
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/a.log");
    append(&log, &lines("old-", 0..300));
    h.start("a\\.log", &[("batchSize", "10")]);
    let ch = h.ch.clone();
    wait_until("a full channel", || ch.len() >= 100).await;
    // Written while the source waits, then copied and truncated: only the copy has them.
    // The last line has no newline yet when the copy is made; its end goes to the new file.
    append(&log, &lines("old-", 300..400));
    append(&log, "old-00400-partial");
    std::fs::copy(&log, h.path("logs/a.log.1")).unwrap();
    truncate(&log);
    append(&log, &lines("new-", 0..50));
    let mut want = expected("old-", 0..400);
    want.push("old-00400-partial".into());
    want.extend(expected("new-", 0..50));
    let got = bodies(&h.take(want.len()).await);
    h.stop().await;
    assert_eq!(got, want);
    assert!(h.take_now().await.is_empty());
}

#[tokio::test]
async fn a_truncation_without_a_copy_reads_from_the_start_and_ignores_other_files() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/a.log");
    append(&log, &lines("old-", 0..100));
    // Decoys: an older rotation (other content) and a followed file with the same content.
    append(&h.path("logs/a.log.2"), &lines("older-", 0..500));
    h.start("a\\.log|b\\.log", &[]);
    assert_eq!(bodies(&h.take(100).await), expected("old-", 0..100));
    append(&h.path("logs/b.log"), &lines("old-", 0..150));
    assert_eq!(bodies(&h.take(150).await), expected("old-", 0..150));
    truncate(&log);
    append(&log, &lines("new-", 0..5));
    assert_eq!(bodies(&h.take(5).await), expected("new-", 0..5));
    h.stop().await;
    assert!(h.take_now().await.is_empty());
}

#[test]
fn samples_follow_the_bytes_read_and_find_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let orig = dir.path().join("a.log");
    let text: String = (0..40).map(|i| format!("line {i:03}\n")).collect();
    std::fs::write(&orig, &text).unwrap();
    let meta = std::fs::metadata(&orig).unwrap();
    let key = (meta.dev(), meta.ino());
    let settings = config::deserialize(&props(&[
        ("filegroups", "g1"),
        ("filegroups.g1", "/x/a\\.log"),
    ]))
    .unwrap()
    .0
    .settings(&props(&[]))
    .unwrap();
    let mut tf = TailFile::new(key, orig.clone(), 0, None, 0, &settings);
    assert!(tf.copy_probe().is_none(), "nothing read yet");
    // Reads of 7, then 5 (with a carry of 3), then the rest, as `drain` sees them.
    let b = text.as_bytes();
    tf.note_read(&b[..7], 0, 0);
    tf.note_read(&b[4..12], 4, 7);
    tf.note_read(&b[12..200], 12, 12);
    tf.read_pos = 200;
    let probe = tf.copy_probe().unwrap();
    assert_eq!(probe.head, &b[..tailer::SAMPLE]);
    assert_eq!(probe.tail, &b[200 - tailer::SAMPLE..200]);
    // Small reads keep a rolling window.
    tf.note_read(&b[200..210], 200, 200);
    tf.read_pos = 210;
    assert_eq!(tf.copy_probe().unwrap().tail, &b[210 - tailer::SAMPLE..210]);
    let probe = tf.copy_probe().unwrap();

    let skip_none = |_: &Path, _: FileKey| false;
    assert!(
        tailer::find_copy(&probe, skip_none).is_none(),
        "no copy yet"
    );
    std::fs::write(dir.path().join("a.log.1"), &text).unwrap();
    // Same start, other bytes before the read position; and too short.
    let mut other = text.clone().into_bytes();
    other[205] = b'#';
    std::fs::write(dir.path().join("other"), &other).unwrap();
    std::fs::write(dir.path().join("short"), &b[..210]).unwrap();
    let (found, _) = tailer::find_copy(&probe, skip_none).unwrap();
    assert_eq!(found, dir.path().join("a.log.1"));
    assert!(tailer::find_copy(&probe, |p, _| p.ends_with("a.log.1")).is_none());

    // Truncation forgets the samples; a restart mid-file knows none before its first read.
    tf.reset_to(0);
    assert!(tf.copy_probe().is_none());
    let mut tf = TailFile::new(key, orig, 0, None, 100, &settings);
    assert!(tf.copy_probe().is_none());
    tf.note_read(&b[100..150], 100, 100);
    tf.read_pos = 150;
    let probe = tf.copy_probe().unwrap();
    assert!(probe.head.is_empty());
    assert_eq!(probe.tail, &b[100..150], "only what was read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_resumes_from_the_journal_not_the_stale_position_file() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    let log = h.path("logs/a.log");
    append(&log, &lines("j", 0..1000));
    // The position file is written at startup (position 0), then not for 100 s.
    let slow = [("batchSize", "100"), ("writePosInterval", "100000")];
    h.start("a\\.log", &slow);
    assert_eq!(bodies(&h.take(1000).await), expected("j", 0..1000));
    let size = std::fs::metadata(&log).unwrap().len();
    let jpath = journal::journal_path(&h.pos_file());
    wait_until("the journal to hold the last commit", || {
        journal::load_blocking(&jpath)
            .unwrap()
            .iter()
            .any(|r| r.pos == size)
    })
    .await;
    // Crash: no final position write.
    let task = h.task.take().unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    let stale = position::load_blocking(&h.pos_file()).unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].pos, 0, "the position file is the stale one");

    append(&log, &lines("j", 1000..1010));
    h.start("a\\.log", &slow);
    assert_eq!(bodies(&h.take(10).await), expected("j", 1000..1010));
    // The restart stored the merged positions at once and started a fresh journal.
    let entries = position::load_blocking(&h.pos_file()).unwrap();
    assert_eq!(entries[0].pos, size);
    h.stop().await;
    assert!(h.take_now().await.is_empty(), "nothing read twice");
    assert!(!jpath.exists(), "a graceful stop removes the journal");
    let entries = position::load_blocking(&h.pos_file()).unwrap();
    assert_eq!(entries[0].pos, std::fs::metadata(&log).unwrap().len());
}

#[tokio::test]
async fn a_journal_record_for_another_path_or_beyond_the_end_is_ignored() {
    let mut h = Harness::new();
    std::fs::create_dir_all(h.path("logs")).unwrap();
    std::fs::create_dir_all(h.path("state")).unwrap();
    let log = h.path("logs/a.log");
    append(&log, &lines("r", 0..10)); // 7 bytes a line
    let meta = std::fs::metadata(&log).unwrap();
    let jpath = journal::journal_path(&h.pos_file());
    let rec = |pos: u64, path: &Path| journal::Record {
        dev: meta.dev(),
        inode: meta.ino(),
        pos,
        path_hash: journal::path_hash(path),
    };
    // Position file: line 2; journal: line 5 but for another path.
    std::fs::write(
        h.pos_file(),
        format!(
            r#"[{{"inode":{},"pos":14,"file":"{}"}}]"#,
            meta.ino(),
            log.display()
        ),
    )
    .unwrap();
    std::fs::write(&jpath, rec(35, &h.path("logs/other.log")).encode()).unwrap();
    h.start("a\\.log", &[]);
    assert_eq!(bodies(&h.take(8).await), expected("r", 2..10));
    h.stop().await;
    assert!(h.take_now().await.is_empty());

    // Journal beyond the end (the file was truncated meanwhile): the position file's entry.
    std::fs::write(&jpath, rec(700, &log).encode()).unwrap();
    append(&log, &lines("r", 10..12));
    h.start("a\\.log", &[]);
    assert_eq!(bodies(&h.take(2).await), expected("r", 10..12));
    h.stop().await;
    assert!(h.take_now().await.is_empty());

    // A valid journal record wins.
    std::fs::write(&jpath, rec(77, &log).encode()).unwrap();
    h.start("a\\.log", &[]);
    assert_eq!(bodies(&h.take(1).await), expected("r", 11..12));
    h.stop().await;
    assert!(h.take_now().await.is_empty());
}
