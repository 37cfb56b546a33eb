//! The durable `file` channel end to end (issue 3, "Proof"): SIGKILL at random moments during
//! ingest and drain loses no acknowledged event; a torn tail, a flipped byte and a missing
//! checkpoint are survived and reported; a full disk refuses puts and resumes; a second agent on
//! the same directories refuses to start; a graceful restart keeps a large queue exactly.
//!
//! The tests read the WAL's on-disk format (frozen, version 1; see crates/flumen-wal/src/lib.rs)
//! to find record boundaries, so the damage they do lands exactly where they intend:
//!
//! ```text
//! segment := "FLUMWAL1" | segment_id u64le | record*
//! record  := len u32le | crc u32le | kind u8 (1 = PUT, 2 = TAKE) | body     (len = 1 + body)
//! PUT     := first_seq u64le | count u32le | (payload_len u32le | payload_crc u32le | payload){count}
//! payload := version u8 | header_count u32le | (klen u32le | key | vlen u32le | value)* | body
//! ```

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::*;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// xorshift64*: a fixed-seed PRNG so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// netcat source → file channel → file_roll sink. `{port}`, `{sinkdir}` and `{channel_extra}`
/// are filled in by the test; `{dir}` by the harness.
const PIPELINE: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = true
a1.sources.r1.max-line-length = {maxline}
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {dir}/checkpoint
a1.channels.c1.dataDirs = {dir}/data
a1.channels.c1.minimumRequiredSpace = 1048576
{channel_extra}
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {sinkdir}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 100
"#;

/// A sink directory that cannot be created: every delivery fails and is rolled back.
const BROKEN_SINK: &str = "/proc/flumen-cannot-create/x";

fn pipeline(port: u16, sinkdir: &str, channel_extra: &str) -> String {
    PIPELINE
        .replace("{port}", &port.to_string())
        .replace("{maxline}", "512")
        .replace("{sinkdir}", sinkdir)
        .replace("{channel_extra}", channel_extra)
}

/// One decoded WAL record.
#[derive(Debug)]
struct Record {
    /// Offset of the record's first byte (its `len` field) in the segment.
    offset: u64,
    /// Whole record size, header included.
    size: u64,
    kind: u8,
    /// The event bodies, for a PUT record.
    bodies: Vec<Vec<u8>>,
}

const SEGMENT_HEADER: u64 = 16;
const KIND_PUT: u8 = 1;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The event body inside an encoded payload (see the module comment).
fn event_body(payload: &[u8]) -> Option<Vec<u8>> {
    let headers = u32_at(payload, 1)?;
    let mut at = 5usize;
    for _ in 0..headers * 2 {
        at += 4 + u32_at(payload, at)? as usize;
    }
    Some(payload.get(at..)?.to_vec())
}

/// The complete records of a segment, in order; stops at the first incomplete one.
fn records(path: &Path) -> Vec<Record> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"FLUMWAL1",
        "{} is not a segment",
        path.display()
    );
    let mut out = Vec::new();
    let mut off = SEGMENT_HEADER as usize;
    while let Some(len) = u32_at(&bytes, off) {
        let end = off + 8 + len as usize;
        if len == 0 || end > bytes.len() {
            break;
        }
        let kind = bytes[off + 8];
        let body = &bytes[off + 9..end];
        let mut bodies = Vec::new();
        if kind == KIND_PUT {
            let count = u32_at(body, 8).unwrap_or(0);
            let mut at = 12usize;
            for _ in 0..count {
                let Some(n) = u32_at(body, at) else { break };
                let Some(p) = body.get(at + 8..at + 8 + n as usize) else {
                    break;
                };
                bodies.extend(event_body(p));
                at += 8 + n as usize;
            }
        }
        out.push(Record {
            offset: off as u64,
            size: (end - off) as u64,
            kind,
            bodies,
        });
        off = end;
    }
    out
}

/// Every `log-*.wal` in `dirs`, oldest first (segment ids are zero-padded, so names sort).
fn segments(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("log-") && name.ends_with(".wal")
        })
        .collect();
    all.sort_by_key(|p| p.file_name().unwrap().to_owned());
    all
}

/// Number of events in the complete PUT records of every segment.
fn events_on_disk(dirs: &[PathBuf]) -> usize {
    segments(dirs)
        .iter()
        .flat_map(|s| records(s))
        .filter(|r| r.kind == KIND_PUT)
        .map(|r| r.bodies.len())
        .sum()
}

/// True when some line of `log` names `file` (by file name) and `offset` (as a whole number).
fn log_names(log: &str, file: &Path, offset: u64) -> bool {
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let off = offset.to_string();
    log.lines().filter(|l| l.contains(&name)).any(|l| {
        l.match_indices(&off).any(|(i, _)| {
            let before = l[..i].chars().next_back();
            let after = l[i + off.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit())
        })
    })
}

/// Sends `lines` one batch at a time (each batch answered before the next is sent), asserting
/// every line is answered `OK`.
fn send_all_ok(port: u16, batches: &[Vec<String>]) {
    let mut s = connect(port);
    for b in batches {
        let replies = send_acked(&mut s, b);
        assert!(replies.iter().all(|r| r == "OK"), "{replies:?}");
    }
}

fn batches(prefix: &str, n_batches: usize, per_batch: usize) -> Vec<Vec<String>> {
    (0..n_batches)
        .map(|b| {
            (0..per_batch)
                .map(|i| format!("{prefix}-{:06}", b * per_batch + i))
                .collect()
        })
        .collect()
}

/// Waits until `dir` holds exactly `want` (order and count), allowing `limit`; then waits a bit
/// longer to see that nothing more (a duplicate) arrives.
fn expect_exactly(agent: &Agent, dir: &Path, want: &[String], limit: Duration) {
    let mut got = Vec::new();
    let ok = wait_for_within(limit, || {
        got = lines_in(dir);
        got.len() >= want.len()
    });
    assert!(
        ok,
        "expected {} lines in {}, found {}; first missing: {:?}; log:\n{}",
        want.len(),
        dir.display(),
        got.len(),
        want.iter().find(|w| !got.contains(w)),
        agent.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let got = lines_in(dir);
    if got != want {
        let seen: HashSet<&String> = got.iter().collect();
        let missing: Vec<&String> = want.iter().filter(|w| !seen.contains(w)).collect();
        let wanted: HashSet<&String> = want.iter().collect();
        let extra: Vec<&String> = got.iter().filter(|g| !wanted.contains(g)).collect();
        panic!(
            "delivered lines differ: {} delivered, {} expected; missing {:?}; unexpected {:?}; \
             duplicates {}; first 5 delivered {:?}; log:\n{}",
            got.len(),
            want.len(),
            &missing[..missing.len().min(10)],
            &extra[..extra.len().min(10)],
            got.len() - seen.len(),
            &got[..got.len().min(5)],
            agent.log()
        );
    }
}

fn assert_no_panic(log: &str) {
    assert!(!log.contains("panicked"), "the agent panicked:\n{log}");
}

// ---------------------------------------------------------------------------------------------
// 1. Crash loop
// ---------------------------------------------------------------------------------------------

/// Shared between the test and its client thread.
#[derive(Default)]
struct Client {
    /// Line numbers answered `OK`.
    ok: Mutex<Vec<u32>>,
    /// Numbers sent so far (the next line's number).
    sent: AtomicU64,
    failed: AtomicU64,
    unanswered: AtomicU64,
    sending: AtomicBool,
    /// The thread is between batches with `sending` off.
    idle: AtomicBool,
    stop: AtomicBool,
}

/// Sends numbered lines in small batches while `sending` is on, reconnecting whenever the agent
/// goes away; never sends a number twice.
fn client_thread(client: Arc<Client>, port: u16, seed: u64) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut rng = Rng(seed);
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    let mut next: u32 = 0;
    while !client.stop.load(Ordering::SeqCst) {
        // Lines are `ev-` and six digits: never go past 999999.
        if !client.sending.load(Ordering::SeqCst) || next > 999_000 {
            client.idle.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        client.idle.store(false, Ordering::SeqCst);
        if conn.is_none() {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
                    let r = BufReader::new(s.try_clone().unwrap());
                    conn = Some((s, r));
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
        }
        let (stream, reader) = conn.as_mut().unwrap();
        let k = rng.range(1, 9) as u32;
        let numbers: Vec<u32> = (next..next + k).collect();
        next += k;
        client.sent.store(u64::from(next), Ordering::SeqCst);
        let mut payload = String::new();
        for n in &numbers {
            payload.push_str(&format!("ev-{n:06}\n"));
        }
        if stream.write_all(payload.as_bytes()).is_err() {
            client.unanswered.fetch_add(u64::from(k), Ordering::SeqCst);
            conn = None;
            continue;
        }
        for (i, n) in numbers.iter().enumerate() {
            let mut reply = String::new();
            match reader.read_line(&mut reply) {
                Ok(0) | Err(_) => {
                    client
                        .unanswered
                        .fetch_add((numbers.len() - i) as u64, Ordering::SeqCst);
                    conn = None;
                    break;
                }
                Ok(_) if reply.trim_end() == "OK" => client.ok.lock().unwrap().push(*n),
                Ok(_) => {
                    client.failed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }
}

#[test]
fn crash_loop_loses_no_acknowledged_event() {
    const KILLS: usize = 8;
    const SINK_BATCH: usize = 100;
    let started = Instant::now();
    let port = free_port();
    let conf = pipeline(
        port,
        "{dir}/out",
        "a1.channels.c1.checkpointInterval = 500\na1.channels.c1.maxFileSize = 1048576\n\
         a1.channels.c1.dataDirs = {dir}/data1,{dir}/data2",
    )
    .replace("a1.channels.c1.dataDirs = {dir}/data\n", "");
    let mut agent = Agent::start(&conf);
    let data_dirs = [agent.path("data1"), agent.path("data2")];
    let mut logs = Vec::new();

    let client = Arc::new(Client::default());
    client.sending.store(true, Ordering::SeqCst);
    let thread = {
        let client = client.clone();
        std::thread::spawn(move || client_thread(client, port, 0x5EED_0001))
    };

    let mut rng = Rng(0xF1_0E_C4_A5_u64);
    for cycle in 0..KILLS {
        client.sending.store(true, Ordering::SeqCst);
        let run = rng.range(300, 1500);
        std::thread::sleep(Duration::from_millis(run));
        let drain_only = cycle % 3 == 1;
        if drain_only {
            // Kill while the sink drains what the client sent.
            client.sending.store(false, Ordering::SeqCst);
            assert!(
                wait_for(|| client.idle.load(Ordering::SeqCst)),
                "client never paused"
            );
            std::thread::sleep(Duration::from_millis(rng.range(0, 40)));
        }
        let ok_before = client.ok.lock().unwrap().len();
        let status = agent.kill9();
        eprintln!(
            "cycle {cycle}: ran {run} ms{}, killed ({status}); {} sent, {ok_before} OK so far",
            if drain_only { " then drained" } else { "" },
            client.sent.load(Ordering::SeqCst),
        );
        logs.push(agent.restart());
    }

    // Let the last agent run with the client on, then stop the client and let it drain.
    client.sending.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1000));
    client.stop.store(true, Ordering::SeqCst);
    thread.join().unwrap();
    let ok: Vec<u32> = client.ok.lock().unwrap().clone();
    let ok_set: HashSet<u32> = ok.iter().copied().collect();
    assert!(
        ok.len() > 100,
        "too few events acknowledged ({}): the test proves nothing; log:\n{}",
        ok.len(),
        agent.log()
    );

    let pattern = |l: &str| {
        l.len() == 9 && l.starts_with("ev-") && l[3..].bytes().all(|b| b.is_ascii_digit())
    };
    let delivered_numbers = |lines: &[String]| -> Vec<u32> {
        lines
            .iter()
            .filter(|l| pattern(l))
            .map(|l| l[3..].parse().unwrap())
            .collect()
    };
    let out = agent.path("out");
    let mut missing = Vec::new();
    let drained = wait_for_within(Duration::from_secs(60), || {
        let got: HashSet<u32> = delivered_numbers(&lines_in(&out)).into_iter().collect();
        missing = ok.iter().filter(|n| !got.contains(n)).copied().collect();
        missing.is_empty()
    });

    // Consumed segments are deleted: once drained, disk use is back to about one segment.
    let bounded = wait_for(|| segments(&data_dirs).len() <= 2);
    let left = segments(&data_dirs);

    let status = agent.terminate();
    logs.push(agent.log());
    let all_logs = logs.join("\n---- restart ----\n");
    assert_no_panic(&all_logs);

    let lines = lines_in(&out);
    let numbers = delivered_numbers(&lines);
    let torn = lines.len() - numbers.len();
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for n in &numbers {
        *counts.entry(*n).or_default() += 1;
    }
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    let sent = client.sent.load(Ordering::SeqCst);
    let never_sent: Vec<&u32> = counts.keys().filter(|n| u64::from(**n) >= sent).collect();
    let delivered_not_ok = counts.keys().filter(|n| !ok_set.contains(n)).count();
    eprintln!(
        "crash loop: {KILLS} kills; sent {sent}, OK {}, FAILED {}, unanswered {}; delivered {} \
         lines ({} distinct, {duplicates} duplicates, {delivered_not_ok} delivered without an OK, \
         {torn} torn lines ignored); {:.1} s",
        ok.len(),
        client.failed.load(Ordering::SeqCst),
        client.unanswered.load(Ordering::SeqCst),
        numbers.len(),
        counts.len(),
        started.elapsed().as_secs_f64()
    );

    assert!(
        drained && missing.is_empty(),
        "{} acknowledged events never arrived, first {:?}; logs:\n{all_logs}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert!(status.success(), "exit {status:?}; log:\n{all_logs}");
    assert!(
        never_sent.is_empty(),
        "delivered lines never sent: {never_sent:?}"
    );
    assert!(
        duplicates <= KILLS * SINK_BATCH,
        "{duplicates} duplicates exceed {KILLS} kills × batch {SINK_BATCH}"
    );
    assert!(
        bounded,
        "consumed segments were not deleted after draining: {left:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2.–4. Damage on disk
// ---------------------------------------------------------------------------------------------

/// Starts the pipeline with a sink that cannot deliver, sends `batches` (all must be OK'd) and
/// kills the agent; returns it (dead) with the lines sent.
fn fill_and_kill(
    prefix: &str,
    n_batches: usize,
    per_batch: usize,
    extra: &str,
) -> (Agent, u16, Vec<Vec<String>>) {
    let port = free_port();
    let mut agent = Agent::start(&pipeline(port, BROKEN_SINK, extra));
    let sent = batches(prefix, n_batches, per_batch);
    send_all_ok(port, &sent);
    agent.kill9();
    assert_no_panic(&agent.log());
    (agent, port, sent)
}

#[test]
fn torn_tail_is_truncated_and_reported() {
    let started = Instant::now();
    let (mut agent, port, sent) = fill_and_kill("tt", 10, 10, "");
    let segs = segments(&[agent.path("data")]);
    let newest = segs.last().expect("no segment written").clone();
    let recs = records(&newest);
    let last = recs.last().expect("no record in the newest segment");
    assert_eq!(last.kind, KIND_PUT, "{recs:?}");
    let file_len = std::fs::metadata(&newest).unwrap().len();
    assert_eq!(
        last.offset + last.size,
        file_len,
        "trailing bytes after the last record"
    );
    // Tear the last record: cut its last 3 bytes (it is a put commit that never returned).
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    f.set_len(file_len - 3).unwrap();
    drop(f);
    let lost: HashSet<String> = last
        .bodies
        .iter()
        .map(|b| String::from_utf8(b.clone()).unwrap())
        .collect();
    assert!(!lost.is_empty());
    let last_batch: HashSet<&String> = sent.last().unwrap().iter().collect();
    assert!(
        lost.iter().all(|l| last_batch.contains(l)),
        "the last record holds events of earlier batches: {lost:?}"
    );

    agent.rewrite_conf(&pipeline(port, "{dir}/out", ""));
    agent.restart();
    let want: Vec<String> = sent
        .concat()
        .into_iter()
        .filter(|l| !lost.contains(l))
        .collect();
    expect_exactly(&agent, &agent.path("out"), &want, DEADLINE);
    let log = agent.log();
    assert_no_panic(&log);
    assert!(
        log_names(&log, &newest, last.offset),
        "the log does not name {} and offset {}:\n{log}",
        newest.display(),
        last.offset
    );
    // The channel keeps working after the truncation.
    let more = batches("tt-after", 2, 5);
    send_all_ok(port, &more);
    let want: Vec<String> = want.into_iter().chain(more.concat()).collect();
    expect_exactly(&agent, &agent.path("out"), &want, DEADLINE);
    assert!(agent.terminate().success());
    eprintln!(
        "torn tail: {} sent, {} lost with the torn record at {}:{}, {} delivered; {:.1} s",
        sent.concat().len(),
        lost.len(),
        newest.display(),
        last.offset,
        sent.concat().len() - lost.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn flipped_byte_in_the_middle_is_reported_and_the_rest_recovered() {
    let started = Instant::now();
    let (mut agent, port, sent) =
        fill_and_kill("fb", 10, 10, "a1.channels.c1.checkpointInterval = 600000");
    let segs = segments(&[agent.path("data")]);
    assert_eq!(segs.len(), 1, "{segs:?}");
    let seg = segs[0].clone();
    let recs = records(&seg);
    assert!(recs.len() >= 4, "expected several records: {recs:?}");
    // An early record: not the first, far from the tail; flip the last byte of its payload
    // (inside an event body), which only its checksum can catch.
    let victim = &recs[1];
    assert_eq!(victim.kind, KIND_PUT);
    let lost: HashSet<String> = victim
        .bodies
        .iter()
        .map(|b| String::from_utf8(b.clone()).unwrap())
        .collect();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = (victim.offset + victim.size - 1) as usize;
    bytes[at] ^= 0x5A;
    std::fs::write(&seg, &bytes).unwrap();

    agent.rewrite_conf(&pipeline(
        port,
        "{dir}/out",
        "a1.channels.c1.checkpointInterval = 600000",
    ));
    agent.restart();
    let want: Vec<String> = sent
        .concat()
        .into_iter()
        .filter(|l| !lost.contains(l))
        .collect();
    expect_exactly(&agent, &agent.path("out"), &want, DEADLINE);
    let log = agent.log();
    assert_no_panic(&log);
    assert!(
        log_names(&log, &seg, victim.offset),
        "the log does not name {} and offset {}:\n{log}",
        seg.display(),
        victim.offset
    );
    assert!(agent.terminate().success());
    eprintln!(
        "flipped byte: {} sent, record {}:{} ({} events) damaged, {} delivered; {:.1} s",
        sent.concat().len(),
        seg.display(),
        victim.offset,
        lost.len(),
        want.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The checkpoint written at a graceful stop covers every record, so a restart does not re-read
/// them; a byte flipped afterwards inside an event must still be caught by the record's checksum
/// when the event is read, not delivered as different data, and must not stop the other events.
#[test]
fn flipped_byte_under_a_checkpoint_is_not_delivered_silently() {
    let started = Instant::now();
    let port = free_port();
    let mut agent = Agent::start(&pipeline(port, BROKEN_SINK, ""));
    let sent = batches("fc", 5, 10);
    send_all_ok(port, &sent);
    assert!(agent.terminate().success(), "log:\n{}", agent.log());
    assert!(agent.path("checkpoint/checkpoint").is_file());
    let segs = segments(&[agent.path("data")]);
    let seg = segs[0].clone();
    let recs = records(&seg);
    assert!(recs.len() >= 3, "{recs:?}");
    let victim = &recs[1];
    assert_eq!(victim.kind, KIND_PUT);
    let damaged: HashSet<String> = victim
        .bodies
        .iter()
        .map(|b| String::from_utf8(b.clone()).unwrap())
        .collect();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = (victim.offset + victim.size - 1) as usize;
    bytes[at] ^= 0x5A;
    std::fs::write(&seg, &bytes).unwrap();

    agent.rewrite_conf(&pipeline(port, "{dir}/out", ""));
    agent.restart();
    let intact: Vec<String> = sent
        .concat()
        .into_iter()
        .filter(|l| !damaged.contains(l))
        .collect();
    let out = agent.path("out");
    let all_intact = wait_for(|| {
        let got: HashSet<String> = lines_in(&out).into_iter().collect();
        intact.iter().all(|l| got.contains(l))
    });
    std::thread::sleep(Duration::from_millis(500));
    let got = lines_in(&out);
    let log = agent.log();
    let sent_set: HashSet<String> = sent.concat().into_iter().collect();
    let garbage: Vec<&String> = got.iter().filter(|l| !sent_set.contains(*l)).collect();
    let distinct: HashSet<&String> = got.iter().collect();
    eprintln!(
        "flipped byte under a checkpoint: record {}:{} ({} events) damaged; {} delivered, {} of \
         the damaged record, garbage {:?}; {:.1} s",
        seg.display(),
        victim.offset,
        damaged.len(),
        got.len(),
        got.iter().filter(|l| damaged.contains(*l)).count(),
        garbage,
        started.elapsed().as_secs_f64()
    );
    assert_no_panic(&log);
    assert!(
        garbage.is_empty(),
        "damaged data delivered as events: {garbage:?}; log:\n{}",
        condensed(&log)
    );
    assert!(
        all_intact,
        "intact events not delivered: {} of {}; log:\n{}",
        intact.iter().filter(|l| distinct.contains(l)).count(),
        intact.len(),
        condensed(&log)
    );
    assert_eq!(got.len(), distinct.len(), "duplicates delivered");
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        log.lines().any(|l| l.contains(&name)),
        "the log does not name the damaged file {name}:\n{}",
        condensed(&log)
    );
    assert!(agent.terminate().success());
}

/// Graceful stop with events queued (the checkpoint is written at close), then `damage` the
/// checkpoint, restart with a working sink: every event arrives once, in order.
fn checkpoint_damage(prefix: &str, damage: impl FnOnce(&Path)) -> Agent {
    let port = free_port();
    let mut agent = Agent::start(&pipeline(port, BROKEN_SINK, ""));
    let sent = batches(prefix, 5, 20);
    send_all_ok(port, &sent);
    let status = agent.terminate();
    assert!(status.success(), "exit {status:?}; log:\n{}", agent.log());
    let checkpoint = agent.path("checkpoint/checkpoint");
    assert!(
        checkpoint.is_file(),
        "no checkpoint written at close: {:?}",
        std::fs::read_dir(agent.path("checkpoint")).map(|d| d.count())
    );
    damage(&checkpoint);
    agent.rewrite_conf(&pipeline(port, "{dir}/out", ""));
    agent.restart();
    expect_exactly(&agent, &agent.path("out"), &sent.concat(), DEADLINE);
    assert_no_panic(&agent.log());
    assert!(agent.terminate().success());
    agent
}

#[test]
fn missing_checkpoint_falls_back_to_full_replay() {
    let started = Instant::now();
    let agent = checkpoint_damage("mc", |c| std::fs::remove_file(c).unwrap());
    let log = agent.log();
    assert!(
        log.to_lowercase().contains("missing"),
        "the log does not say the checkpoint was missing:\n{log}"
    );
    eprintln!(
        "missing checkpoint: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn damaged_checkpoint_falls_back_to_full_replay() {
    let started = Instant::now();
    let agent = checkpoint_damage("dc", |c| {
        let mut b = std::fs::read(c).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0xFF;
        std::fs::write(c, b).unwrap();
    });
    let log = agent.log();
    assert!(
        log.to_lowercase().contains("damaged"),
        "the log does not say the checkpoint was damaged:\n{log}"
    );
    eprintln!(
        "damaged checkpoint: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Disk full
// ---------------------------------------------------------------------------------------------

/// A small tmpfs mounted for one test; unmounted (lazily) and removed on drop, failure included.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (e.g. "8m"), or returns why it cannot.
    fn mount(size: &str) -> Result<SmallDisk, String> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return Err("not running as root".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Sends one batch on a (re)connected stream; returns the replies, or None when the
/// connection broke.
fn try_send(
    conn: &mut Option<(TcpStream, BufReader<TcpStream>)>,
    port: u16,
    lines: &[String],
) -> Option<Vec<String>> {
    if conn.is_none() {
        let s = connect(port);
        let r = BufReader::new(s.try_clone().unwrap());
        *conn = Some((s, r));
    }
    let (s, r) = conn.as_mut().unwrap();
    let mut payload = String::new();
    for l in lines {
        payload.push_str(l);
        payload.push('\n');
    }
    if s.write_all(payload.as_bytes()).is_err() {
        *conn = None;
        return None;
    }
    let mut replies = Vec::new();
    for _ in lines {
        let mut reply = String::new();
        match r.read_line(&mut reply) {
            Ok(n) if n > 0 => replies.push(reply.trim_end().to_owned()),
            _ => {
                *conn = None;
                return None;
            }
        }
    }
    Some(replies)
}

fn disk_conf(port: u16, sinkdir: &str, small: &Path, maxline: usize) -> String {
    let extra = format!(
        "a1.channels.c1.checkpointDir = {small}/checkpoint\n\
         a1.channels.c1.dataDirs = {small}/data\n\
         a1.channels.c1.maxFileSize = 1048576\n\
         a1.channels.c1.checkpointInterval = 1000\n\
         a1.channels.c1.keep-alive = 1\n\
         a1.channels.c1.capacity = 200000\n",
        small = small.display()
    );
    PIPELINE
        .replace("a1.channels.c1.checkpointDir = {dir}/checkpoint\n", "")
        .replace("a1.channels.c1.dataDirs = {dir}/data\n", "")
        .replace("{port}", &port.to_string())
        .replace("{maxline}", &maxline.to_string())
        .replace("{sinkdir}", sinkdir)
        .replace("{channel_extra}", &extra)
}

/// Free bytes for unprivileged users on the filesystem holding `p` (`df`).
fn df_avail(p: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The log without timestamps, runs of equal lines collapsed (`[×n]`).
fn condensed(log: &str) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for l in log.lines() {
        let text = l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned();
        match out.last_mut() {
            Some((last, n)) if *last == text => *n += 1,
            _ => out.push((text, 1)),
        }
    }
    out.iter()
        .map(|(l, n)| {
            if *n > 1 {
                format!("{l} [×{n}]\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

/// netcat → file channel on an 8 MiB tmpfs (minimumRequiredSpace 1 MiB) → a sink that cannot
/// deliver. Sends 500-byte events in batches of `batch` until the agent answers FAILED, fixes
/// the sink by a reload (the channel is kept), waits until puts are accepted again (consumed
/// segments deleted) and checks that every OK'd event arrives, once, in order. With
/// `check_reserve`, also requires that the refusal came from the minimumRequiredSpace check
/// while that much space was still free, not from the disk running full.
fn disk_full_scenario(name: &str, batch: usize, check_reserve: bool) {
    let started = Instant::now();
    let disk = match SmallDisk::mount("8m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED {name}: {why}");
            return;
        }
    };
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("flume.conf");
    std::fs::write(
        &conf,
        render(&disk_conf(port, BROKEN_SINK, disk.path(), 1024), dir.path()),
    )
    .unwrap();
    let mut agent = Agent::start_in(dir, conf);
    let pad = "x".repeat(490);
    let line = |n: usize| format!("df-{n:06}-{pad}");

    // Fill the disk: ~7 MiB of 500-byte events until the agent refuses.
    let mut conn = None;
    let mut ok = Vec::new();
    let mut next = 0usize;
    let mut refusal = None;
    let fill_deadline = Instant::now() + Duration::from_secs(60);
    while refusal.is_none() {
        assert!(
            Instant::now() < fill_deadline,
            "never refused after {} OK'd lines; log:\n{}",
            ok.len(),
            agent.log()
        );
        let lines: Vec<String> = (next..next + batch).map(line).collect();
        next += batch;
        let replies = try_send(&mut conn, port, &lines)
            .unwrap_or_else(|| panic!("connection lost; log:\n{}", agent.log()));
        for (l, r) in lines.into_iter().zip(replies) {
            if r == "OK" {
                ok.push(l);
            } else {
                assert!(r.starts_with("FAILED"), "{r}");
                refusal.get_or_insert(r);
            }
        }
    }
    let refusal = refusal.unwrap();
    let free_at_refusal = df_avail(disk.path());
    let refused_at = ok.len();
    eprintln!(
        "{name}: refused after {refused_at} OK'd events ({} KiB), {free_at_refusal} bytes free: {refusal}",
        refused_at * 501 / 1024,
    );
    // Still refused a moment later (nothing drains; the free-space reading is fresh).
    std::thread::sleep(Duration::from_millis(300));
    let lines: Vec<String> = (next..next + 5).map(line).collect();
    next += 5;
    let replies = try_send(&mut conn, port, &lines).unwrap();
    for (l, r) in lines.into_iter().zip(&replies) {
        if r == "OK" {
            ok.push(l);
        }
    }
    assert!(
        replies.iter().all(|r| r.starts_with("FAILED")),
        "accepted while full: {replies:?}"
    );
    // Checked at the end, so a failure also shows whether the channel recovered.
    let reserve_kept = refusal.contains("not enough free space") && free_at_refusal >= 512 * 1024;

    // Fix the sink: the channel is unchanged, so it is kept with its events, and drains.
    agent.rewrite_conf(&disk_conf(port, "{dir}/out", disk.path(), 1024));
    agent.expect_log("Configuration reloaded");
    let mut resumed = false;
    let resume_deadline = Instant::now() + Duration::from_secs(30);
    let mut last_refusal = String::new();
    while Instant::now() < resume_deadline {
        let lines: Vec<String> = (next..next + 10).map(line).collect();
        next += 10;
        let Some(replies) = try_send(&mut conn, port, &lines) else {
            continue;
        };
        let mut all_ok = true;
        for (l, r) in lines.into_iter().zip(replies) {
            if r == "OK" {
                ok.push(l);
            } else {
                all_ok = false;
                last_refusal = r;
            }
        }
        if all_ok {
            resumed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if !resumed {
        let got = lines_in(&agent.path("out"));
        let distinct: HashSet<&String> = got.iter().collect();
        panic!(
            "puts never worked again after the sink was fixed (30 s): {} of {} OK'd events \
             delivered ({} lines, {} distinct); {} bytes free; last refusal {last_refusal:?}; \
             segments {:?}; checkpoint dir {:?}; condensed log:\n{}",
            ok.iter().filter(|l| distinct.contains(l)).count(),
            ok.len(),
            got.len(),
            distinct.len(),
            df_avail(disk.path()),
            segments(&[disk.path().join("data")])
                .iter()
                .map(|p| (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
                ))
                .collect::<Vec<_>>(),
            std::fs::read_dir(disk.path().join("checkpoint"))
                .map(|d| d
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect::<Vec<_>>())
                .unwrap_or_default(),
            condensed(&agent.log())
        );
    }
    eprintln!(
        "{name}: resumed after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    expect_exactly(&agent, &agent.path("out"), &ok, Duration::from_secs(60));
    assert_no_panic(&agent.log());
    assert!(agent.terminate().success());
    drop(agent);
    drop(disk);
    eprintln!(
        "{name}: {} events OK'd in all; {:.1} s",
        ok.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        !check_reserve || reserve_kept,
        "minimumRequiredSpace (1 MiB) was not kept free: {free_at_refusal} bytes free when puts \
         were first refused with {refusal:?}"
    );
}

#[test]
fn disk_full_refuses_puts_then_resumes() {
    disk_full_scenario("disk_full_refuses_puts_then_resumes", 50, false);
}

/// Fast ingest (big batches, tmpfs fsyncs cost nothing) must not run the disk full: the
/// channel stops accepting while minimumRequiredSpace is still free, so takes and checkpoints
/// have room and the channel can drain and resume.
#[test]
fn fast_ingest_keeps_minimum_required_space_free() {
    disk_full_scenario("fast_ingest_keeps_minimum_required_space_free", 500, true);
}

/// Another process fills the disk to the last byte while events are queued: puts are refused,
/// the sink (fixed by a reload) drains what it can, and once the other process frees its space
/// the channel delivers everything it acknowledged and accepts puts again, by itself.
#[test]
fn disk_filled_by_another_process_resumes_when_space_returns() {
    let name = "disk_filled_by_another_process_resumes_when_space_returns";
    let started = Instant::now();
    let disk = match SmallDisk::mount("8m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED {name}: {why}");
            return;
        }
    };
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("flume.conf");
    std::fs::write(
        &conf,
        render(&disk_conf(port, BROKEN_SINK, disk.path(), 1024), dir.path()),
    )
    .unwrap();
    let mut agent = Agent::start_in(dir, conf);
    let pad = "z".repeat(490);
    let line = |n: usize| format!("fo-{n:06}-{pad}");
    let mut conn = None;
    // About 3 MiB queued.
    let mut ok: Vec<String> = Vec::new();
    for b in 0..60 {
        let lines: Vec<String> = (b * 100..b * 100 + 100).map(line).collect();
        assert_eq!(try_send(&mut conn, port, &lines).unwrap(), vec!["OK"; 100]);
        ok.extend(lines);
    }
    let mut next = 6000;
    // Another process takes every free byte.
    let filler = disk.path().join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
    }
    std::thread::sleep(Duration::from_millis(300));
    let lines: Vec<String> = (next..next + 5).map(line).collect();
    next += 5;
    let replies = try_send(&mut conn, port, &lines).unwrap();
    assert!(
        replies.iter().all(|r| r.starts_with("FAILED")),
        "accepted on a full disk: {replies:?}"
    );

    // The sink is fixed while the disk is full; then the space comes back.
    agent.rewrite_conf(&disk_conf(port, "{dir}/out", disk.path(), 1024));
    agent.expect_log("Configuration reloaded");
    std::thread::sleep(Duration::from_secs(2));
    let delivered_while_full: HashSet<String> = lines_in(&agent.path("out")).into_iter().collect();
    let lines_while_full = lines_in(&agent.path("out")).len();
    std::fs::remove_file(&filler).unwrap();
    let mut resumed = false;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && !resumed {
        let lines: Vec<String> = (next..next + 10).map(line).collect();
        next += 10;
        if let Some(replies) = try_send(&mut conn, port, &lines) {
            resumed = replies.iter().all(|r| r == "OK");
            for (l, r) in lines.into_iter().zip(replies) {
                if r == "OK" {
                    ok.push(l);
                }
            }
        }
        if !resumed {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let log = agent.log();
    assert!(
        resumed,
        "puts did not resume after the space returned; log:\n{}",
        condensed(&log)
    );
    let out = agent.path("out");
    let ok_set: HashSet<&String> = ok.iter().collect();
    let mut got = Vec::new();
    let all = wait_for(|| {
        got = lines_in(&out);
        let set: HashSet<&String> = got.iter().collect();
        ok_set.iter().all(|l| set.contains(*l))
    });
    std::thread::sleep(Duration::from_millis(500));
    got = lines_in(&out);
    let distinct: HashSet<&String> = got.iter().collect();
    eprintln!(
        "{name}: {} OK'd; while the disk was full the sink delivered {} ({} lines); in the end \
         {} lines, {} duplicates; {:.1} s",
        ok.len(),
        delivered_while_full.len(),
        lines_while_full,
        got.len(),
        got.len() - distinct.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        all,
        "{} of {} OK'd events never arrived; log:\n{}",
        ok.iter().filter(|l| !distinct.contains(l)).count(),
        ok.len(),
        condensed(&log)
    );
    assert!(
        distinct.iter().all(|l| ok_set.contains(*l)),
        "unexpected lines delivered"
    );
    assert_no_panic(&log);
    // No agent was killed: a take whose commit fails after the sink wrote its batch is
    // delivered again, so "takes keep working on a full disk" means no duplicates here.
    assert_eq!(
        got.len(),
        distinct.len(),
        "events delivered twice without any crash (take commits failed on the full disk); \
         log:\n{}",
        condensed(&log)
    );
    assert!(agent.terminate().success());
    drop(agent);
    drop(disk);
}

#[test]
fn no_space_mid_write_fails_the_batch_and_keeps_the_log_valid() {
    let started = Instant::now();
    let disk = match SmallDisk::mount("8m") {
        Ok(d) => d,
        Err(why) => {
            eprintln!("SKIPPED no_space_mid_write_fails_the_batch_and_keeps_the_log_valid: {why}");
            return;
        }
    };
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("flume.conf");
    let max_line = 4 << 20;
    std::fs::write(
        &conf,
        render(
            &disk_conf(port, BROKEN_SINK, disk.path(), max_line),
            dir.path(),
        ),
    )
    .unwrap();
    let mut agent = Agent::start_in(dir, conf);
    let mut conn = None;
    let small = |n: usize| format!("ns-{n:06}");
    let first: Vec<String> = (0..20).map(small).collect();
    assert_eq!(try_send(&mut conn, port, &first).unwrap(), vec!["OK"; 20]);

    // Another process fills the disk, leaving 1.5 MiB: above minimumRequiredSpace (1 MiB), so the
    // channel tries; a 3 MiB event then hits ENOSPC in the middle of its write.
    let free = df_avail;
    let filler = disk.path().join("filler");
    let room = free(disk.path());
    let fill = room.saturating_sub(1536 * 1024);
    std::fs::write(&filler, vec![0u8; fill as usize]).unwrap();
    eprintln!("filled: {} bytes free", free(disk.path()));
    std::thread::sleep(Duration::from_millis(500));
    let big = format!("ns-big-{}", "y".repeat(3 << 20));
    let replies = try_send(&mut conn, port, std::slice::from_ref(&big)).unwrap();
    assert!(
        replies[0].starts_with("FAILED"),
        "a 3 MiB event was accepted with 1.5 MiB free: {replies:?}"
    );
    eprintln!("big event: {}", replies[0]);
    // The failed write was cut back: small events still fit.
    let second: Vec<String> = (20..40).map(small).collect();
    let replies = try_send(&mut conn, port, &second).unwrap();
    assert!(
        replies.iter().all(|r| r == "OK"),
        "small events refused after a failed big write ({} bytes free): {replies:?}; log:\n{}",
        free(disk.path()),
        agent.log()
    );

    // Below minimumRequiredSpace: refused; space returns: accepted again, by itself.
    let fill_more = free(disk.path()).saturating_sub(512 * 1024);
    std::fs::write(disk.path().join("filler2"), vec![0u8; fill_more as usize]).unwrap();
    // The channel caches its free-space reading for a short while.
    std::thread::sleep(Duration::from_millis(500));
    let third: Vec<String> = (40..45).map(small).collect();
    let replies = try_send(&mut conn, port, &third).unwrap();
    assert!(
        replies.iter().all(|r| r.starts_with("FAILED")),
        "accepted below minimumRequiredSpace: {replies:?}"
    );
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(disk.path().join("filler2")).unwrap();
    let fourth: Vec<String> = (45..65).map(small).collect();
    let mut ok4 = false;
    assert!(
        wait_for(|| {
            ok4 = try_send(&mut conn, port, &fourth[..1]).is_some_and(|r| r[0] == "OK");
            ok4
        }),
        "puts did not resume when space returned; log:\n{}",
        agent.log()
    );
    assert_eq!(
        try_send(&mut conn, port, &fourth[1..]).unwrap(),
        vec!["OK"; 19]
    );

    // Crash and recover: the log holds exactly the accepted events, nothing reported damaged.
    agent.kill9();
    let before = agent.restart();
    assert_no_panic(&before);
    agent.kill9();
    agent.rewrite_conf(&disk_conf(port, "{dir}/out", disk.path(), max_line));
    agent.restart();
    let want: Vec<String> = first.into_iter().chain(second).chain(fourth).collect();
    expect_exactly(&agent, &agent.path("out"), &want, DEADLINE);
    let log = agent.log();
    assert_no_panic(&log);
    assert!(
        !log.contains("damaged"),
        "recovery found damage after ENOSPC:\n{before}\n----\n{log}"
    );
    assert!(agent.terminate().success());
    drop(agent);
    drop(disk);
    eprintln!(
        "no space mid-write: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Lock
// ---------------------------------------------------------------------------------------------

#[test]
fn second_agent_on_the_same_directories_refuses_to_start() {
    let started = Instant::now();
    let port = free_port();
    let agent = Agent::start(&pipeline(port, "{dir}/out", ""));
    let before = batches("lk", 1, 5);
    send_all_ok(port, &before);

    // Same checkpointDir and dataDirs, another port and sink directory.
    let port2 = free_port();
    let conf2 = agent.path("second.conf");
    std::fs::write(
        &conf2,
        render(&pipeline(port2, "{dir}/out2", ""), agent.dir.path()),
    )
    .unwrap();
    let mut second = Command::new(bin())
        .args(["agent", "-n", "a1", "-f"])
        .arg(&conf2)
        .args(["--no-reload-conf"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut status = None;
    while t0.elapsed() < Duration::from_secs(10) {
        if let Some(s) = second.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if status.is_none() {
        let _ = second.kill();
    }
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let status = status.unwrap_or_else(|| {
        panic!("the second agent is still running after 10 s; stderr:\n{stderr}")
    });
    eprintln!(
        "second agent: {status} after {:?}; stderr:\n{stderr}",
        t0.elapsed()
    );
    assert!(
        !status.success(),
        "the second agent exited successfully; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("locked"),
        "stderr does not say `locked`:\n{stderr}"
    );

    // The first agent still works, with its lock and its events.
    let after = batches("lk-after", 1, 5);
    send_all_ok(port, &after);
    let want: Vec<String> = before.concat().into_iter().chain(after.concat()).collect();
    expect_exactly(&agent, &agent.path("out"), &want, DEADLINE);
    assert!(!agent.path("out2").exists());
    assert_no_panic(&agent.log());
    eprintln!("lock: {:.1} s", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// 7. Graceful restart with a large queue
// ---------------------------------------------------------------------------------------------

const SEQ_TO_FILE: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = 200000
a1.sources.r1.batchSize = 1000
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {dir}/checkpoint
a1.channels.c1.dataDirs = {dir}/data
a1.channels.c1.minimumRequiredSpace = 1048576
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = /proc/flumen-cannot-create/x
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = 1000
"#;

#[test]
fn events_survive_graceful_restart_with_fast_recovery() {
    const N: usize = 200_000;
    let started = Instant::now();
    let mut agent = Agent::start(SEQ_TO_FILE);
    let queued = wait_for_within(Duration::from_secs(120), || {
        agent.log().contains("Sequence generator finished")
    });
    assert!(
        queued,
        "the seq source never finished; log:\n{}",
        agent.log()
    );
    let fill = started.elapsed();
    assert_eq!(events_on_disk(&[agent.path("data")]), N);
    let t = Instant::now();
    let status = agent.terminate();
    let stop = t.elapsed();
    assert!(status.success(), "exit {status:?}; log:\n{}", agent.log());
    assert_no_panic(&agent.log());
    assert!(agent.path("checkpoint/checkpoint").is_file());

    // Restart with nothing feeding the channel (a netcat source nobody talks to) and a sink that
    // works.
    let port = free_port();
    let conf = SEQ_TO_FILE
        .replace(
            "a1.sources.r1.type = seq\na1.sources.r1.totalEvents = 200000\na1.sources.r1.batchSize = 1000\n",
            &format!("a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = {port}\n"),
        )
        .replace("/proc/flumen-cannot-create/x", "{dir}/out");
    assert!(conf.contains("netcat"));
    agent.rewrite_conf(&conf);
    let t = Instant::now();
    agent.restart();
    agent.expect_log("File channel recovered");
    let recovered = t.elapsed();
    let log = agent.log();
    let line = log
        .lines()
        .find(|l| l.contains("File channel recovered"))
        .unwrap()
        .to_owned();
    eprintln!("{line}");
    assert!(
        line.contains("Loaded"),
        "recovery did not use the checkpoint: {line}"
    );
    assert!(
        recovered < Duration::from_secs(5),
        "recovering {N} events took {recovered:?}"
    );

    let out = agent.path("out");
    let t = Instant::now();
    let mut n = 0;
    let ok = wait_for_within(Duration::from_secs(120), || {
        n = lines_in(&out).len();
        n >= N
    });
    assert!(
        ok,
        "only {n} of {N} events delivered; log:\n{}",
        agent.log()
    );
    let drain = t.elapsed();
    assert!(agent.terminate().success());
    let lines = lines_in(&out);
    assert_eq!(lines.len(), N, "duplicates delivered");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, i.to_string(), "line {i} out of order");
    }
    assert_no_panic(&agent.log());
    eprintln!(
        "graceful restart: queued {N} in {fill:?}, stopped in {stop:?}, recovered in {recovered:?}, \
         drained in {drain:?}; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
