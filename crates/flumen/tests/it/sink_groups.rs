//! Sink groups: failover to a lower-priority sink, and load balancing across sinks.

use crate::util::*;

const GROUP: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2
a1.sinkgroups = g1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {k1dir}
a1.sinks.k1.sink.batchSize = 10
a1.sinks.k2.type = file_roll
a1.sinks.k2.channel = c1
a1.sinks.k2.sink.directory = {dir}/k2
a1.sinks.k2.sink.batchSize = 10
a1.sinkgroups.g1.sinks = k1 k2
"#;

fn start(k1dir: &str, processor: &str) -> (Agent, u16) {
    let port = free_port();
    let conf = format!("{GROUP}{processor}")
        .replace("{port}", &port.to_string())
        .replace("{k1dir}", k1dir);
    let agent = Agent::start(&conf);
    (agent, port)
}

#[test]
fn failover_sends_everything_to_the_next_sink_when_the_primary_fails() {
    let (agent, port) = start(
        "/proc/flumen-cannot-create/k1",
        "a1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g1.processor.priority.k1 = 10\n\
         a1.sinkgroups.g1.processor.priority.k2 = 5\n\
         a1.sinkgroups.g1.processor.maxpenalty = 2000\n",
    );
    let lines = numbered("f", 200);
    let mut s = connect(port);
    for chunk in lines.chunks(20) {
        assert!(send_acked(&mut s, chunk).iter().all(|r| r == "OK"));
    }
    assert_eq!(wait_lines(&agent.path("k2"), 200), lines);
    agent.expect_log("failing over to the next one");
}

#[test]
fn failover_prefers_the_highest_priority_sink_while_it_works() {
    let (agent, port) = start(
        "{dir}/k1",
        "a1.sinkgroups.g1.processor.type = failover\n\
         a1.sinkgroups.g1.processor.priority.k1 = 5\n\
         a1.sinkgroups.g1.processor.priority.k2 = 10\n",
    );
    let lines = numbered("p", 50);
    let mut s = connect(port);
    assert!(send_acked(&mut s, &lines).iter().all(|r| r == "OK"));
    assert_eq!(wait_lines(&agent.path("k2"), 50), lines);
    assert!(lines_in(&agent.path("k1")).is_empty());
}

#[test]
fn load_balance_spreads_batches_over_both_sinks_and_loses_nothing() {
    let (agent, port) = start(
        "{dir}/k1",
        "a1.sinkgroups.g1.processor.type = load_balance\n\
         a1.sinkgroups.g1.processor.selector = round_robin\n\
         a1.sinkgroups.g1.processor.backoff = true\n",
    );
    let lines = numbered("lb", 400);
    let mut s = connect(port);
    for chunk in lines.chunks(10) {
        assert!(send_acked(&mut s, chunk).iter().all(|r| r == "OK"));
    }
    let mut all = Vec::new();
    assert!(wait_for(|| {
        all = lines_in(&agent.path("k1"));
        all.extend(lines_in(&agent.path("k2")));
        all.len() >= 400
    }));
    assert!(!lines_in(&agent.path("k1")).is_empty() && !lines_in(&agent.path("k2")).is_empty());
    all.sort();
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(all, expected);
}

#[test]
fn load_balance_skips_a_failing_sink() {
    let (agent, port) = start(
        "/proc/flumen-cannot-create/k1",
        "a1.sinkgroups.g1.processor.type = load_balance\n\
         a1.sinkgroups.g1.processor.backoff = true\n\
         a1.sinkgroups.g1.processor.selector = random\n",
    );
    let lines = numbered("x", 100);
    let mut s = connect(port);
    assert!(send_acked(&mut s, &lines).iter().all(|r| r == "OK"));
    let mut got = wait_lines(&agent.path("k2"), 100);
    got.sort();
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(got, expected);
}

#[test]
fn load_balance_alternates_even_when_traffic_comes_one_batch_at_a_time() {
    // Each burst is exactly one sink batch, and the next is sent once it is written: the turn
    // after a burst always finds the channel empty, which must not make one sink take them all.
    let (agent, port) = start(
        "{dir}/k1",
        "a1.sinkgroups.g1.processor.type = load_balance\n\
         a1.sinkgroups.g1.processor.selector = round_robin\n",
    );
    let lines = numbered("burst", 200);
    let mut s = connect(port);
    for (i, chunk) in lines.chunks(10).enumerate() {
        assert!(send_acked(&mut s, chunk).iter().all(|r| r == "OK"));
        let written = (i + 1) * 10;
        assert!(wait_for(|| {
            lines_in(&agent.path("k1")).len() + lines_in(&agent.path("k2")).len() >= written
        }));
    }
    let (k1, k2) = (
        lines_in(&agent.path("k1")).len(),
        lines_in(&agent.path("k2")).len(),
    );
    assert_eq!(k1 + k2, 200);
    assert!(k1 >= 50 && k2 >= 50, "k1 got {k1} lines, k2 {k2}");
}
