//! Flume's key grammar for one agent: lists, components, wiring checks.
//!
//! ```text
//! <agent>.sources|channels|sinks|sinkgroups|configfilters = <names, whitespace-separated>
//! <agent>.<kind>.<name>.<property>                        = <value>
//!                 └ no dots in <name>; <property> may have dots (selector.mapping.CA)
//! ```
//!
//! [`load_agent`] turns the entries of one agent into an [`AgentDef`] and checks only the
//! structure: lists vs. component keys, `type` present, source `channels` (plural) and sink
//! `channel` (singular) naming listed channels, selector and interceptor wiring, sink group
//! membership. Whether a `type` names a real component is the caller's business.
//!
//! Flume drops what is wrong and runs the rest; flumen reports every problem instead and lets
//! the caller refuse the configuration (reference §8). So nothing here stops at the first
//! problem, and a component with errors is still returned when it can be, so that later checks
//! (channel usage, for instance) do not cascade into misleading extra messages.
//!
//! Values (never keys) go through `${...}` substitution first: `${VAR}` and `${env:VAR}` read the
//! environment, `${f['KEY']}` reads through an `env` config filter, `$${` is a literal `${`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::properties::{self, Entry};
use crate::props::Props;

/// A listed component with its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentDef {
    /// The name from the list (`r1`).
    pub name: String,
    /// The trimmed `type` value; `None` when absent or blank (already reported as an error).
    pub type_name: Option<String>,
    /// All keys of the component relative to it, `type` included.
    pub props: Props,
    /// Line of the list that declared the component.
    pub list_line: u32,
}

/// A source: its component, the channels it writes to, selector and interceptors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDef {
    /// Name, type and properties.
    pub def: ComponentDef,
    /// The `channels` list (plural), in order.
    pub channels: Vec<String>,
    /// The `selector.*` keys with the prefix stripped.
    pub selector: Props,
    /// The interceptor chain, in `interceptors` list order.
    pub interceptors: Vec<InterceptorDef>,
}

/// One interceptor of a source's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterceptorDef {
    /// The name from the source's `interceptors` list.
    pub name: String,
    /// The trimmed `type`; `None` when absent (already reported as an error).
    pub type_name: Option<String>,
    /// The `interceptors.<name>.*` keys with the prefix stripped.
    pub props: Props,
}

/// A sink and the one channel it drains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkDef {
    /// Name, type and properties.
    pub def: ComponentDef,
    /// The `channel` (singular); `None` when missing (already reported as an error).
    pub channel: Option<String>,
}

/// A channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelDef {
    /// Name, type and properties.
    pub def: ComponentDef,
}

/// A sink group: member sinks driven by one processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkGroupDef {
    /// The name from `<agent>.sinkgroups`.
    pub name: String,
    /// Members from `<group>.sinks`, in order, without the invalid ones.
    pub sinks: Vec<String>,
    /// The `processor.*` keys with the prefix stripped (`type` absent means `default`).
    pub processor: Props,
    /// All keys of the group, relative to it.
    pub props: Props,
    /// Line of the `sinkgroups` list.
    pub list_line: u32,
}

/// Everything one agent declares, in list order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentDef {
    /// The agent name (`-n`).
    pub name: String,
    /// Sources, in `<agent>.sources` order.
    pub sources: Vec<SourceDef>,
    /// Channels, in `<agent>.channels` order.
    pub channels: Vec<ChannelDef>,
    /// Sinks, in `<agent>.sinks` order.
    pub sinks: Vec<SinkDef>,
    /// Sink groups, in `<agent>.sinkgroups` order.
    pub sinkgroups: Vec<SinkGroupDef>,
}

/// The component kinds, as they appear in keys.
const KINDS: [&str; 5] = [
    "sources",
    "channels",
    "sinks",
    "sinkgroups",
    "configfilters",
];

/// Singular label used in messages and `component` fields.
fn label(kind: &str) -> &'static str {
    match kind {
        "sources" => "source",
        "channels" => "channel",
        "sinks" => "sink",
        "sinkgroups" => "sink group",
        _ => "config filter",
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split_whitespace().map(str::to_string).collect()
}

/// A parsed top-level list.
#[derive(Default)]
struct List {
    names: Vec<String>,
    line: Option<u32>,
}

/// Substitutes `${...}` in one value; the error (unlocated) is the first unresolvable reference.
fn substitute(
    value: &str,
    filters: &BTreeMap<String, Option<String>>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<Diagnostic>), Box<Diagnostic>> {
    let mut out = String::with_capacity(value.len());
    let mut warnings = Vec::new();
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
            continue;
        }
        if !after.starts_with("${") {
            out.push('$');
            rest = &after[1..];
            continue;
        }
        let Some(end) = after.find('}') else {
            warnings.push(Diagnostic::warning(
                "unterminated `${` is kept as written (write `$${` for a literal `${`)",
            ));
            out.push_str(after);
            rest = "";
            break;
        };
        let inner = &after[2..end];
        rest = &after[end + 1..];
        let resolved = if let Some(name) = inner.strip_prefix("env:") {
            env(name).ok_or_else(|| {
                Diagnostic::error(format!("environment variable `{name}` is not set"))
            })?
        } else if let Some((filter, key)) = parse_filter_ref(inner) {
            match filters.get(filter) {
                None => {
                    let mut d = Diagnostic::error(format!(
                        "config filter `{filter}` is not declared in the agent's `configfilters`"
                    ));
                    if let Some(h) = did_you_mean(filter, filters.keys().map(String::as_str)) {
                        d = d.with_hint(h);
                    }
                    return Err(Box::new(d));
                }
                // The filter's own problem (bad type) is reported once, at its definition.
                Some(None) => String::new(),
                Some(Some(_env)) => env(key).ok_or_else(|| {
                    Diagnostic::error(format!(
                        "environment variable `{key}` (read through config filter `{filter}`) is not set"
                    ))
                })?,
            }
        } else {
            env(inner).ok_or_else(|| {
                Diagnostic::error(format!("environment variable `{inner}` is not set"))
                    .with_hint("write `$${` for a literal `${`")
            })?
        };
        out.push_str(&resolved);
    }
    out.push_str(rest);
    Ok((out, warnings))
}

/// `f1['KEY']` or `f1["KEY"]` → (f1, KEY).
fn parse_filter_ref(inner: &str) -> Option<(&str, &str)> {
    let open = inner.find('[')?;
    let filter = &inner[..open];
    let body = inner[open + 1..].strip_suffix(']')?;
    let key = body
        .strip_prefix('\'')
        .and_then(|b| b.strip_suffix('\''))
        .or_else(|| body.strip_prefix('"').and_then(|b| b.strip_suffix('"')))?;
    Some((filter, key))
}

/// Applies Flume's agent grammar to `entries` for agent `agent`.
///
/// `env` looks up environment variables (inject a closure in tests; use
/// `|name| std::env::var(name).ok()` in production). Returns the agent as far as it could be
/// understood plus every diagnostic; the configuration is usable only if none is an error.
pub fn load_agent(
    entries: &[Entry],
    agent: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> (AgentDef, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut def = AgentDef {
        name: agent.to_string(),
        ..AgentDef::default()
    };
    let prefix = format!("{agent}.");

    // Last duplicate wins, as in java.util.Properties; the earlier one gets a warning.
    let mut latest: BTreeMap<&str, &Entry> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.key.starts_with(&prefix)) {
        if let Some(prev) = latest.insert(&e.key, e) {
            diags.push(
                Diagnostic::warning(format!(
                    "duplicate property, the value on line {} is used",
                    e.line
                ))
                .at_line(prev.line)
                .with_key(prev.key.clone()),
            );
        }
    }
    if latest.is_empty() {
        let agents: BTreeSet<&str> = entries
            .iter()
            .filter_map(|e| e.key.split_once('.').map(|(a, _)| a))
            .filter(|a| !a.is_empty())
            .collect();
        let mut d = Diagnostic::error(format!("no configuration found for agent `{agent}`"));
        if let Some(h) = did_you_mean(agent, agents.iter().copied()) {
            d = d.with_hint(h);
        } else if !agents.is_empty() {
            let names: Vec<&str> = agents.into_iter().collect();
            d = d.with_hint(format!("agents in this file: {}", names.join(", ")));
        }
        diags.push(d);
        return (def, diags);
    }

    // Config filters come first: substitution in every other value depends on them.
    // name → Some(type) when usable, None when unusable (already reported).
    let mut filters: BTreeMap<String, Option<String>> = BTreeMap::new();
    let filter_list_key = format!("{agent}.configfilters");
    if let Some(e) = latest.get(filter_list_key.as_str()) {
        for f in split_list(&e.value) {
            let type_key = format!("{agent}.configfilters.{f}.type");
            let ty = latest
                .get(type_key.as_str())
                .map(|t| (t.value.trim().to_string(), t.line));
            let usable = match ty {
                Some((t, _))
                    if t.eq_ignore_ascii_case("env")
                        || t == "org.apache.flume.configfilter.EnvironmentVariableConfigFilter" =>
                {
                    Some(t)
                }
                Some((t, line)) => {
                    diags.push(
                        Diagnostic::error(format!("config filter type `{t}` is not supported"))
                            .at_line(line)
                            .with_key(type_key.clone())
                            .with_component(format!("config filter {f}"))
                            .with_hint("flumen supports config filters of type `env` only"),
                    );
                    None
                }
                None => None, // reported below with the other components without `type`
            };
            filters.insert(f, usable);
        }
    }

    // Substitute values, then split keys by grammar.
    let mut lists: BTreeMap<&str, List> = BTreeMap::new();
    // kind → name → props
    let mut comps: BTreeMap<&str, BTreeMap<String, Props>> = BTreeMap::new();
    for (key, e) in &latest {
        let rest = &key[prefix.len()..];
        let value = if rest.starts_with("configfilters") {
            e.value.clone()
        } else {
            match substitute(&e.value, &filters, env) {
                Ok((v, ws)) => {
                    diags.extend(ws.into_iter().map(|w| w.at_line(e.line).with_key(*key)));
                    v
                }
                Err(d) => {
                    diags.push(d.at_line(e.line).with_key(*key));
                    e.value.clone()
                }
            }
        };
        if let Some(kind) = KINDS.iter().find(|k| **k == rest) {
            lists.insert(
                kind,
                List {
                    names: split_list(&value),
                    line: Some(e.line),
                },
            );
            continue;
        }
        let parts: Vec<&str> = rest.splitn(3, '.').collect();
        match parts.as_slice() {
            [kind, name, prop] if !name.is_empty() && !prop.is_empty() => {
                if let Some(kind) = KINDS.iter().find(|k| *k == kind) {
                    let props = comps
                        .entry(kind)
                        .or_default()
                        .entry(name.to_string())
                        .or_insert_with(|| {
                            Props::new(
                                format!("{agent}.{kind}.{name}."),
                                format!("{} {name}", label(kind)),
                            )
                        });
                    props.insert(*prop, value, e.line);
                } else {
                    let mut d = Diagnostic::error(format!("unknown component kind `{kind}`"))
                        .at_line(e.line)
                        .with_key(*key);
                    if let Some(h) = did_you_mean(kind, KINDS) {
                        d = d.with_hint(h);
                    }
                    diags.push(d);
                }
            }
            _ => {
                let mut d = Diagnostic::warning(format!("unknown property `{key}`"))
                    .at_line(e.line)
                    .with_key(*key);
                if let Some(h) = did_you_mean(rest, KINDS) {
                    d = d.with_hint(h);
                }
                diags.push(d);
            }
        }
    }

    // Lists: duplicates, then listed-vs-defined for every kind.
    for kind in KINDS {
        if let Some(list) = lists.get_mut(kind) {
            let mut seen = BTreeSet::new();
            let mut unique = Vec::new();
            for n in std::mem::take(&mut list.names) {
                if seen.insert(n.clone()) {
                    unique.push(n);
                } else {
                    diags.push(
                        Diagnostic::warning(format!("`{n}` is listed twice in `{agent}.{kind}`"))
                            .at_opt_line(list.line)
                            .with_key(format!("{agent}.{kind}")),
                    );
                }
            }
            list.names = unique;
        }
    }
    if lists.get("channels").is_none_or(|l| l.names.is_empty()) {
        let line = lists.get("channels").and_then(|l| l.line);
        diags.push(
            Diagnostic::error(format!(
                "agent `{agent}` has no channels: `{agent}.channels` is missing or empty"
            ))
            .at_opt_line(line)
            .with_key(format!("{agent}.channels")),
        );
    }
    // kind → listed names that have properties, in list order, with the list line.
    let mut defined: BTreeMap<&str, Vec<(String, Props, u32)>> = BTreeMap::new();
    for kind in KINDS {
        let empty = List::default();
        let list = lists.get(kind).unwrap_or(&empty);
        let list_line = list.line.unwrap_or(0);
        let mut props_of = comps.remove(kind).unwrap_or_default();
        let mut out = Vec::new();
        for name in &list.names {
            match props_of.remove(name) {
                Some(p) => out.push((name.clone(), p, list_line)),
                None => diags.push(
                    Diagnostic::error(format!(
                        "{} `{name}` is listed in {agent}.{kind} but has no properties",
                        label(kind)
                    ))
                    .at_opt_line(list.line)
                    .with_key(format!("{agent}.{kind}"))
                    .with_component(format!("{} {name}", label(kind))),
                ),
            }
        }
        for (name, p) in props_of {
            let mut listed = list.names.clone();
            listed.push(name.clone());
            diags.push(
                Diagnostic::error(format!(
                    "{} `{name}` has properties but is not listed in `{agent}.{kind}`",
                    label(kind)
                ))
                .at_opt_line(p.first_line())
                .with_key(
                    p.iter()
                        .next()
                        .map(|(k, _, _)| p.full_key(k))
                        .unwrap_or_default(),
                )
                .with_component(p.component())
                .with_hint(format!(
                    "add it to the list: `{agent}.{kind} = {}`",
                    listed.join(" ")
                )),
            );
        }
        // `type` is required except for sink groups (processor.type defaults to `default`).
        if kind != "sinkgroups" {
            for (name, p, _) in &out {
                if p.get("type").is_none_or(|t| t.trim().is_empty()) {
                    diags.push(p.error("type", format!("{} `{name}` has no `type`", label(kind))));
                }
            }
        }
        defined.insert(kind, out);
    }
    let comp = |name: String, p: Props, list_line: u32| ComponentDef {
        type_name: p
            .get("type")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        name,
        props: p,
        list_line,
    };

    let channel_names: Vec<String> = defined
        .get("channels")
        .map(|v| v.iter().map(|(n, _, _)| n.clone()).collect())
        .unwrap_or_default();
    let unknown_channel = |p: &Props, key: &str, ch: &str, what: String| {
        let mut d = p.error(
            key,
            format!("{what} channel `{ch}`, which is not in `{agent}.channels`"),
        );
        if let Some(h) = did_you_mean(ch, channel_names.iter().map(String::as_str)) {
            d = d.with_hint(h);
        }
        d
    };
    let mut used_channels: BTreeSet<String> = BTreeSet::new();

    for (name, p, list_line) in defined.remove("channels").unwrap_or_default() {
        def.channels.push(ChannelDef {
            def: comp(name, p, list_line),
        });
    }

    for (name, p, list_line) in defined.remove("sources").unwrap_or_default() {
        let (channels_key, channels) = match (p.get("channels"), p.get("channel")) {
            (Some(v), _) => ("channels", split_list(v)),
            (None, Some(v)) => {
                diags.push(
                    p.error("channel", format!("source `{name}` has no `channels`"))
                        .with_hint("sources use `channels` (plural)"),
                );
                ("channel", split_list(v))
            }
            (None, None) => {
                diags.push(p.error("channels", format!("source `{name}` has no `channels`")));
                ("channels", Vec::new())
            }
        };
        if channels.is_empty() && p.get(channels_key).is_some() {
            diags.push(p.error(
                channels_key,
                format!("source `{name}` has an empty `channels` list"),
            ));
        }
        for ch in &channels {
            used_channels.insert(ch.clone());
            if !channel_names.contains(ch) {
                diags.push(unknown_channel(
                    &p,
                    channels_key,
                    ch,
                    format!("source `{name}` writes to"),
                ));
            }
        }

        let selector = p.sub("selector", p.component());
        for (k, v, _) in selector.iter() {
            let routes = k == "optional"
                || k == "default"
                || k.starts_with("mapping.")
                || k.starts_with("optional.");
            if !routes {
                continue;
            }
            for ch in split_list(v) {
                if !channels.contains(&ch) {
                    diags.push(selector.error(
                        k,
                        format!(
                            "the selector of source `{name}` names channel `{ch}`, which is not in the source's `channels` ({})",
                            channels.join(" ")
                        ),
                    ));
                }
            }
        }

        let chain = p.get("interceptors").map(split_list).unwrap_or_default();
        let all = p.sub("interceptors", p.component());
        let mut interceptors = Vec::new();
        for i in &chain {
            let ip = p.sub(
                &format!("interceptors.{i}"),
                format!("interceptor {i} of source {name}"),
            );
            let type_name = ip
                .get("type")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if type_name.is_none() {
                let mut d = ip.error(
                    "type",
                    format!("interceptor `{i}` of source `{name}` has no `type`"),
                );
                if ip.is_empty() {
                    d.line = p.line("interceptors");
                }
                diags.push(d);
            }
            interceptors.push(InterceptorDef {
                name: i.clone(),
                type_name,
                props: ip,
            });
        }
        let orphans: BTreeSet<&str> = all
            .iter()
            .filter_map(|(k, _, _)| k.split_once('.').map(|(i, _)| i))
            .filter(|i| !chain.iter().any(|c| c == i))
            .collect();
        for i in orphans {
            // Blame the interceptor's first line, not its alphabetically first key.
            let sp = all.sub(i, all.component());
            let first = sp
                .iter()
                .min_by_key(|&(_, _, l)| l)
                .map(|(k, _, _)| k.to_string());
            let key = format!("{i}.{}", first.unwrap_or_default());
            diags.push(all.warning(
                &key,
                format!(
                    "interceptor `{i}` has properties but is not listed in `{}`",
                    p.full_key("interceptors")
                ),
            ));
        }

        def.sources.push(SourceDef {
            def: comp(name, p, list_line),
            channels,
            selector,
            interceptors,
        });
    }

    for (name, p, list_line) in defined.remove("sinks").unwrap_or_default() {
        let (key, value) = match (p.get("channel"), p.get("channels")) {
            (Some(v), _) => ("channel", Some(v)),
            (None, Some(v)) => {
                diags.push(
                    p.error("channels", format!("sink `{name}` has no `channel`"))
                        .with_hint("sinks use `channel` (singular)"),
                );
                ("channels", Some(v))
            }
            (None, None) => {
                diags.push(p.error("channel", format!("sink `{name}` has no `channel`")));
                ("channel", None)
            }
        };
        let names = value.map(split_list).unwrap_or_default();
        let channel = match names.as_slice() {
            [] => {
                if value.is_some() {
                    diags.push(p.error(key, format!("sink `{name}` has an empty `channel`")));
                }
                None
            }
            [one] => Some(one.clone()),
            [..] => {
                diags.push(p.error(
                    key,
                    format!(
                        "sink `{name}` names several channels (`{}`): a sink drains exactly one channel",
                        names.join(" ")
                    ),
                ));
                None
            }
        };
        for ch in &names {
            used_channels.insert(ch.clone());
            if !channel_names.contains(ch) {
                diags.push(unknown_channel(
                    &p,
                    key,
                    ch,
                    format!("sink `{name}` drains"),
                ));
            }
        }
        def.sinks.push(SinkDef {
            def: comp(name, p, list_line),
            channel,
        });
    }

    let sink_names: Vec<String> = def.sinks.iter().map(|s| s.def.name.clone()).collect();
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for (name, p, list_line) in defined.remove("sinkgroups").unwrap_or_default() {
        let members = p.get("sinks").map(split_list).unwrap_or_default();
        if members.is_empty() {
            diags.push(p.error("sinks", format!("sink group `{name}` has no `sinks`")));
        }
        let mut sinks = Vec::new();
        for s in members {
            if !sink_names.contains(&s) {
                let mut d = p.error(
                    "sinks",
                    format!(
                        "sink group `{name}` names sink `{s}`, which is not in `{agent}.sinks`"
                    ),
                );
                if let Some(h) = did_you_mean(&s, sink_names.iter().map(String::as_str)) {
                    d = d.with_hint(h);
                }
                diags.push(d);
            } else if let Some(other) = owner.get(&s) {
                if other != &name {
                    diags.push(p.error(
                        "sinks",
                        format!("sink `{s}` is already in sink group `{other}`: a sink may belong to one group only"),
                    ));
                }
            } else {
                owner.insert(s.clone(), name.clone());
                sinks.push(s);
            }
        }
        def.sinkgroups.push(SinkGroupDef {
            processor: p.sub("processor", p.component()),
            name,
            sinks,
            props: p,
            list_line,
        });
    }

    for c in &def.channels {
        if !used_channels.contains(&c.def.name) {
            diags.push(
                Diagnostic::warning(format!(
                    "channel `{}` is not used by any source or sink",
                    c.def.name
                ))
                .at_opt_line(c.def.props.first_line())
                .with_component(c.def.props.component()),
            );
        }
    }

    match (def.sources.is_empty(), def.sinks.is_empty()) {
        (true, true) => diags.push(
            Diagnostic::error(format!("agent `{agent}` has no sources and no sinks"))
                .with_key(format!("{agent}.sources")),
        ),
        (true, false) => diags.push(
            Diagnostic::warning(format!("agent `{agent}` has no sources"))
                .with_key(format!("{agent}.sources")),
        ),
        (false, true) => diags.push(
            Diagnostic::warning(format!("agent `{agent}` has no sinks"))
                .with_key(format!("{agent}.sinks")),
        ),
        (false, false) => {}
    }

    (def, diags)
}

/// Reads `path` as UTF-8, parses it and loads `agent`, tagging every diagnostic with the path.
///
/// # Errors
///
/// `Err` with all diagnostics when the file cannot be read, is not UTF-8, or any diagnostic is
/// an error; otherwise `Ok` with the agent and the warnings.
pub fn load_file(
    path: &Path,
    agent: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(AgentDef, Vec<Diagnostic>), Vec<Diagnostic>> {
    let file: Arc<str> = Arc::from(path.display().to_string());
    let bytes = std::fs::read(path).map_err(|e| {
        vec![
            Diagnostic::error(format!("cannot read configuration file: {e}"))
                .with_file(file.clone()),
        ]
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        vec![
            Diagnostic::error(format!(
                "{} is not valid UTF-8 (invalid byte at offset {})",
                path.display(),
                e.valid_up_to()
            ))
            .with_file(file.clone())
            .with_hint("write non-ASCII characters as \\uXXXX escapes, or save the file as UTF-8"),
        ]
    })?;
    // A BOM would become part of the first key; editors on Windows add one silently.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (entries, mut diags) = properties::parse(text);
    let (def, more) = load_agent(&entries, agent, env);
    diags.extend(more);
    let diags: Vec<Diagnostic> = diags
        .into_iter()
        .map(|d| d.with_file(file.clone()))
        .collect();
    if diags.iter().any(Diagnostic::is_error) {
        Err(diags)
    } else {
        Ok((def, diags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::Severity;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load(text: &str) -> (AgentDef, Vec<Diagnostic>) {
        load_env(text, &no_env)
    }

    fn load_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> (AgentDef, Vec<Diagnostic>) {
        let (entries, d) = properties::parse(text);
        assert!(d.is_empty(), "{d:?}");
        load_agent(&entries, "a1", env)
    }

    /// The one diagnostic whose message contains `needle`.
    fn find<'a>(diags: &'a [Diagnostic], needle: &str) -> &'a Diagnostic {
        let found: Vec<&Diagnostic> = diags
            .iter()
            .filter(|d| d.message.contains(needle))
            .collect();
        assert_eq!(found.len(), 1, "looking for {needle:?} in {diags:#?}");
        found[0]
    }

    const GOOD: &str = "\
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sinkgroups = g1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 0.0.0.0
a1.sources.r1.channels = c1 c2
a1.sources.r1.selector.type = multiplexing
a1.sources.r1.selector.mapping.CA = c1
a1.sources.r1.selector.default = c2
a1.sources.r1.interceptors = i1 i2
a1.sources.r1.interceptors.i1.type = timestamp
a1.sources.r1.interceptors.i2.type = host
a1.sources.r1.interceptors.i2.hostHeader = h
a1.channels.c1.type = memory
a1.channels.c2.type = file
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
a1.sinks.k2.type = null
a1.sinks.k2.channel = c2
a1.sinkgroups.g1.sinks = k1 k2
a1.sinkgroups.g1.processor.type = failover
a1.sinkgroups.g1.processor.priority.k1 = 10
other.sources = x
";

    #[test]
    fn good_config() {
        let (a, d) = load(GOOD);
        assert!(d.is_empty(), "{d:#?}");
        assert_eq!(a.name, "a1");
        let r1 = &a.sources[0];
        assert_eq!(r1.def.name, "r1");
        assert_eq!(r1.def.type_name.as_deref(), Some("netcat"));
        assert_eq!(r1.def.list_line, 1);
        assert_eq!(r1.def.props.get("bind"), Some("0.0.0.0"));
        assert_eq!(r1.channels, ["c1", "c2"]);
        assert_eq!(r1.selector.get("mapping.CA"), Some("c1"));
        assert_eq!(r1.selector.full_key("type"), "a1.sources.r1.selector.type");
        assert_eq!(r1.interceptors.len(), 2);
        assert_eq!(r1.interceptors[1].name, "i2");
        assert_eq!(r1.interceptors[1].type_name.as_deref(), Some("host"));
        assert_eq!(r1.interceptors[1].props.get("hostHeader"), Some("h"));
        assert_eq!(
            r1.interceptors[1].props.component(),
            "interceptor i2 of source r1"
        );
        assert_eq!(
            a.channels
                .iter()
                .map(|c| c.def.name.as_str())
                .collect::<Vec<_>>(),
            ["c1", "c2"]
        );
        assert_eq!(a.channels[0].def.props.component(), "channel c1");
        assert_eq!(a.sinks[1].channel.as_deref(), Some("c2"));
        assert_eq!(a.sinkgroups[0].sinks, ["k1", "k2"]);
        assert_eq!(a.sinkgroups[0].processor.get("priority.k1"), Some("10"));
        assert_eq!(a.sinkgroups[0].props.component(), "sink group g1");
    }

    #[test]
    fn list_order_is_kept() {
        let (a, _) = load(
            "a1.channels = zc ac\na1.channels.zc.type = memory\na1.channels.ac.type = memory\n",
        );
        assert_eq!(
            a.channels
                .iter()
                .map(|c| c.def.name.as_str())
                .collect::<Vec<_>>(),
            ["zc", "ac"]
        );
    }

    #[test]
    fn no_configuration_for_agent() {
        let (_, d) = load("a2.sources = r1\nb.x = 1\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].message, "no configuration found for agent `a1`");
        assert!(d[0].is_error());
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `a2`?"));
        let (_, d) = load("agentfoo.sources = r1\n");
        assert_eq!(d[0].hint.as_deref(), Some("agents in this file: agentfoo"));
    }

    #[test]
    fn duplicate_property() {
        let (a, d) = load(&format!("{GOOD}a1.sources.r1.bind = 1.1.1.1\n"));
        let w = find(&d, "duplicate property");
        assert_eq!(
            w.message,
            "duplicate property, the value on line 25 is used"
        );
        assert_eq!(w.line, Some(6));
        assert_eq!(w.severity, Severity::Warning);
        assert_eq!(a.sources[0].def.props.get("bind"), Some("1.1.1.1"));
    }

    #[test]
    fn env_substitution() {
        let env = |n: &str| match n {
            "HOST" => Some("h.example".to_string()),
            "SECRET" => Some("s3".to_string()),
            _ => None,
        };
        let text = format!(
            "{GOOD}a1.configfilters = f1\na1.configfilters.f1.type = env\n\
             a1.sources.r1.x1 = ${{HOST}}:${{env:HOST}}\n\
             a1.sources.r1.x2 = $${{HOST}} $5\n\
             a1.sources.r1.x3 = ${{f1['SECRET']}}/${{f1[\"SECRET\"]}}\n\
             a1.sources.r1.x4 = ${{MISSING}}\n\
             a1.sources.r1.x5 = ${{env:GONE}}\n\
             a1.sources.r1.x6 = ${{f2['SECRET']}}\n\
             a1.sources.r1.x7 = ${{f1['NOPE']}}\n\
             a1.sources.r1.x8 = ${{HOST\n"
        );
        let (a, d) = load_env(&text, &env);
        let p = &a.sources[0].def.props;
        assert_eq!(p.get("x1"), Some("h.example:h.example"));
        assert_eq!(p.get("x2"), Some("${HOST} $5"));
        assert_eq!(p.get("x3"), Some("s3/s3"));
        assert_eq!(p.get("x8"), Some("${HOST"));
        let e = find(&d, "`MISSING` is not set");
        assert_eq!(e.message, "environment variable `MISSING` is not set");
        assert_eq!(e.line, Some(30));
        assert_eq!(e.key.as_deref(), Some("a1.sources.r1.x4"));
        assert!(e.is_error());
        assert_eq!(find(&d, "`GONE` is not set").line, Some(31));
        let e = find(&d, "config filter `f2`");
        assert_eq!(
            e.message,
            "config filter `f2` is not declared in the agent's `configfilters`"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `f1`?"));
        assert_eq!(
            find(&d, "`NOPE`").message,
            "environment variable `NOPE` (read through config filter `f1`) is not set"
        );
        let w = find(&d, "unterminated");
        assert_eq!(w.line, Some(34));
        assert!(!w.is_error());
        assert_eq!(d.len(), 5, "{d:#?}");
    }

    #[test]
    fn substitution_is_not_applied_to_keys() {
        let env = |_: &str| Some("X".to_string());
        let (_, d) = load_env(&format!("{GOOD}a1.${{K}} = 1\n"), &env);
        assert_eq!(
            find(&d, "unknown property").message,
            "unknown property `a1.${K}`"
        );
    }

    #[test]
    fn unsupported_config_filter() {
        let text = format!(
            "{GOOD}a1.configfilters = f1 f2\na1.configfilters.f1.type = external\na1.configfilters.f1.command = x\n"
        );
        let (_, d) = load(&text);
        let e = find(&d, "not supported");
        assert_eq!(e.message, "config filter type `external` is not supported");
        assert_eq!(e.line, Some(26));
        assert_eq!(e.key.as_deref(), Some("a1.configfilters.f1.type"));
        let e = find(&d, "config filter `f2` is listed");
        assert_eq!(
            e.message,
            "config filter `f2` is listed in a1.configfilters but has no properties"
        );
    }

    #[test]
    fn list_duplicates_and_missing_channels() {
        let (_, d) = load("a1.sources = r1 r1\na1.sources.r1.type = seq\n");
        let w = find(&d, "listed twice");
        assert_eq!(w.message, "`r1` is listed twice in `a1.sources`");
        assert_eq!(w.line, Some(1));
        assert!(!w.is_error());
        let e = find(&d, "has no channels");
        assert_eq!(
            e.message,
            "agent `a1` has no channels: `a1.channels` is missing or empty"
        );
        assert!(e.is_error());
        assert_eq!(find(&d, "has no `channels`").line, Some(2));
        assert_eq!(find(&d, "has no sinks").severity, Severity::Warning);
    }

    #[test]
    fn unknown_kind_and_unknown_property() {
        let (_, d) = load(&format!(
            "{GOOD}a1.source.r1.type = seq\na1.foo = x\na1.sinkgroup = g\n"
        ));
        let e = find(&d, "unknown component kind");
        assert_eq!(e.message, "unknown component kind `source`");
        assert_eq!(e.hint.as_deref(), Some("did you mean `sources`?"));
        assert_eq!(e.line, Some(25));
        assert!(e.is_error());
        let w = find(&d, "`a1.foo`");
        assert_eq!(w.message, "unknown property `a1.foo`");
        assert_eq!(w.line, Some(26));
        assert!(!w.is_error());
        let w = find(&d, "`a1.sinkgroup`");
        assert_eq!(w.hint.as_deref(), Some("did you mean `sinkgroups`?"));
    }

    #[test]
    fn listed_without_properties_and_unlisted_with_properties() {
        let text = "a1.sources = r1 r9\na1.channels = c1\na1.sinks = k1\n\
            a1.sources.r1.type = seq\na1.sources.r1.channels = c1\n\
            a1.channels.c1.type = memory\na1.sinks.k1.type = logger\na1.sinks.k1.channel = c1\n\
            a1.sources.r2.type = seq\n";
        let (a, d) = load(text);
        let e = find(&d, "r9");
        assert_eq!(
            e.message,
            "source `r9` is listed in a1.sources but has no properties"
        );
        assert_eq!(e.line, Some(1));
        assert_eq!(e.component.as_deref(), Some("source r9"));
        let e = find(&d, "r2");
        assert_eq!(
            e.message,
            "source `r2` has properties but is not listed in `a1.sources`"
        );
        assert_eq!(e.line, Some(9));
        assert_eq!(
            e.hint.as_deref(),
            Some("add it to the list: `a1.sources = r1 r9 r2`")
        );
        assert_eq!(d.len(), 2, "{d:#?}");
        assert_eq!(a.sources.len(), 1);
    }

    #[test]
    fn missing_type() {
        let text = "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
            a1.sources.r1.channels = c1\n\
            a1.channels.c1.type = \na1.sinks.k1.channel = c1\n";
        let (a, d) = load(text);
        let e = find(&d, "source `r1` has no `type`");
        assert_eq!(e.line, Some(4));
        assert_eq!(e.key.as_deref(), Some("a1.sources.r1.type"));
        assert_eq!(find(&d, "channel `c1` has no `type`").line, Some(5));
        assert_eq!(find(&d, "sink `k1` has no `type`").line, Some(6));
        assert_eq!(a.sources[0].def.type_name, None);
        assert_eq!(d.len(), 3, "{d:#?}");
    }

    #[test]
    fn source_channel_errors() {
        let text = "a1.sources = r1 r2 r3\na1.channels = c1 c2\na1.sinks = k1\n\
            a1.sources.r1.type = seq\na1.sources.r1.channel = c1\n\
            a1.sources.r2.type = seq\n\
            a1.sources.r3.type = seq\na1.sources.r3.channels = c1 cx\n\
            a1.channels.c1.type = memory\na1.channels.c2.type = memory\n\
            a1.sinks.k1.type = logger\na1.sinks.k1.channel = c1\n";
        let (_, d) = load(text);
        let e = find(&d, "source `r1` has no `channels`");
        assert_eq!(e.hint.as_deref(), Some("sources use `channels` (plural)"));
        assert_eq!(e.line, Some(5));
        assert_eq!(e.key.as_deref(), Some("a1.sources.r1.channel"));
        let e = find(&d, "source `r2` has no `channels`");
        assert_eq!(e.line, Some(6));
        let e = find(&d, "`cx`");
        assert_eq!(
            e.message,
            "source `r3` writes to channel `cx`, which is not in `a1.channels`"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `c1`?"));
        assert_eq!(e.line, Some(8));
        let w = find(&d, "channel `c2` is not used");
        assert_eq!(w.message, "channel `c2` is not used by any source or sink");
        assert_eq!(w.line, Some(10));
        assert!(!w.is_error());
        assert_eq!(d.len(), 4, "{d:#?}");
    }

    #[test]
    fn sink_channel_errors() {
        let text = "a1.sources = r1\na1.channels = c1 c2\na1.sinks = k1 k2 k3 k4\n\
            a1.sources.r1.type = seq\na1.sources.r1.channels = c1 c2\n\
            a1.channels.c1.type = memory\na1.channels.c2.type = memory\n\
            a1.sinks.k1.type = logger\na1.sinks.k1.channels = c1\n\
            a1.sinks.k2.type = logger\n\
            a1.sinks.k3.type = logger\na1.sinks.k3.channel = c1 c2\n\
            a1.sinks.k4.type = logger\na1.sinks.k4.channel = cc1\n";
        let (a, d) = load(text);
        let e = find(&d, "sink `k1` has no `channel`");
        assert_eq!(e.hint.as_deref(), Some("sinks use `channel` (singular)"));
        assert_eq!(e.line, Some(9));
        assert_eq!(a.sinks[0].channel.as_deref(), Some("c1"));
        assert_eq!(find(&d, "sink `k2` has no `channel`").line, Some(10));
        let e = find(&d, "exactly one");
        assert_eq!(
            e.message,
            "sink `k3` names several channels (`c1 c2`): a sink drains exactly one channel"
        );
        assert_eq!(e.line, Some(12));
        let e = find(&d, "`cc1`");
        assert_eq!(
            e.message,
            "sink `k4` drains channel `cc1`, which is not in `a1.channels`"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `c1`?"));
        assert_eq!(d.len(), 4, "{d:#?}");
    }

    #[test]
    fn selector_channels_must_be_source_channels() {
        let text = format!(
            "{GOOD}a1.sources.r1.selector.optional.NY = c1 c3\na1.sources.r1.selector.mapping.TX = c9\n\
             a1.sources.r1.selector.optional = c4\n"
        );
        let (_, d) = load(&text);
        let e = find(&d, "`c3`");
        assert_eq!(
            e.message,
            "the selector of source `r1` names channel `c3`, which is not in the source's `channels` (c1 c2)"
        );
        assert_eq!(e.line, Some(25));
        assert_eq!(e.key.as_deref(), Some("a1.sources.r1.selector.optional.NY"));
        assert_eq!(find(&d, "`c9`").line, Some(26));
        assert_eq!(find(&d, "`c4`").line, Some(27));
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn interceptor_errors() {
        let text = format!(
            "{GOOD}a1.sources.r1.interceptors = i1 i3\na1.sources.r1.interceptors.i4.type = host\n"
        );
        let (a, d) = load(&text);
        let e = find(&d, "interceptor `i3`");
        assert_eq!(e.message, "interceptor `i3` of source `r1` has no `type`");
        assert_eq!(e.line, Some(25));
        assert_eq!(e.key.as_deref(), Some("a1.sources.r1.interceptors.i3.type"));
        assert_eq!(e.component.as_deref(), Some("interceptor i3 of source r1"));
        let w = find(&d, "interceptor `i4`");
        assert_eq!(
            w.message,
            "interceptor `i4` has properties but is not listed in `a1.sources.r1.interceptors`"
        );
        assert_eq!(w.line, Some(26));
        assert!(!w.is_error());
        let w = find(&d, "interceptor `i2`");
        assert_eq!(w.line, Some(13));
        assert_eq!(a.sources[0].interceptors.len(), 2);
        assert_eq!(d.len(), 4, "{d:#?}"); // + duplicate `interceptors`
    }

    #[test]
    fn sink_group_errors() {
        let text = format!(
            "{GOOD}a1.sinkgroups = g1 g2 g3\na1.sinkgroups.g2.sinks = k1 k9\na1.sinkgroups.g3.processor.type = default\n"
        );
        let (a, d) = load(&text);
        let e = find(&d, "already in sink group");
        assert_eq!(
            e.message,
            "sink `k1` is already in sink group `g1`: a sink may belong to one group only"
        );
        assert_eq!(e.line, Some(26));
        assert_eq!(e.component.as_deref(), Some("sink group g2"));
        let e = find(&d, "`k9`");
        assert_eq!(
            e.message,
            "sink group `g2` names sink `k9`, which is not in `a1.sinks`"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean `k1`?"));
        let e = find(&d, "sink group `g3` has no `sinks`");
        assert_eq!(e.line, Some(27));
        assert_eq!(e.key.as_deref(), Some("a1.sinkgroups.g3.sinks"));
        assert!(a.sinkgroups[1].sinks.is_empty());
        assert_eq!(d.len(), 4, "{d:#?}"); // + duplicate list warning
    }

    #[test]
    fn sources_and_sinks_presence() {
        let (_, d) = load("a1.channels = c1\na1.channels.c1.type = memory\n");
        let e = find(&d, "no sources and no sinks");
        assert_eq!(e.message, "agent `a1` has no sources and no sinks");
        assert!(e.is_error());
        let (_, d) = load(
            "a1.channels = c1\na1.channels.c1.type = memory\na1.sinks = k1\na1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n",
        );
        let w = find(&d, "has no sources");
        assert_eq!(w.message, "agent `a1` has no sources");
        assert!(!w.is_error());
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn load_file_tags_diagnostics() {
        let dir = std::env::temp_dir().join(format!("flumen-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.conf");
        std::fs::write(&good, format!("\u{feff}{GOOD}a1.foo = 1\n")).unwrap();
        let (a, w) = load_file(&good, "a1", &no_env).unwrap();
        assert_eq!(a.sources.len(), 1);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].file.as_deref(),
            Some(good.display().to_string().as_str())
        );
        assert!(
            w[0].to_string()
                .contains(":25: warning: a1.foo: unknown property `a1.foo`"),
            "{}",
            w[0]
        );

        let bad = dir.join("bad.conf");
        std::fs::write(&bad, "a1.sources = r1\na1.x = \\u12\n").unwrap();
        let e = load_file(&bad, "a1", &no_env).unwrap_err();
        assert!(e.iter().all(|d| d.file.is_some()));
        assert!(
            e.iter()
                .any(|d| d.message.starts_with("malformed") && d.line == Some(2))
        );

        let bin = dir.join("bin.conf");
        std::fs::write(&bin, b"a1.x = \xff\n").unwrap();
        let e = load_file(&bin, "a1", &no_env).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(
            e[0].message
                .contains("is not valid UTF-8 (invalid byte at offset 7)"),
            "{}",
            e[0]
        );

        let e = load_file(&dir.join("missing.conf"), "a1", &no_env).unwrap_err();
        assert!(e[0].message.starts_with("cannot read configuration file"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Mirrors the fuzz target with a config-shaped alphabet so the grammar gets exercised.
            #[test]
            fn load_agent_never_panics(
                s in "(a1\\.(sources|channels|sinks|sinkgroups|configfilters|x)(\\.[rcgkfi0-9]{1,2}(\\.(type|channels?|sinks|selector\\.(optional|default|mapping\\.x)|interceptors(\\.i1\\.type)?))?)? ?= ?[rckgif0-9 ${}\\[\\]'a-z:]{0,12}\n){0,12}"
            ) {
                let (entries, _) = properties::parse(&s);
                let _ = load_agent(&entries, "a1", &|n| (n.len() % 2 == 0).then(|| n.to_string()));
            }
        }
    }
}
