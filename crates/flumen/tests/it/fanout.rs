//! Routing: netcat → replicating and multiplexing selectors → memory channels → file_roll.

use crate::util::*;

#[test]
fn netcat_to_logger_shows_the_event_and_acks_it() {
    let port = free_port();
    let agent = Agent::start(
        &r#"
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
"#
        .replace("{port}", &port.to_string()),
    );
    let mut s = connect(port);
    assert_eq!(send_acked(&mut s, &["Hello world".into()]), ["OK"]);
    agent.expect_log("Hello world");
}

#[test]
fn replicating_copies_every_event_to_every_channel() {
    let port = free_port();
    let agent = Agent::start(
        &r#"
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1 c2
a1.channels.c1.type = memory
a1.channels.c2.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out1
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k2.type = file_roll
a1.sinks.k2.channel = c2
a1.sinks.k2.sink.directory = {dir}/out2
a1.sinks.k2.sink.rollInterval = 0
"#
        .replace("{port}", &port.to_string()),
    );
    let lines = numbered("event-", 300);
    let mut s = connect(port);
    for chunk in lines.chunks(50) {
        assert!(send_acked(&mut s, chunk).iter().all(|r| r == "OK"));
    }
    assert_eq!(wait_lines(&agent.path("out1"), 300), lines);
    assert_eq!(wait_lines(&agent.path("out2"), 300), lines);
}

#[test]
fn multiplexing_routes_on_a_header_with_default_and_optional_channels() {
    let port = free_port();
    let agent = Agent::start(
        &r#"
a1.sources = r1
a1.channels = ca ny other
a1.sinks = kca kny kother
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = ca ny other
a1.sources.r1.interceptors = st
a1.sources.r1.interceptors.st.type = regex_extractor
a1.sources.r1.interceptors.st.regex = ^([A-Z]+)
a1.sources.r1.interceptors.st.serializers = s1
a1.sources.r1.interceptors.st.serializers.s1.name = state
a1.sources.r1.selector.type = multiplexing
a1.sources.r1.selector.header = state
a1.sources.r1.selector.mapping.CA = ca
a1.sources.r1.selector.mapping.NY = ny
a1.sources.r1.selector.optional.CA = other
a1.sources.r1.selector.default = other
a1.channels.ca.type = memory
a1.channels.ny.type = memory
a1.channels.other.type = memory
a1.sinks.kca.type = file_roll
a1.sinks.kca.channel = ca
a1.sinks.kca.sink.directory = {dir}/ca
a1.sinks.kny.type = file_roll
a1.sinks.kny.channel = ny
a1.sinks.kny.sink.directory = {dir}/ny
a1.sinks.kother.type = file_roll
a1.sinks.kother.channel = other
a1.sinks.kother.sink.directory = {dir}/other
"#
        .replace("{port}", &port.to_string()),
    );
    let mut s = connect(port);
    let sent: Vec<String> = ["CA 1", "NY 2", "TX 3", "lower 4", "CA 5"]
        .map(String::from)
        .to_vec();
    assert!(send_acked(&mut s, &sent).iter().all(|r| r == "OK"));
    assert_eq!(wait_lines(&agent.path("ca"), 2), ["CA 1", "CA 5"]);
    assert_eq!(wait_lines(&agent.path("ny"), 1), ["NY 2"]);
    // Unmapped values and missing headers go to the default; CA also to its optional channel.
    let mut other = wait_lines(&agent.path("other"), 4);
    other.sort();
    assert_eq!(other, ["CA 1", "CA 5", "TX 3", "lower 4"]);
}
