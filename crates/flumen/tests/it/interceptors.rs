//! Interceptors run in order before routing, and their headers reach the sink.

use crate::util::*;

#[test]
fn interceptor_chain_sets_headers_and_filters_events() {
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
a1.sources.r1.interceptors = drop ts st host rw
a1.sources.r1.interceptors.drop.type = regex_filter
a1.sources.r1.interceptors.drop.regex = ^DEBUG
a1.sources.r1.interceptors.drop.excludeEvents = true
a1.sources.r1.interceptors.ts.type = timestamp
a1.sources.r1.interceptors.st.type = static
a1.sources.r1.interceptors.st.key = datacenter
a1.sources.r1.interceptors.st.value = NEW_YORK
a1.sources.r1.interceptors.host.type = org.apache.flume.interceptor.HostInterceptor$Builder
a1.sources.r1.interceptors.host.useIP = false
a1.sources.r1.interceptors.rw.type = search_replace
a1.sources.r1.interceptors.rw.searchPattern = password=\\S+
a1.sources.r1.interceptors.rw.replaceString = password=***
a1.channels.c1.type = memory
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {dir}/out
a1.sinks.k1.sink.serializer = header_and_text
"#
        .replace("{port}", &port.to_string()),
    );
    let mut s = connect(port);
    let sent: Vec<String> = ["INFO login password=hunter2 ok", "DEBUG noise", "WARN disk"]
        .map(String::from)
        .to_vec();
    assert!(send_acked(&mut s, &sent).iter().all(|r| r == "OK"));
    let lines = wait_lines(&agent.path("out"), 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let host = gethostname_string();
    for (line, body) in lines
        .iter()
        .zip(["INFO login password=*** ok", "WARN disk"])
    {
        assert!(line.starts_with("{datacenter=NEW_YORK, host="), "{line}");
        assert!(line.contains(&format!("host={host}, timestamp=")), "{line}");
        assert!(line.ends_with(&format!("}} {body}")), "{line}");
    }
}

fn gethostname_string() -> String {
    let out = std::process::Command::new("hostname").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
