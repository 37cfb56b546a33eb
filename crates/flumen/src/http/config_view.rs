//! The effective configuration as JSON (`GET /config`, and the console's `config` event).
//!
//! The document is built once per applied or rejected configuration (never per request) from
//! the agent's [`AgentDef`], restricted to the components the running plan really has (in
//! `--lenient` mode broken components are dropped), with:
//! - every component's kind, name, type, first line and properties as written (after `${...}`
//!   substitution), values of secret-looking keys replaced by [`MASK`];
//! - the wiring: source → channels, selector, interceptors in order, sink → channel, sink
//!   groups with their processor and members;
//! - `reload`: when the configuration was last (re)read, whether it was applied or rejected,
//!   and the warnings or errors as `file:line: ...` text.
//!
//! Invariant: no secret value ever leaves this module unmasked, whatever part of a component
//! (its own keys, selector, interceptors, processor) holds it.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use flumen_config::{AgentDef, Diagnostic, Props};
use serde_json::{Map, Value, json};

/// What replaces a secret value.
pub const MASK: &str = "******";

/// Whether the value of `key` (relative or full, any case) must be masked: any dotted segment
/// naming a password, pass phrase, secret, token or credentials (`password`,
/// `keystore-password`, `ssl.truststore.password`, `keystorePassword`, `kafka.producer.sasl.jaas.config`...).
pub fn is_secret(key: &str) -> bool {
    key.to_ascii_lowercase().split('.').any(|seg| {
        seg.starts_with("pass")
            || [
                "password",
                "passwd",
                "secret",
                "token",
                "credential",
                "jaas",
                "apikey",
            ]
            .iter()
            .any(|w| seg.contains(w))
    })
}

/// The names of the components that run; the document shows only those.
#[derive(Debug, Default, Clone)]
pub struct Running {
    /// Source names.
    pub sources: BTreeSet<String>,
    /// Channel names.
    pub channels: BTreeSet<String>,
    /// Sink names (grouped or not).
    pub sinks: BTreeSet<String>,
    /// Sink group names.
    pub groups: BTreeSet<String>,
}

impl Running {
    /// Everything `def` declares (when no plan restricts it).
    pub fn all(def: &AgentDef) -> Self {
        Self {
            sources: def.sources.iter().map(|s| s.def.name.clone()).collect(),
            channels: def.channels.iter().map(|c| c.def.name.clone()).collect(),
            sinks: def.sinks.iter().map(|s| s.def.name.clone()).collect(),
            groups: def.sinkgroups.iter().map(|g| g.name.clone()).collect(),
        }
    }
}

/// Whether the last reading of the configuration file was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The new configuration runs.
    Applied,
    /// It had errors; the previous configuration keeps running.
    Rejected,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Rejected => "rejected",
        }
    }
}

/// The last (re)load of the configuration file.
#[derive(Debug, Clone)]
pub struct Reload {
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Applied or rejected.
    pub outcome: Outcome,
    /// Its warnings (applied) or warnings and errors (rejected).
    pub diagnostics: Vec<Diagnostic>,
}

impl Reload {
    /// The `reload` member of the document.
    pub fn to_json(&self) -> Value {
        let text = |error: bool| -> Vec<String> {
            self.diagnostics
                .iter()
                .filter(|d| d.is_error() == error)
                .map(ToString::to_string)
                .collect()
        };
        json!({
            "time": self.time.to_rfc3339_opts(SecondsFormat::Millis, true),
            "outcome": self.outcome.as_str(),
            "warnings": text(false),
            "errors": text(true),
        })
    }
}

/// Properties as a JSON object, secrets masked; `skip` drops keys shown elsewhere.
fn props_json(props: &Props, skip: &[&str]) -> Value {
    let mut m = Map::new();
    for (k, v, _) in props.iter() {
        if skip.contains(&k) {
            continue;
        }
        let v = if is_secret(k) { MASK } else { v };
        m.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Value::Object(m)
}

/// The components and wiring of `def` (restricted to `running`), without `reload`.
pub fn components(def: &AgentDef, file: &Path, running: &Running) -> Value {
    let sources: Vec<Value> = def
        .sources
        .iter()
        .filter(|s| running.sources.contains(&s.def.name))
        .map(|s| {
            let interceptors: Vec<Value> = s
                .interceptors
                .iter()
                .map(|i| {
                    json!({
                        "name": i.name,
                        "type": i.type_name,
                        "properties": props_json(&i.props, &["type"]),
                    })
                })
                .collect();
            json!({
                "kind": "source",
                "name": s.def.name,
                "type": s.def.type_name,
                "line": s.def.props.first_line(),
                "properties": props_json(&s.def.props, &[]),
                "channels": s.channels,
                "selector": {
                    "type": s.selector.get("type").map_or("replicating", str::trim),
                    "properties": props_json(&s.selector, &["type"]),
                },
                "interceptors": interceptors,
            })
        })
        .collect();
    let channels: Vec<Value> = def
        .channels
        .iter()
        .filter(|c| running.channels.contains(&c.def.name))
        .map(|c| {
            json!({
                "kind": "channel",
                "name": c.def.name,
                "type": c.def.type_name,
                "line": c.def.props.first_line(),
                "properties": props_json(&c.def.props, &[]),
            })
        })
        .collect();
    let groups: Vec<_> = def
        .sinkgroups
        .iter()
        .filter(|g| running.groups.contains(&g.name))
        .collect();
    let sinks: Vec<Value> = def
        .sinks
        .iter()
        .filter(|s| running.sinks.contains(&s.def.name))
        .map(|s| {
            let group = groups
                .iter()
                .find(|g| g.sinks.contains(&s.def.name))
                .map(|g| g.name.clone());
            json!({
                "kind": "sink",
                "name": s.def.name,
                "type": s.def.type_name,
                "line": s.def.props.first_line(),
                "properties": props_json(&s.def.props, &[]),
                "channel": s.channel,
                "group": group,
            })
        })
        .collect();
    let sinkgroups: Vec<Value> = groups
        .iter()
        .map(|g| {
            json!({
                "kind": "sinkgroup",
                "name": g.name,
                "type": g.processor.get("type").map_or("default", str::trim),
                "line": g.props.first_line(),
                "properties": props_json(&g.props, &[]),
                "processor": {
                    "type": g.processor.get("type").map_or("default", str::trim),
                    "properties": props_json(&g.processor, &["type"]),
                },
                "sinks": g.sinks,
            })
        })
        .collect();
    json!({
        "agent": def.name,
        "file": file.display().to_string(),
        "sources": sources,
        "channels": channels,
        "sinks": sinks,
        "sinkgroups": sinkgroups,
    })
}

/// The whole `/config` document: `components` plus `reload`, `started` (RFC 3339) and
/// `generation` (bumped at every change, so clients can tell a new document).
pub fn document(
    components: &Value,
    reload: &Reload,
    started: DateTime<Utc>,
    generation: u64,
) -> Value {
    let mut doc = components.clone();
    if let Value::Object(m) = &mut doc {
        m.insert("reload".into(), reload.to_json());
        m.insert(
            "started".into(),
            Value::String(started.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        m.insert(
            "startedMs".into(),
            Value::from(u64::try_from(started.timestamp_millis()).unwrap_or(0)),
        );
        m.insert("generation".into(), Value::from(generation));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = "\
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1 k2 k3
a1.sinkgroups = g1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = 4444
a1.sources.r1.channels = c1 c2
a1.sources.r1.selector.type = multiplexing
a1.sources.r1.selector.header = state
a1.sources.r1.selector.mapping.CA = c1
a1.sources.r1.selector.default = c2
a1.sources.r1.interceptors = i1 i2
a1.sources.r1.interceptors.i1.type = timestamp
a1.sources.r1.interceptors.i2.type = static
a1.sources.r1.interceptors.i2.key = token
a1.sources.r1.interceptors.i2.value = abc
a1.sources.r1.ssl.keystore-password = hunter2
a1.channels.c1.type = memory
a1.channels.c2.type = file
a1.channels.c2.encryption.keyProvider.keys.key-0.passwordFile = /etc/pw
a1.sinks.k1.type = avro
a1.sinks.k1.channel = c1
a1.sinks.k1.truststore-password = s3cret
a1.sinks.k1.hostname = h
a1.sinks.k2.type = null
a1.sinks.k2.channel = c1
a1.sinks.k3.type = logger
a1.sinks.k3.channel = c2
a1.sinkgroups.g1.sinks = k1 k2
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k1 = 10
";

    fn def() -> AgentDef {
        let (entries, _) = flumen_config::parse_properties(CONF);
        let (def, diags) = flumen_config::load_agent(&entries, "a1", &|_| None);
        assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
        def
    }

    #[test]
    fn secrets() {
        for k in [
            "password",
            "keystore-password",
            "truststore-password",
            "ssl.keystore.password",
            "keystorePassword",
            "sasl.pass",
            "client.secret",
            "auth.token",
            "credentials",
            "kafka.producer.sasl.jaas.config",
            "keys.key-0.passwordFile",
        ] {
            assert!(is_secret(k), "{k}");
        }
        for k in [
            "port",
            "hostname",
            "keystore",
            "batch-size",
            "selector.header",
            "kerberosPrincipal",
        ] {
            assert!(!is_secret(k), "{k}");
        }
    }

    #[test]
    fn wiring_masking_and_reload() {
        let def = def();
        let comps = components(&def, Path::new("/etc/flume.conf"), &Running::all(&def));
        let reload = Reload {
            time: DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
                .expect("time")
                .with_timezone(&Utc),
            outcome: Outcome::Rejected,
            diagnostics: vec![
                Diagnostic::error("boom")
                    .with_file("/etc/flume.conf".into())
                    .at_line(7),
                Diagnostic::warning("meh")
                    .with_file("/etc/flume.conf".into())
                    .at_line(3),
            ],
        };
        let doc = document(&comps, &reload, reload.time, 4);
        assert_eq!(doc["agent"], "a1");
        assert_eq!(doc["file"], "/etc/flume.conf");
        assert_eq!(doc["generation"], 4);
        let r1 = &doc["sources"][0];
        assert_eq!(r1["kind"], "source");
        assert_eq!(r1["type"], "netcat");
        assert_eq!(r1["line"], 5);
        assert_eq!(r1["channels"], json!(["c1", "c2"]));
        assert_eq!(r1["selector"]["type"], "multiplexing");
        assert_eq!(r1["selector"]["properties"]["mapping.CA"], "c1");
        assert_eq!(r1["interceptors"][0]["name"], "i1");
        assert_eq!(r1["interceptors"][1]["type"], "static");
        // A key named `key` whose value is "token" is not a secret; the value stays.
        assert_eq!(r1["interceptors"][1]["properties"]["key"], "token");
        assert_eq!(r1["properties"]["port"], "4444");
        assert_eq!(r1["properties"]["ssl.keystore-password"], MASK);
        assert_eq!(
            doc["channels"][1]["properties"]["encryption.keyProvider.keys.key-0.passwordFile"],
            MASK
        );
        let k1 = &doc["sinks"][0];
        assert_eq!(k1["channel"], "c1");
        assert_eq!(k1["group"], "g1");
        assert_eq!(k1["properties"]["truststore-password"], MASK);
        assert_eq!(k1["properties"]["hostname"], "h");
        assert_eq!(doc["sinks"][2]["group"], Value::Null);
        let g1 = &doc["sinkgroups"][0];
        assert_eq!(g1["processor"]["type"], "failover");
        assert_eq!(g1["processor"]["properties"]["priority.k1"], "10");
        assert_eq!(g1["sinks"], json!(["k1", "k2"]));
        assert!(!doc.to_string().contains("hunter2"));
        assert!(!doc.to_string().contains("s3cret"));
        let r = &doc["reload"];
        assert_eq!(r["time"], "2026-01-02T03:04:05.000Z");
        assert_eq!(r["outcome"], "rejected");
        assert_eq!(r["errors"][0], "/etc/flume.conf:7: error: boom");
        assert_eq!(r["warnings"][0], "/etc/flume.conf:3: warning: meh");
    }

    #[test]
    fn only_running_components() {
        let def = def();
        let mut running = Running::all(&def);
        running.sinks.remove("k3");
        running.channels.remove("c2");
        let comps = components(&def, Path::new("f"), &running);
        assert_eq!(comps["channels"].as_array().map(Vec::len), Some(1));
        assert_eq!(comps["sinks"].as_array().map(Vec::len), Some(2));
    }
}
