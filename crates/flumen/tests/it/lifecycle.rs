//! Lifecycle: graceful SIGTERM, finite sources, the exec source with a real command.

use crate::util::*;

#[test]
fn sigterm_drains_the_channel_and_leaves_complete_files() {
    let port = free_port();
    let mut agent = Agent::start(
        &r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.ack-every-event = false
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.batchSize = 1000
a1.sinks.k1.sink.directory = {dir}/out
"#
        .replace("{port}", &port.to_string()),
    );
    let lines = numbered("line-", 20_000);
    {
        use std::io::Write;
        let mut s = connect(port);
        let mut payload = lines.join("\n");
        payload.push('\n');
        s.write_all(payload.as_bytes()).unwrap();
    }
    // Wait until the source has taken everything in, then stop the agent.
    assert!(wait_for(|| !lines_in(&agent.path("out")).is_empty()));
    let status = agent.terminate();
    assert!(status.success(), "exit {status:?}; log:\n{}", agent.log());
    assert!(agent.log().contains("Agent stopped"), "{}", agent.log());
    let got = lines_in(&agent.path("out"));
    // Everything the source accepted before the signal is in complete lines, in order.
    assert!(got.len() <= lines.len());
    assert_eq!(got[..], lines[..got.len()]);
}

#[test]
fn seq_source_delivers_exactly_total_events_in_order() {
    let agent = Agent::start(
        r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.totalEvents = 5000
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
"#,
    );
    let got = wait_lines(&agent.path("out"), 5000);
    let expected: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
    assert_eq!(got, expected);
}

#[test]
fn exec_source_turns_command_output_into_events_and_restarts_it() {
    let agent = Agent::start(
        r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = exec
a1.sources.r1.shell = /bin/sh -c
a1.sources.r1.command = for i in 1 2 3; do echo "run $i"; done
a1.sources.r1.restart = true
a1.sources.r1.restartThrottle = 100
a1.sources.r1.batchTimeout = 100
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
"#,
    );
    // Restarted at least once: the three lines come twice, in order each time.
    let got = wait_lines(&agent.path("out"), 6);
    assert_eq!(
        got[..6],
        ["run 1", "run 2", "run 3", "run 1", "run 2", "run 3"]
    );
}
