//! Back-pressure and live reload: a full channel refuses events (the netcat client is told),
//! a reload that fixes the sink keeps the channel and its events, and a broken reload is
//! rejected while the old flows keep running.

use crate::util::*;

const CONF: &str = r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 20
a1.channels.c1.transactionCapacity = 10
a1.channels.c1.keep-alive = 1
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.batchSize = 10
a1.sinks.k1.sink.directory = {sinkdir}
"#;

#[test]
fn full_channel_refuses_then_reload_fixes_the_sink_and_keeps_queued_events() {
    let port = free_port();
    let conf = CONF.replace("{port}", &port.to_string());
    let agent = Agent::start(&conf.replace("{sinkdir}", "/proc/flumen-cannot-create/out"));
    let mut s = connect(port);
    let lines = numbered("bp", 23);
    let mut replies = Vec::new();
    for l in &lines {
        replies.extend(send_acked(&mut s, std::slice::from_ref(l)));
    }
    let ok: Vec<&String> = lines
        .iter()
        .zip(&replies)
        .filter(|(_, r)| *r == "OK")
        .map(|(l, _)| l)
        .collect();
    assert_eq!(ok.len(), 20, "{replies:?}");
    for r in &replies[20..] {
        assert!(r.starts_with("FAILED: "), "{r}");
        assert!(r.contains("full"), "{r}");
    }

    // Fix the sink by editing the file; the unchanged channel keeps its 20 events.
    agent.rewrite_conf(&conf.replace("{sinkdir}", "{dir}/out"));
    agent.expect_log("Configuration reloaded");
    let got = wait_lines(&agent.path("out"), 20);
    assert_eq!(got.iter().collect::<Vec<_>>(), ok);

    // A broken edit is rejected; the running flow goes on with the previous configuration.
    agent.rewrite_conf(&format!(
        "{}\na1.channels.c1.capacity = many\n",
        conf.replace("{sinkdir}", "{dir}/out")
    ));
    agent.expect_log("New configuration rejected");
    assert!(
        agent.log().contains("invalid number `many`"),
        "{}",
        agent.log()
    );
    let more = numbered("after", 5);
    let mut s = connect(port);
    assert!(send_acked(&mut s, &more).iter().all(|r| r == "OK"));
    let got = wait_lines(&agent.path("out"), 25);
    assert_eq!(&got[20..], &more[..]);
}

#[test]
fn reload_that_changes_a_channel_moves_its_queued_events_into_the_new_one() {
    let port = free_port();
    let conf = CONF.replace("{port}", &port.to_string());
    let agent = Agent::start(&conf.replace("{sinkdir}", "/proc/flumen-cannot-create/out"));
    let mut s = connect(port);
    let lines = numbered("moved", 15);
    assert!(send_acked(&mut s, &lines).iter().all(|r| r == "OK"));

    // Raise the capacity (the channel is rebuilt) and fix the sink in the same edit.
    let edited = conf
        .replace("{sinkdir}", "{dir}/out")
        .replace("capacity = 20", "capacity = 50");
    agent.rewrite_conf(&edited);
    agent.expect_log("Queued events moved into the reconfigured channel");
    assert_eq!(wait_lines(&agent.path("out"), 15), lines);
}
