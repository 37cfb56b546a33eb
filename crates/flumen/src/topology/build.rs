//! From an [`AgentDef`] to a [`Plan`]: every component built, typed and validated, nothing
//! started. Collects every problem instead of stopping at the first (like a compiler), and in
//! lenient mode drops the broken components the way Flume does instead of refusing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use flumen_config::{AgentDef, Diagnostic, Props, SinkGroupDef, SourceDef};
use flumen_core::selector::{BalancePolicy, Multiplexing};
use flumen_core::{
    Channel, ChannelProcessor, ChannelSelector, FailoverProcessor, InterceptorChain,
    LoadBalanceProcessor, SinkDriver, SinkProcessor, SinkSelector, Source,
};
use serde::Deserialize;

use crate::components::channels::CHANNELS;
use crate::components::interceptors::INTERCEPTORS;
use crate::components::sinks::SINKS;
use crate::components::sources::SOURCES;
use crate::components::{
    ChannelBuildContext, SinkBuildContext, SinkDescriptor, SourceBuildContext, SourceDescriptor,
    lookup,
};

/// Identity of a component's configuration, line numbers excluded: equal fingerprints mean a
/// reload can keep the running component.
pub type Fingerprint = Vec<(String, String)>;

fn fingerprint(props: &Props) -> Fingerprint {
    props
        .iter()
        .map(|(k, v, _)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A built channel.
pub struct ChannelPlan {
    /// Its name.
    pub name: String,
    /// Its configuration identity.
    pub fingerprint: Fingerprint,
    /// The channel (reused from the running agent when its configuration is unchanged).
    pub channel: Arc<dyn Channel>,
}

/// A built source, with what it takes to build it again after a failure.
pub struct SourcePlan {
    /// Its name.
    pub name: String,
    /// Its own configuration plus its channels' identities.
    pub fingerprint: Fingerprint,
    pub(crate) descriptor: &'static SourceDescriptor,
    pub(crate) props: Props,
    pub(crate) context: SourceBuildContext,
    /// Its interceptors, selector and channels.
    pub processor: ChannelProcessor,
    /// The instance built while validating, used for the first run.
    pub(crate) first: Option<Box<dyn Source>>,
}

impl SourcePlan {
    /// The instance to run: the one built at validation first, fresh ones after a failure.
    pub(crate) fn instantiate(&mut self) -> Result<Box<dyn Source>, Vec<Diagnostic>> {
        if let Some(s) = self.first.take() {
            return Ok(s);
        }
        (self.descriptor.build)(&self.props, &self.context).map(|(s, _)| s)
    }
}

struct SinkMemberPlan {
    name: String,
    descriptor: &'static SinkDescriptor,
    props: Props,
    context: SinkBuildContext,
    channel: Arc<dyn Channel>,
}

#[derive(Debug, Clone)]
enum ProcessorKind {
    Default,
    Failover {
        priorities: Vec<i64>,
        max_penalty: Duration,
    },
    LoadBalance {
        selector: SinkSelector,
        backoff: bool,
        max_timeout: Duration,
    },
}

/// A sink runner: one sink, or one sink group behind its processor.
pub struct RunnerPlan {
    /// The sink's or group's name.
    pub name: String,
    /// Configuration identity of the group, its sinks and their channels.
    pub fingerprint: Fingerprint,
    members: Vec<SinkMemberPlan>,
    kind: ProcessorKind,
    first: Option<SinkProcessor>,
}

impl RunnerPlan {
    /// The processor to run: the one built at validation first, fresh ones after a failure.
    pub(crate) fn instantiate(&mut self) -> Result<SinkProcessor, Vec<Diagnostic>> {
        if let Some(p) = self.first.take() {
            return Ok(p);
        }
        let mut drivers = Vec::new();
        for m in &self.members {
            let (sink, _) = (m.descriptor.build)(&m.props, &m.context)?;
            drivers.push(SinkDriver::new(
                m.name.as_str(),
                sink,
                m.channel.clone(),
                m.context.counters.clone(),
            ));
        }
        Ok(assemble(&self.kind, drivers))
    }

    /// Names of the member sinks.
    pub fn sink_names(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.name.as_str()).collect()
    }

    /// Counters of the member sinks, by name.
    pub fn sink_counters(&self) -> Vec<(&str, Arc<flumen_core::SinkCounters>)> {
        self.members
            .iter()
            .map(|m| (m.name.as_str(), m.context.counters.clone()))
            .collect()
    }
}

fn assemble(kind: &ProcessorKind, mut drivers: Vec<SinkDriver>) -> SinkProcessor {
    match kind {
        ProcessorKind::Default => match drivers.pop() {
            Some(d) if drivers.is_empty() => SinkProcessor::Default(d),
            Some(d) => {
                // A `default` group with several sinks: Flume drives only one; we balance
                // rather than silently ignore the others (validated with a warning).
                drivers.push(d);
                SinkProcessor::LoadBalance(LoadBalanceProcessor::new(
                    drivers,
                    SinkSelector::RoundRobin,
                    false,
                    Duration::from_secs(30),
                ))
            }
            None => unreachable!("a runner plan always has at least one sink"),
        },
        ProcessorKind::Failover {
            priorities,
            max_penalty,
        } => SinkProcessor::Failover(FailoverProcessor::new(
            drivers
                .into_iter()
                .zip(priorities.iter().copied())
                .collect(),
            *max_penalty,
        )),
        ProcessorKind::LoadBalance {
            selector,
            backoff,
            max_timeout,
        } => SinkProcessor::LoadBalance(LoadBalanceProcessor::new(
            drivers,
            *selector,
            *backoff,
            *max_timeout,
        )),
    }
}

/// Everything an agent runs, built and validated, not started.
#[derive(Default)]
pub struct Plan {
    /// Channels, in list order.
    pub channels: Vec<ChannelPlan>,
    /// Sources, in list order.
    pub sources: Vec<SourcePlan>,
    /// Sink runners: groups first, then sinks in no group, in list order.
    pub runners: Vec<RunnerPlan>,
    /// Warnings to show (and, in lenient mode, the errors that removed components).
    pub warnings: Vec<Diagnostic>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field(
                "channels",
                &self.channels.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .field(
                "sources",
                &self.sources.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field(
                "runners",
                &self.runners.iter().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .field("warnings", &self.warnings.len())
            .finish()
    }
}

/// How to treat errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    /// Flume's behaviour: drop broken components with a warning and run the rest.
    pub lenient: bool,
}

/// Looks up a running channel to carry over: given a name and a fingerprint, returns the
/// running channel when its configuration is identical.
pub type ChannelReuse<'a> = &'a dyn Fn(&str, &Fingerprint) -> Option<Arc<dyn Channel>>;

#[derive(Deserialize, Default)]
#[serde(default)]
struct FailoverConfig {
    /// `processor.priority.<sink>`.
    priority: BTreeMap<String, i64>,
    /// `processor.maxpenalty`, ms. Default 30000.
    maxpenalty: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoadBalanceConfig {
    /// `processor.backoff`. Default false.
    backoff: bool,
    /// `processor.selector`: round_robin (default) or random.
    selector: Option<String>,
    /// `processor.selector.maxTimeOut`, ms. Default 30000.
    #[serde(rename = "selector.maxTimeOut")]
    max_timeout: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReplicatingConfig {
    optional: Vec<String>,
}

#[derive(Deserialize)]
#[serde(default)]
struct MultiplexingConfig {
    header: String,
    mapping: BTreeMap<String, String>,
    optional: BTreeMap<String, String>,
    default: Vec<String>,
}

impl Default for MultiplexingConfig {
    fn default() -> Self {
        Self {
            header: "flume.selector.header".into(),
            mapping: BTreeMap::new(),
            optional: BTreeMap::new(),
            default: Vec::new(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoadBalancingSelectorConfig {
    policy: Option<String>,
}

struct Builder<'a> {
    reuse: ChannelReuse<'a>,
    diags: Vec<Diagnostic>,
}

/// Builds every component of `agent`.
///
/// # Errors
/// Every error found (and the warnings), unless `options.lenient`, in which case broken
/// components are dropped and their errors returned as warnings.
pub fn build(
    agent: &AgentDef,
    options: BuildOptions,
    reuse: ChannelReuse<'_>,
) -> Result<Plan, Vec<Diagnostic>> {
    let mut b = Builder {
        reuse,
        diags: Vec::new(),
    };
    let plan = b.build(agent);
    let has_errors = b.diags.iter().any(Diagnostic::is_error);
    if has_errors && !options.lenient {
        return Err(b.diags);
    }
    let mut plan = plan;
    plan.warnings = b
        .diags
        .into_iter()
        .map(|mut d| {
            if d.is_error() {
                d.severity = flumen_config::Severity::Warning;
                d.message = format!("{} (component removed, --lenient)", d.message);
            }
            d
        })
        .collect();
    Ok(plan)
}

impl Builder<'_> {
    fn build(&mut self, agent: &AgentDef) -> Plan {
        let mut plan = Plan::default();
        // Channels first: sources and sinks refer to them.
        let mut channels: HashMap<&str, (Arc<dyn Channel>, Fingerprint, &Props)> = HashMap::new();
        for def in &agent.channels {
            let d = &def.def;
            let Some(t) = d.type_name.as_deref() else {
                continue;
            };
            let desc = match lookup(CHANNELS, t) {
                Ok(desc) => desc,
                Err((msg, hint)) => {
                    self.type_error(&d.props, msg, hint);
                    continue;
                }
            };
            let fp = fingerprint(&d.props);
            let channel = match (self.reuse)(&d.name, &fp) {
                Some(ch) => ch,
                None => {
                    let cx = ChannelBuildContext {
                        name: d.name.clone(),
                        counters: Arc::default(),
                    };
                    match (desc.build)(&d.props.without(&["type"]), &cx) {
                        Ok((ch, w)) => {
                            self.diags.extend(w);
                            ch
                        }
                        Err(e) => {
                            self.diags.extend(e);
                            continue;
                        }
                    }
                }
            };
            channels.insert(&d.name, (channel.clone(), fp.clone(), &d.props));
            plan.channels.push(ChannelPlan {
                name: d.name.clone(),
                fingerprint: fp,
                channel,
            });
        }

        for def in &agent.sources {
            if let Some(s) = self.source(def, &channels) {
                plan.sources.push(s);
            }
        }

        // Sinks, then groups over them.
        let mut sinks: HashMap<&str, SinkMemberPlan> = HashMap::new();
        let mut first_sinks: HashMap<&str, SinkDriver> = HashMap::new();
        for def in &agent.sinks {
            let d = &def.def;
            let Some(t) = d.type_name.as_deref() else {
                continue;
            };
            let desc = match lookup(SINKS, t) {
                Ok(desc) => desc,
                Err((msg, hint)) => {
                    self.type_error(&d.props, msg, hint);
                    continue;
                }
            };
            let props = d.props.without(&["type", "channel", "channels"]);
            let context = SinkBuildContext {
                name: d.name.clone(),
                counters: Arc::default(),
            };
            let sink = match (desc.build)(&props, &context) {
                Ok((s, w)) => {
                    self.diags.extend(w);
                    s
                }
                Err(e) => {
                    self.diags.extend(e);
                    continue;
                }
            };
            // A sink whose channel is missing or broken was reported where that happened.
            let Some(ch_name) = def.channel.as_deref() else {
                continue;
            };
            let Some((channel, _, ch_props)) = channels.get(ch_name) else {
                continue;
            };
            if !self.check_batch(
                &d.props,
                desc.batch_size_key,
                Some(sink.batch_size()),
                ch_name,
                channel,
                ch_props,
            ) {
                continue;
            }
            first_sinks.insert(
                &d.name,
                SinkDriver::new(
                    d.name.as_str(),
                    sink,
                    channel.clone(),
                    context.counters.clone(),
                ),
            );
            sinks.insert(
                &d.name,
                SinkMemberPlan {
                    name: d.name.clone(),
                    descriptor: desc,
                    props,
                    context,
                    channel: channel.clone(),
                },
            );
        }
        let mut grouped: BTreeSet<&str> = BTreeSet::new();
        for g in &agent.sinkgroups {
            grouped.extend(g.sinks.iter().map(String::as_str));
        }
        for g in &agent.sinkgroups {
            if let Some(r) = self.group(g, &mut sinks, &mut first_sinks, agent) {
                plan.runners.push(r);
            }
        }
        for def in &agent.sinks {
            let name = def.def.name.as_str();
            if grouped.contains(name) {
                continue;
            }
            if let (Some(m), Some(d)) = (sinks.remove(name), first_sinks.remove(name)) {
                let fp = runner_fingerprint(&Props::default(), &[&m], agent);
                plan.runners.push(RunnerPlan {
                    name: m.name.clone(),
                    fingerprint: fp,
                    members: vec![m],
                    kind: ProcessorKind::Default,
                    first: Some(SinkProcessor::Default(d)),
                });
            }
        }
        plan
    }

    fn type_error(&mut self, props: &Props, msg: String, hint: Option<String>) {
        let mut d = props.error("type", msg);
        if let Some(h) = hint {
            d = d.with_hint(h);
        }
        self.diags.push(d);
    }

    /// Flume's rule: a source's or sink's batch must fit in its channel's transaction.
    fn check_batch(
        &mut self,
        props: &Props,
        key: Option<&str>,
        batch: Option<usize>,
        ch_name: &str,
        channel: &Arc<dyn Channel>,
        ch_props: &Props,
    ) -> bool {
        let Some(batch) = batch else { return true };
        let cap = channel.transaction_capacity();
        if batch <= cap {
            return true;
        }
        let key = key.unwrap_or("batchSize");
        let where_cap = match ch_props.line(TX_CAP) {
            Some(l) => format!("set on line {l}"),
            None => "the default".to_owned(),
        };
        self.diags.push(
            props
                .error(key, format!(
                    "batch size {batch} is larger than the transactionCapacity {cap} of channel `{ch_name}` ({where_cap}): every transaction would fail"
                ))
                .with_hint(format!(
                    "lower `{}` or raise `{}`",
                    props.full_key(key),
                    ch_props.full_key(TX_CAP)
                )),
        );
        false
    }

    fn source(
        &mut self,
        def: &SourceDef,
        channels: &HashMap<&str, (Arc<dyn Channel>, Fingerprint, &Props)>,
    ) -> Option<SourcePlan> {
        let d = &def.def;
        let t = d.type_name.as_deref()?;
        let desc = match lookup(SOURCES, t) {
            Ok(desc) => desc,
            Err((msg, hint)) => {
                self.type_error(&d.props, msg, hint);
                return None;
            }
        };
        let selector = self.selector(def);
        let interceptors = self.interceptors(def);
        let props = d
            .props
            .without(&["type", "channels", "channel", "selector", "interceptors"]);
        let context = SourceBuildContext {
            name: d.name.clone(),
            counters: Arc::default(),
        };
        let source = match (desc.build)(&props, &context) {
            Ok((s, w)) => {
                self.diags.extend(w);
                s
            }
            Err(e) => {
                self.diags.extend(e);
                return None;
            }
        };
        let (selector, interceptors) = (selector?, interceptors?);
        // A source with a missing or broken channel was reported where that happened.
        let mut chans = Vec::new();
        let mut fp = fingerprint(&d.props);
        let mut ok = true;
        for name in &def.channels {
            let (ch, ch_fp, ch_props) = channels.get(name.as_str())?;
            ok &= self.check_batch(
                &d.props,
                desc.batch_size_key,
                source.batch_size(),
                name,
                ch,
                ch_props,
            );
            chans.push(ch.clone());
            fp.push((format!("channel:{name}"), format!("{ch_fp:?}")));
        }
        if !ok || chans.is_empty() {
            return None;
        }
        Some(SourcePlan {
            name: d.name.clone(),
            fingerprint: fp,
            descriptor: desc,
            props,
            context,
            processor: ChannelProcessor::new(chans, selector, interceptors),
            first: Some(source),
        })
    }

    fn channel_indexes(
        &mut self,
        def: &SourceDef,
        key: &str,
        names: &[String],
    ) -> Option<Vec<usize>> {
        let mut out = Vec::new();
        for n in names {
            match def.channels.iter().position(|c| c == n) {
                Some(i) => out.push(i),
                None => {
                    self.diags.push(def.selector.error(
                        key,
                        format!("channel `{n}` is not in this source's `channels` list"),
                    ));
                    return None;
                }
            }
        }
        Some(out)
    }

    fn selector(&mut self, def: &SourceDef) -> Option<ChannelSelector> {
        let props = &def.selector;
        let t = props.get("type").map(str::trim).unwrap_or("replicating");
        let n = def.channels.len();
        let is = |alias: &str, class: &str| t.eq_ignore_ascii_case(alias) || t == class;
        if is(
            "replicating",
            "org.apache.flume.channel.ReplicatingChannelSelector",
        ) {
            let (c, w) = self.deserialize::<ReplicatingConfig>(props)?;
            self.diags.extend(w);
            let optional = self.channel_indexes(def, "optional", &c.optional)?;
            let required = (0..n).filter(|i| !optional.contains(i)).collect();
            Some(ChannelSelector::Replicating { required, optional })
        } else if is(
            "multiplexing",
            "org.apache.flume.channel.MultiplexingChannelSelector",
        ) {
            let (c, w) = self.deserialize::<MultiplexingConfig>(props)?;
            self.diags.extend(w);
            let mut mapping = HashMap::new();
            for (v, list) in &c.mapping {
                let names: Vec<String> = list.split_whitespace().map(str::to_owned).collect();
                mapping.insert(
                    v.clone(),
                    self.channel_indexes(def, &format!("mapping.{v}"), &names)?,
                );
            }
            let mut optional = HashMap::new();
            for (v, list) in &c.optional {
                let names: Vec<String> = list.split_whitespace().map(str::to_owned).collect();
                optional.insert(
                    v.clone(),
                    self.channel_indexes(def, &format!("optional.{v}"), &names)?,
                );
            }
            let default = self.channel_indexes(def, "default", &c.default)?;
            Some(ChannelSelector::Multiplexing(Multiplexing::new(
                c.header, mapping, optional, default,
            )))
        } else if is(
            "load_balancing",
            "org.apache.flume.channel.LoadBalancingChannelSelector",
        ) {
            let (c, w) = self.deserialize::<LoadBalancingSelectorConfig>(props)?;
            self.diags.extend(w);
            let policy = match c.policy.as_deref().map(str::trim) {
                None => BalancePolicy::RoundRobin,
                Some(p) if p.eq_ignore_ascii_case("round_robin") => BalancePolicy::RoundRobin,
                Some(p) if p.eq_ignore_ascii_case("random") => BalancePolicy::Random,
                Some(p) => {
                    self.diags.push(props.error(
                        "policy",
                        format!("unknown policy `{p}`: expected round_robin or random"),
                    ));
                    return None;
                }
            };
            Some(ChannelSelector::LoadBalancing {
                all: (0..n).collect(),
                policy,
                next: AtomicUsize::new(0),
            })
        } else {
            let known = ["replicating", "multiplexing", "load_balancing"];
            let mut d = props.error(
                "type",
                format!("unknown selector type `{t}`; known: {}", known.join(", ")),
            );
            if let Some(h) = flumen_config::did_you_mean(t, known) {
                d = d.with_hint(h);
            }
            self.diags.push(d);
            None
        }
    }

    fn interceptors(&mut self, def: &SourceDef) -> Option<InterceptorChain> {
        let mut chain = Vec::new();
        let mut ok = true;
        for i in &def.interceptors {
            let Some(t) = i.type_name.as_deref() else {
                ok = false;
                continue;
            };
            let desc = match lookup(INTERCEPTORS, t) {
                Ok(d) => d,
                Err((msg, hint)) => {
                    self.type_error(&i.props, msg, hint);
                    ok = false;
                    continue;
                }
            };
            match (desc.build)(&i.props.without(&["type"])) {
                Ok((x, w)) => {
                    self.diags.extend(w);
                    chain.push(x);
                }
                Err(e) => {
                    self.diags.extend(e);
                    ok = false;
                }
            }
        }
        ok.then(|| InterceptorChain::new(chain))
    }

    fn deserialize<T: serde::de::DeserializeOwned>(
        &mut self,
        props: &Props,
    ) -> Option<(T, Vec<Diagnostic>)> {
        match props.deserialize::<T>() {
            Ok(x) => Some(x),
            Err(e) => {
                self.diags.extend(e);
                None
            }
        }
    }

    fn group<'d>(
        &mut self,
        g: &'d SinkGroupDef,
        sinks: &mut HashMap<&'d str, SinkMemberPlan>,
        first_sinks: &mut HashMap<&'d str, SinkDriver>,
        agent: &AgentDef,
    ) -> Option<RunnerPlan> {
        let props = &g.processor;
        let t = props.get("type").map(str::trim).unwrap_or("default");
        let is = |alias: &str, class: &str| t.eq_ignore_ascii_case(alias) || t == class;
        let kind = if is("default", "org.apache.flume.sink.DefaultSinkProcessor") {
            if g.sinks.len() > 1 {
                self.diags.push(props.warning(
                    "type",
                    format!("sink group `{}` has {} sinks but the `default` processor; they will be load balanced round robin", g.name, g.sinks.len()),
                ));
            }
            ProcessorKind::Default
        } else if is("failover", "org.apache.flume.sink.FailoverSinkProcessor") {
            let (c, w) = self.deserialize::<FailoverConfig>(props)?;
            self.diags.extend(w);
            for k in c.priority.keys() {
                if !g.sinks.contains(k) {
                    self.diags.push(props.warning(
                        &format!("priority.{k}"),
                        format!("`{k}` is not a member of sink group `{}`", g.name),
                    ));
                }
            }
            // Without a priority, earlier members are preferred (config order decides).
            let len = g.sinks.len() as i64;
            let priorities = g
                .sinks
                .iter()
                .enumerate()
                .map(|(i, s)| c.priority.get(s).copied().unwrap_or(-(len + i as i64)))
                .collect();
            ProcessorKind::Failover {
                priorities,
                max_penalty: Duration::from_millis(c.maxpenalty.unwrap_or(30_000)),
            }
        } else if is(
            "load_balance",
            "org.apache.flume.sink.LoadBalancingSinkProcessor",
        ) {
            let (c, w) = self.deserialize::<LoadBalanceConfig>(props)?;
            self.diags.extend(w);
            let selector = match c.selector.as_deref().map(str::trim) {
                None => SinkSelector::RoundRobin,
                Some(s) if s.eq_ignore_ascii_case("round_robin") => SinkSelector::RoundRobin,
                Some(s) if s.eq_ignore_ascii_case("random") => SinkSelector::Random,
                Some(s) => {
                    self.diags.push(props.error(
                        "selector",
                        format!("unknown sink selector `{s}`: expected round_robin or random"),
                    ));
                    return None;
                }
            };
            ProcessorKind::LoadBalance {
                selector,
                backoff: c.backoff,
                max_timeout: Duration::from_millis(c.max_timeout.unwrap_or(30_000)),
            }
        } else {
            let known = ["default", "failover", "load_balance"];
            let mut d = props.error(
                "type",
                format!(
                    "unknown sink processor type `{t}`; known: {}",
                    known.join(", ")
                ),
            );
            if let Some(h) = flumen_config::did_you_mean(t, known) {
                d = d.with_hint(h);
            }
            self.diags.push(d);
            return None;
        };
        let mut members = Vec::new();
        let mut drivers = Vec::new();
        for s in &g.sinks {
            if let (Some(m), Some(d)) = (sinks.remove(s.as_str()), first_sinks.remove(s.as_str())) {
                members.push(m);
                drivers.push(d);
            }
        }
        if members.is_empty() {
            return None;
        }
        let refs: Vec<&SinkMemberPlan> = members.iter().collect();
        let fingerprint = runner_fingerprint(&g.props, &refs, agent);
        let first = Some(assemble(&kind, drivers));
        Some(RunnerPlan {
            name: g.name.clone(),
            fingerprint,
            members,
            kind,
            first,
        })
    }
}

const TX_CAP: &str = "transactionCapacity";

fn runner_fingerprint(group: &Props, members: &[&SinkMemberPlan], agent: &AgentDef) -> Fingerprint {
    let mut fp = fingerprint(group);
    for m in members {
        fp.push(("sink".into(), m.name.clone()));
        if let Some(def) = agent.sinks.iter().find(|s| s.def.name == m.name) {
            fp.extend(fingerprint(&def.def.props));
            if let Some(c) = def
                .channel
                .as_deref()
                .and_then(|c| agent.channels.iter().find(|x| x.def.name == c))
            {
                fp.extend(
                    fingerprint(&c.def.props)
                        .into_iter()
                        .map(|(k, v)| (format!("channel:{k}"), v)),
                );
            }
        }
    }
    fp
}

/// Components named in error diagnostics: what lenient mode must drop.
pub fn broken_components(diags: &[Diagnostic]) -> BTreeSet<String> {
    diags
        .iter()
        .filter(|d| d.is_error())
        .filter_map(|d| d.component.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_text(text: &str, lenient: bool) -> Result<Plan, Vec<Diagnostic>> {
        let (entries, diags) = flumen_config::parse_properties(text);
        assert!(diags.is_empty(), "{diags:?}");
        let (def, diags) = flumen_config::load_agent(&entries, "a1", &|_| None);
        assert!(!diags.iter().any(Diagnostic::is_error), "{diags:?}");
        build(&def, BuildOptions { lenient }, &|_, _| None)
    }

    fn errors(text: &str) -> Vec<String> {
        match build_text(text, false) {
            Ok(_) => panic!("expected errors"),
            Err(d) => d
                .iter()
                .filter(|d| d.is_error())
                .map(|d| format!("{}: {}", d.line.unwrap_or(0), d.message))
                .collect(),
        }
    }

    const BASE: &str = "a1.sources = r1\na1.channels = c1 c2\na1.sinks = k1 k2\n\
        a1.sources.r1.type = seq\na1.sources.r1.channels = c1 c2\n\
        a1.channels.c1.type = memory\na1.channels.c2.type = memory\n\
        a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n\
        a1.sinks.k2.type = null\na1.sinks.k2.channel = c2\n";

    #[test]
    fn a_valid_agent_builds_one_runner_per_ungrouped_sink() {
        let plan = build_text(BASE, false).unwrap();
        assert_eq!(plan.channels.len(), 2);
        assert_eq!(plan.sources.len(), 1);
        assert_eq!(
            plan.runners
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["k1", "k2"]
        );
    }

    #[test]
    fn unknown_types_name_the_known_ones_with_a_hint() {
        let e = build_text(
            &BASE.replace(
                "a1.channels.c2.type = memory",
                "a1.channels.c2.type = memroy",
            ),
            false,
        )
        .unwrap_err();
        let d = e.iter().find(|d| d.is_error()).unwrap();
        assert_eq!(d.line, Some(7));
        assert!(
            d.message
                .starts_with("unknown type `memroy`; known types: memory"),
            "{}",
            d.message
        );
        assert_eq!(d.hint.as_deref(), Some("did you mean `memory`?"));
    }

    #[test]
    fn selector_errors() {
        let e = errors(&format!("{BASE}a1.sources.r1.selector.type = multiplex\n"));
        assert!(
            e[0].starts_with("12: unknown selector type `multiplex`"),
            "{e:?}"
        );
        let e = errors(&format!(
            "{BASE}a1.sources.r1.selector.type = load_balancing\na1.sources.r1.selector.policy = fastest\n"
        ));
        assert_eq!(
            e,
            ["13: unknown policy `fastest`: expected round_robin or random"]
        );
    }

    #[test]
    fn selector_channels_must_belong_to_the_source() {
        // flumen-config rejects this structurally; the builder re-checks so that lenient mode
        // (which removes broken channels from lists) can never route to a foreign channel.
        let text = format!(
            "{BASE}a1.sources.r1.selector.type = multiplexing\na1.sources.r1.selector.mapping.x = c2\n"
        );
        let (entries, _) = flumen_config::parse_properties(&text);
        let (mut def, _) = flumen_config::load_agent(&entries, "a1", &|_| None);
        def.sources[0].channels.retain(|c| c == "c1");
        let e = build(&def, BuildOptions::default(), &|_, _| None).unwrap_err();
        let d = e.iter().find(|d| d.is_error()).unwrap();
        assert_eq!(
            d.message,
            "channel `c2` is not in this source's `channels` list"
        );
        assert_eq!(d.line, Some(13));
    }

    #[test]
    fn sink_processor_errors() {
        let group = "a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\n";
        let e = errors(&format!(
            "{BASE}{group}a1.sinkgroups.g1.processor.type = failovr\n"
        ));
        assert!(
            e[0].starts_with("14: unknown sink processor type `failovr`"),
            "{e:?}"
        );
        let e = errors(&format!(
            "{BASE}{group}a1.sinkgroups.g1.processor.type = load_balance\na1.sinkgroups.g1.processor.selector = fastest\n"
        ));
        assert_eq!(
            e,
            ["15: unknown sink selector `fastest`: expected round_robin or random"]
        );
        let e = errors(&format!(
            "{BASE}{group}a1.sinkgroups.g1.processor.type = failover\na1.sinkgroups.g1.processor.priority.k1 = high\n"
        ));
        assert!(e[0].starts_with("15: invalid number `high`"), "{e:?}");
    }

    #[test]
    fn grouped_sinks_share_one_runner() {
        let plan = build_text(
            &format!("{BASE}a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\na1.sinkgroups.g1.processor.type = failover\n"),
            false,
        )
        .unwrap();
        assert_eq!(plan.runners.len(), 1);
        assert_eq!(plan.runners[0].sink_names(), ["k1", "k2"]);
    }

    #[test]
    fn default_processor_with_several_sinks_warns() {
        let plan = build_text(
            &format!("{BASE}a1.sinkgroups = g1\na1.sinkgroups.g1.sinks = k1 k2\n"),
            false,
        )
        .unwrap();
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.message.contains("`default` processor")),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn interceptor_errors_are_reported_with_their_lines() {
        let e = errors(&format!(
            "{BASE}a1.sources.r1.interceptors = i1 i2\na1.sources.r1.interceptors.i1.type = timestmp\n\
             a1.sources.r1.interceptors.i2.type = regex_filter\na1.sources.r1.interceptors.i2.regex = (\n"
        ));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].starts_with("13: unknown type `timestmp`"), "{e:?}");
        assert!(e[1].starts_with("15: invalid regex `(`"), "{e:?}");
    }

    #[test]
    fn batch_size_over_transaction_capacity_is_an_error_naming_both() {
        let e = errors(&format!("{BASE}a1.sinks.k2.batchSize = 101\n"));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("12: batch size 101 is larger than the transactionCapacity 100 of channel `c2` (the default)"),
            "{e:?}"
        );
    }

    #[test]
    fn lenient_drops_the_broken_component_and_keeps_the_rest() {
        let text = BASE.replace("a1.sinks.k2.type = null", "a1.sinks.k2.type = nul");
        let plan = build_text(&text, true).unwrap();
        assert_eq!(
            plan.runners
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["k1"]
        );
        let w = plan
            .warnings
            .iter()
            .find(|w| w.message.contains("nul"))
            .unwrap();
        assert!(!w.is_error());
        assert!(
            w.message.ends_with("(component removed, --lenient)"),
            "{}",
            w.message
        );
    }

    #[test]
    fn fingerprints_ignore_line_numbers_but_not_values() {
        let a = build_text(BASE, false).unwrap();
        let b = build_text(&format!("# a comment shifting every line\n{BASE}"), false).unwrap();
        assert_eq!(a.channels[0].fingerprint, b.channels[0].fingerprint);
        assert_eq!(a.sources[0].fingerprint, b.sources[0].fingerprint);
        let c = build_text(&format!("{BASE}a1.channels.c1.capacity = 500\n"), false).unwrap();
        assert_ne!(a.channels[0].fingerprint, c.channels[0].fingerprint);
        // A source's identity includes its channels'.
        assert_ne!(a.sources[0].fingerprint, c.sources[0].fingerprint);
        assert_eq!(a.runners[1].fingerprint, c.runners[1].fingerprint);
        assert_ne!(a.runners[0].fingerprint, c.runners[0].fingerprint);
    }

    #[test]
    fn an_unchanged_channel_is_reused_from_the_running_agent() {
        let a = build_text(BASE, false).unwrap();
        let (entries, _) = flumen_config::parse_properties(BASE);
        let (def, _) = flumen_config::load_agent(&entries, "a1", &|_| None);
        let old = &a.channels;
        let reuse = |name: &str, fp: &Fingerprint| {
            old.iter()
                .find(|c| c.name == name && &c.fingerprint == fp)
                .map(|c| c.channel.clone())
        };
        let b = build(&def, BuildOptions::default(), &reuse).unwrap();
        assert!(Arc::ptr_eq(&a.channels[0].channel, &b.channels[0].channel));
    }
}
