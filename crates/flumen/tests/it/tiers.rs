//! Multi-agent tiers with real `flumen` processes (issue 5, "Proof"): three agents fanning in
//! to one collector (Avro, and once over Thrift), and agents whose `load_balance` or `failover`
//! sink group spreads over two collectors, one of which is SIGKILLed mid-flow and restarted.
//!
//! Every agent here is netcat (acks on) -> file channel -> RPC sink(s), so a line answered `OK`
//! is durable on the agent; collectors in the kill tests use a file channel too, so an event
//! the collector acknowledged survives its SIGKILL. Delivery is at least once: a batch in
//! flight when a collector dies may arrive twice (once from the restarted collector's file
//! channel, once through the other collector), and the tests count and bound those duplicates.
//! To make sure a batch *is* in flight at the kill, the collector is first frozen with
//! SIGSTOP and killed once the agent's request waits unread in its socket (`/proc/net/tcp`).
//! Every wait polls with a generous deadline; nothing sleeps to wait for a condition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::util::*;

/// Deadline of every wait in this module (several processes share two cores).
const TIER_DEADLINE: Duration = Duration::from_secs(30);
/// The RPC sinks' `batch-size`: the unit in which duplicates are bounded.
const BATCH: usize = 100;

/// A collector: `{kind}` source -> `{channel}` channel -> file_roll into `{dir}/out`.
const COLLECTOR: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = {kind}
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = {channel}
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.channels.c1.checkpointDir = {dir}/checkpoint
a1.channels.c1.dataDirs = {dir}/data
a1.channels.c1.minimumRequiredSpace = 1048576
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
a1.sinks.k1.sink.rollInterval = 0
"#;

/// An agent: netcat on `{nc}` -> file channel -> the sinks in `{sinks}` (which also declares
/// `a1.sinks` and any sink group).
const AGENT: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {nc}
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {dir}/checkpoint
a1.channels.c1.dataDirs = {dir}/data
a1.channels.c1.minimumRequiredSpace = 1048576
{sinks}
"#;

/// One RPC sink `name` of type `kind` towards `port` on 127.0.0.1.
fn rpc_sink(name: &str, kind: &str, port: u16) -> String {
    format!(
        "a1.sinks.{name}.type = {kind}\n\
         a1.sinks.{name}.channel = c1\n\
         a1.sinks.{name}.hostname = 127.0.0.1\n\
         a1.sinks.{name}.port = {port}\n\
         a1.sinks.{name}.batch-size = {BATCH}\n\
         a1.sinks.{name}.connect-timeout = 2000\n\
         a1.sinks.{name}.request-timeout = 2000\n"
    )
}

/// Starts a collector (`kind` = avro | thrift) on `port` and waits until it accepts
/// connections, so agents started next do not begin in their connect back-off.
fn collector(kind: &str, port: u16, channel: &str) -> Agent {
    let c = Agent::start(
        &COLLECTOR
            .replace("{kind}", kind)
            .replace("{port}", &port.to_string())
            .replace("{channel}", channel),
    );
    wait_listening(&c, port);
    c
}

fn wait_listening(c: &Agent, port: u16) {
    assert!(
        wait_for_within(TIER_DEADLINE, || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "the collector never listened on {port}; log:\n{}",
        tail_lines(&c.log(), 20)
    );
}

fn agent(nc: u16, sinks: &str) -> Agent {
    Agent::start(
        &AGENT
            .replace("{nc}", &nc.to_string())
            .replace("{sinks}", sinks),
    )
}

/// Sends `lines` in acknowledged chunks of `chunk` lines on one connection; every reply must
/// be `OK` (the agent's file channel holds them).
fn send_chunks(nc: u16, lines: &[String], chunk: usize) {
    let mut s = connect(nc);
    for c in lines.chunks(chunk) {
        let replies = send_acked(&mut s, c);
        assert!(replies.iter().all(|r| r == "OK"), "{replies:?}");
    }
}

/// How many times each line occurs in `lines`.
fn counts(lines: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        *m.entry(l).or_insert(0) += 1;
    }
    m
}

/// Waits until every line of `want` is in the union of the outputs of `collectors`; panics
/// with the missing count and every log otherwise.
fn wait_all_arrived(collectors: &[&Agent], want: &[String], agent: &Agent) {
    let want: BTreeSet<&String> = want.iter().collect();
    let mut missing = want.len();
    let ok = wait_for_within(TIER_DEADLINE, || {
        let got: BTreeSet<String> = collectors
            .iter()
            .flat_map(|c| lines_in(&c.path("out")))
            .collect();
        missing = want.iter().filter(|l| !got.contains(**l)).count();
        missing == 0
    });
    assert!(
        ok,
        "{missing} of {} lines never arrived; agent log:\n{}\n{}",
        want.len(),
        tail_lines(&agent.log(), 20),
        collectors
            .iter()
            .map(|c| format!("collector log:\n{}", tail_lines(&c.log(), 20)))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Checks that the union of `outputs` holds exactly `want` plus at most `max_dups` extra
/// copies of lines of `want`; returns the number of duplicates.
fn check_union(outputs: &[Vec<String>], want: &[String], max_dups: usize) -> usize {
    let got = counts(outputs.iter().flatten().cloned());
    let want_set: BTreeSet<&String> = want.iter().collect();
    let stray: Vec<&String> = got.keys().filter(|l| !want_set.contains(l)).collect();
    assert!(stray.is_empty(), "lines never sent arrived: {stray:?}");
    let missing: Vec<&&String> = want_set.iter().filter(|l| !got.contains_key(**l)).collect();
    assert!(
        missing.is_empty(),
        "{} lines lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    let dups: usize = got.values().map(|n| n - 1).sum();
    assert!(
        dups <= max_dups,
        "{dups} duplicated lines, more than the {max_dups} allowed for batches in flight"
    );
    dups
}

/// Lines per chunk of a [`Sender`].
const CHUNK: usize = 50;
/// Pause between two chunks of a [`Sender`]: a steady flow of about 5,000 lines/s that spans
/// the kills and back-offs without flooding two shared cores. It paces; it waits for nothing.
const PACE: Duration = Duration::from_millis(10);
/// Most lines one [`Sender`] sends, so that a test whose condition never comes cannot stream
/// forever.
const SENDER_MAX: usize = 200_000;

/// A thread streaming numbered lines (`<prefix><n:06>`) in acknowledged chunks of [`CHUNK`]
/// to a netcat source until told to stop. It counts the chunks it has *started*: a chunk
/// whose number is at least the count read at some instant reached the agent entirely after
/// that instant.
struct Sender {
    started: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<String>>,
}

impl Sender {
    fn spawn(nc: u16, prefix: &'static str) -> Sender {
        let started = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counter, stopped) = (started.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut s = connect(nc);
            let mut sent = Vec::new();
            while !stopped.load(Ordering::SeqCst) && sent.len() < SENDER_MAX {
                let chunk: Vec<String> = (sent.len()..sent.len() + CHUNK)
                    .map(|n| format!("{prefix}{n:06}"))
                    .collect();
                counter.fetch_add(1, Ordering::SeqCst);
                // A line answered FAILED (the agent's file channel refused it: on a loaded
                // machine an fsync can outlast `keep-alive`) was not accepted; like any
                // client, resend it. Only lines answered OK count as sent.
                let mut pending = chunk;
                for attempt in 0.. {
                    let replies = send_acked(&mut s, &pending);
                    assert_eq!(replies.len(), pending.len(), "{replies:?}");
                    let mut refused = Vec::new();
                    for (line, reply) in pending.into_iter().zip(&replies) {
                        if reply == "OK" {
                            sent.push(line);
                        } else {
                            assert!(
                                reply.starts_with("FAILED"),
                                "unexpected reply {reply:?} to {line:?}; all replies: {replies:?}"
                            );
                            refused.push(line);
                        }
                    }
                    if refused.is_empty() {
                        break;
                    }
                    assert!(attempt < 100, "the agent kept refusing lines: {replies:?}");
                    pending = refused;
                    std::thread::sleep(Duration::from_millis(100));
                }
                std::thread::sleep(PACE);
            }
            sent
        });
        Sender {
            started,
            stop,
            handle,
        }
    }

    /// Chunks started so far.
    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Stops the stream and returns every line sent (each acknowledged `OK`).
    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("the sender thread failed")
    }
}

/// Lines in `c`'s output.
fn count(c: &Agent) -> usize {
    lines_in(&c.path("out")).len()
}

/// Whether `c`'s output holds a line starting with `prefix`.
fn has_prefix(c: &Agent, prefix: &str) -> bool {
    lines_in(&c.path("out"))
        .iter()
        .any(|l| l.starts_with(prefix))
}

/// Waits for `cond`, panicking with `what` and the logs of `agents` otherwise.
fn expect(what: &str, agents: &[(&str, &Agent)], cond: impl FnMut() -> bool) {
    if !wait_for_within(TIER_DEADLINE, cond) {
        let logs: Vec<String> = agents
            .iter()
            .map(|(name, a)| format!("{name} log:\n{}", tail_lines(&a.log(), 20)))
            .collect();
        panic!("{what} within {TIER_DEADLINE:?}\n{}", logs.join("\n"));
    }
}

/// Whether a connection to local `port` (127.0.0.1, not the listener) holds received bytes
/// its process has not read, from `/proc/net/tcp` (`local_address`, `st`, `tx_queue:rx_queue`).
fn unread_bytes_at(port: u16) -> bool {
    let local = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 4
                && f[1] == local
                && f[3] != "0A"
                && f[4]
                    .split_once(':')
                    .and_then(|(_, rx)| u64::from_str_radix(rx, 16).ok())
                    .is_some_and(|rx| rx > 0)
        })
}

/// SIGKILLs collector `c` (listening on `port`) while the agent `ag` has a request in flight
/// to it: `c` is frozen with SIGSTOP, then killed once bytes from the agent wait unread in its
/// socket, i.e. the sink is waiting for the reply to a batch it sent.
fn kill_mid_batch(c: &mut Agent, port: u16, ag: &Agent) {
    signal(c.child.id(), "STOP");
    expect(
        "no request reached the frozen collector",
        &[("agent", ag), ("collector", c)],
        || unread_bytes_at(port),
    );
    c.kill9();
}

// ---------------------------------------------------------------------------------------------
// Fan-in

/// Three agents -> one collector (`kind` source, memory channel, file_roll). Each agent gets
/// its own numbered lines at the same time; every line arrives exactly once, and each agent's
/// lines keep their order (one sink, one connection, one batch at a time).
fn fan_in(kind: &str) {
    const PER_AGENT: usize = 2000;
    let port = free_port();
    let c = collector(kind, port, "memory");
    let agents: Vec<(u16, Agent)> = (0..3)
        .map(|_| {
            let nc = free_port();
            (
                nc,
                agent(
                    nc,
                    &format!("a1.sinks = k1\n{}", rpc_sink("k1", kind, port)),
                ),
            )
        })
        .collect();
    let sent: Vec<Vec<String>> = (0..3)
        .map(|i| (0..PER_AGENT).map(|n| format!("agent{i}-{n:05}")).collect())
        .collect();
    std::thread::scope(|s| {
        for ((nc, _), lines) in agents.iter().zip(&sent) {
            s.spawn(move || send_chunks(*nc, lines, 100));
        }
    });
    let total = 3 * PER_AGENT;
    let mut got = Vec::new();
    let ok = wait_for_within(TIER_DEADLINE, || {
        got = lines_in(&c.path("out"));
        got.len() >= total
    });
    assert!(
        ok,
        "{} of {total} lines arrived; collector log:\n{}",
        got.len(),
        tail_lines(&c.log(), 20)
    );
    // Exactly once: the sorted output is the sorted input (no loss, no duplicate).
    let mut sorted = got.clone();
    sorted.sort();
    let mut want: Vec<String> = sent.iter().flatten().cloned().collect();
    want.sort();
    assert!(
        sorted == want,
        "the collector's output is not every line exactly once"
    );
    // Each agent's lines in the order it sent them.
    for (i, lines) in sent.iter().enumerate() {
        let prefix = format!("agent{i}-");
        let theirs: Vec<&String> = got.iter().filter(|l| l.starts_with(&prefix)).collect();
        let first_break = theirs.windows(2).position(|w| w[0] > w[1]);
        assert!(
            first_break.is_none(),
            "agent {i}'s lines out of order at {:?}",
            first_break.map(|p| (theirs[p], theirs[p + 1]))
        );
        assert_eq!(theirs.len(), lines.len());
    }
    // How finely the three connections interleaved at the collector (for the record only:
    // how the scheduler spreads three concurrent senders is not something to assert on).
    let switches = got.windows(2).filter(|w| w[0][..6] != w[1][..6]).count();
    eprintln!("fan-in over {kind}: {switches} switches between agents in the output");
}

#[test]
fn three_avro_agents_fan_in_to_one_collector() {
    fan_in("avro");
}

#[test]
fn three_thrift_agents_fan_in_to_one_collector() {
    fan_in("thrift");
}

// ---------------------------------------------------------------------------------------------
// Sink groups over two collectors

/// Two avro sinks, k1 -> `a` and k2 -> `b`, in group g1 with `processor` lines.
fn group_sinks(a: u16, b: u16, processor: &str) -> String {
    format!(
        "a1.sinks = k1 k2\n\
         a1.sinkgroups = g1\n\
         a1.sinkgroups.g1.sinks = k1 k2\n\
         {processor}{}{}",
        rpc_sink("k1", "avro", a),
        rpc_sink("k2", "avro", b)
    )
}

#[test]
fn load_balance_moves_traffic_off_a_killed_collector_and_back_after_its_restart() {
    let (pa, pb, nc) = (free_port(), free_port(), free_port());
    let a = collector("avro", pa, "file");
    let mut b = collector("avro", pb, "file");
    let ag = agent(
        nc,
        &group_sinks(
            pa,
            pb,
            "a1.sinkgroups.g1.processor.type = load_balance\n\
             a1.sinkgroups.g1.processor.selector = round_robin\n\
             a1.sinkgroups.g1.processor.backoff = true\n\
             a1.sinkgroups.g1.processor.selector.maxTimeOut = 2000\n",
        ),
    );

    // Wave 1 flows; once B has written something it is killed with a batch in flight.
    let sender = Sender::spawn(nc, "lb1-");
    expect(
        "collector B never received anything",
        &[("agent", &ag), ("B", &b)],
        || count(&b) > 0,
    );
    kill_mid_batch(&mut b, pb, &ag);
    // A's count first: every chunk started after `after_kill` is read is then not in it.
    let a_at_kill = count(&a);
    let after_kill = sender.started();
    // Traffic moves to A: its output keeps growing while B is down.
    expect(
        "A's output did not grow while B was down",
        &[("agent", &ag), ("A", &a)],
        || count(&a) >= a_at_kill + 20 * CHUNK,
    );
    let wave1 = sender.finish();
    // Everything written to the agent after the kill can only have gone to A.
    wait_all_arrived(&[&a], &wave1[after_kill * CHUNK..], &ag);
    let b_before_restart = count(&b);

    // Restart B (same port, same directories): its file channel gives back what it had
    // acknowledged, and once its back-off (maxTimeOut = 2 s) ends the group uses it again.
    b.restart();
    wait_listening(&b, pb);
    let sender = Sender::spawn(nc, "lb2-");
    expect(
        "B received nothing of wave 2 after its restart",
        &[("agent", &ag), ("B", &b)],
        || has_prefix(&b, "lb2-"),
    );
    let wave2 = sender.finish();
    let all: Vec<String> = wave1.iter().chain(&wave2).cloned().collect();
    wait_all_arrived(&[&a, &b], &all, &ag);
    assert!(
        count(&b) > b_before_restart,
        "B's output did not grow after its restart"
    );
    // Duplicates: at most the RPC batch in flight at the kill plus one batch that B's
    // file_roll had written but not yet committed.
    let dups = check_union(
        &[lines_in(&a.path("out")), lines_in(&b.path("out"))],
        &all,
        2 * BATCH,
    );
    eprintln!(
        "load balance: {} lines, {dups} duplicated after the kill",
        all.len()
    );
}

#[test]
fn failover_moves_to_the_backup_collector_and_back_to_the_restarted_primary() {
    let (pa, pb, nc) = (free_port(), free_port(), free_port());
    let mut a = collector("avro", pa, "file");
    let b = collector("avro", pb, "file");
    let ag = agent(
        nc,
        &group_sinks(
            pa,
            pb,
            "a1.sinkgroups.g1.processor.type = failover\n\
             a1.sinkgroups.g1.processor.priority.k1 = 10\n\
             a1.sinkgroups.g1.processor.priority.k2 = 5\n\
             a1.sinkgroups.g1.processor.maxpenalty = 2000\n",
        ),
    );

    // While A is up, everything goes to A.
    let wave1 = numbered("fo1-", 1000);
    send_chunks(nc, &wave1, 100);
    wait_all_arrived(&[&a], &wave1, &ag);
    assert_eq!(
        count(&b),
        0,
        "the backup received lines while the primary was up"
    );

    // Kill A mid-flow, with a batch in flight: the rest goes to B.
    let sender = Sender::spawn(nc, "fo2-");
    expect(
        "A received nothing of wave 2",
        &[("agent", &ag), ("A", &a)],
        || has_prefix(&a, "fo2-"),
    );
    kill_mid_batch(&mut a, pa, &ag);
    let after_kill = sender.started();
    expect(
        "B's output did not grow after A was killed",
        &[("agent", &ag), ("B", &b)],
        || count(&b) >= 20 * CHUNK,
    );
    let wave2 = sender.finish();
    wait_all_arrived(&[&b], &wave2[after_kill * CHUNK..], &ag);

    // Restart A; after its penalty (maxpenalty = 2 s) the group goes back to it.
    a.restart();
    wait_listening(&a, pa);
    let sender = Sender::spawn(nc, "fo3-");
    expect(
        "the restarted primary received nothing of wave 3",
        &[("agent", &ag), ("A", &a)],
        || has_prefix(&a, "fo3-"),
    );
    let wave3 = sender.finish();
    let mut all: Vec<String> = wave1.iter().chain(&wave2).chain(&wave3).cloned().collect();
    wait_all_arrived(&[&a, &b], &all, &ag);

    // A is live again: a new wave goes to A only.
    let b_before = count(&b);
    let wave4 = numbered("fo4-", 1000);
    send_chunks(nc, &wave4, 100);
    wait_all_arrived(&[&a], &wave4, &ag);
    assert_eq!(
        count(&b),
        b_before,
        "the backup received lines after the primary recovered"
    );
    all.extend(wave4);
    let dups = check_union(
        &[lines_in(&a.path("out")), lines_in(&b.path("out"))],
        &all,
        2 * BATCH,
    );
    eprintln!(
        "failover: {} lines, {dups} duplicated after the kill",
        all.len()
    );
}
