//! `flumen check` and start-up refusal: every problem at once, with file:line and a hint.

use std::process::Command;

use crate::util::*;

fn check(conf: &str, extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flume.conf");
    std::fs::write(&path, conf).unwrap();
    let out = Command::new(bin())
        .args(["check", "-n", "a1", "-f"])
        .arg(&path)
        .args(extra)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "flume.conf");
    (out.status.code().unwrap_or(-1), text)
}

const BROKEN: &str = "a1.sources = r1
a1.channels = c1
a1.sinks = k1 k2
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 44444
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.transactionCapacty = 10
a1.sinks.k1.type = loger
a1.sinks.k1.channel = c1
a1.sinks.k2.type = null
a1.sinks.k2.channels = c1
";

#[test]
fn check_reports_every_problem_with_file_line_and_hint() {
    let (code, out) = check(BROKEN, &[]);
    assert_eq!(code, 1, "{out}");
    // Unknown property: a warning with a did-you-mean.
    assert!(
        out.contains("flume.conf:9: warning: a1.channels.c1.transactionCapacty: unknown property"),
        "{out}"
    );
    assert!(out.contains("did you mean `transactionCapacity`?"), "{out}");
    // Unknown type: an error with a did-you-mean.
    assert!(
        out.contains("flume.conf:10: error: a1.sinks.k1.type"),
        "{out}"
    );
    assert!(out.contains("did you mean `logger`?"), "{out}");
    // `channels` on a sink.
    assert!(out.contains("flume.conf:13: error"), "{out}");
    assert!(out.contains("`channel` (singular)"), "{out}");
    assert!(out.contains("has 2 errors"), "{out}");
}

#[test]
fn batch_size_larger_than_transaction_capacity_names_both_lines() {
    let conf = "a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.batchSize = 500
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = 200
a1.sinks.k1.channel = c1
";
    let (code, out) = check(conf, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("flume.conf:5: error: a1.sources.r1.batchSize: batch size 500 is larger than the transactionCapacity 100 of channel `c1` (set on line 9)"), "{out}");
    assert!(
        out.contains("flume.conf:11: error: a1.sinks.k1.batchSize: batch size 200"),
        "{out}"
    );
}

#[test]
fn valid_config_passes_and_env_variables_are_substituted() {
    let conf = "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n\
a1.channels.c1.type = memory\na1.channels.c1.capacity = ${FLUMEN_TEST_CAP}\n\
a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.conf");
    std::fs::write(&path, conf).unwrap();
    let run = |env: Option<&str>| {
        let mut c = Command::new(bin());
        c.args(["check", "-n", "a1", "-f"]).arg(&path);
        match env {
            Some(v) => c.env("FLUMEN_TEST_CAP", v),
            None => c.env_remove("FLUMEN_TEST_CAP"),
        };
        c.output().unwrap()
    };
    let ok = run(Some("500"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stderr).contains("is valid"));
    let unset = run(None);
    assert_eq!(unset.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unset.stderr).contains("FLUMEN_TEST_CAP"));
}

#[test]
fn agent_refuses_to_start_on_errors_but_lenient_runs_the_valid_part() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flume.conf");
    let conf = format!("{BROKEN}a1.sinks.k1.channel = c1\n");
    std::fs::write(&path, &conf).unwrap();
    let out = Command::new(bin())
        .args(["agent", "-n", "a1", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to start agent `a1`"));

    // --lenient: the broken sinks are dropped and the netcat → c1 flow still runs.
    let port = free_port();
    let agent = Agent::start_with(
        &(BROKEN
            .replace("44444", &port.to_string())
            .replace("k1 k2", "k1 k2 k3")
            + "a1.sinks.k3.type = file_roll\na1.sinks.k3.channel = c1\na1.sinks.k3.sink.directory = {dir}/out\n"),
        &["--lenient"],
    );
    agent.expect_log("component removed, --lenient");
    let mut s = connect(port);
    assert_eq!(send_acked(&mut s, &["kept".into()]), ["OK"]);
    assert_eq!(wait_lines(&agent.path("out"), 1), ["kept"]);
}

#[test]
fn relative_conf_file_is_found_in_conf_dir_and_flume_flags_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("my.conf"),
        "a1.sources = r1\na1.channels = c1\na1.sinks = k1\na1.sources.r1.type = seq\n\
         a1.sources.r1.channels = c1\na1.channels.c1.type = memory\na1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["check", "--name", "a1", "--conf-file", "my.conf", "-c"])
        .arg(dir.path())
        .args([
            "-Dflume.root.logger=DEBUG,console",
            "-Dflume.monitoring.type=http",
            "-Xmx512m",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
