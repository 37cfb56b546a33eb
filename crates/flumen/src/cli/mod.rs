//! The command line: Flume's launcher spellings (`agent -n a1 -f file -c dir -Dkey=value`)
//! plus flumen's own commands. Only the binary uses this module; errors here are `anyhow`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use flumen_config::{AgentDef, Diagnostic};

use crate::topology::{self, BuildOptions, Plan};

pub mod agent;
pub mod avro_client;

/// Exit code for a configuration that has errors.
pub const EXIT_CONFIG: u8 = 1;
/// Exit code for a failure while running.
pub const EXIT_RUNTIME: u8 = 3;

/// flumen: a log collection agent that runs Apache Flume configuration files unchanged.
#[derive(Debug, Parser)]
#[command(name = "flumen", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an agent from a Flume properties file.
    Agent(AgentArgs),
    /// Validate a configuration and print every problem; exit 1 on errors.
    Check(ConfigArgs),
    /// List the component types this build knows.
    Components,
    /// Send the lines of a file or of standard input to an Avro source (`flume-ng avro-client`).
    #[command(name = "avro-client")]
    AvroClient(avro_client::AvroClientArgs),
}

/// Where the configuration is and which agent to take from it (Flume's spellings).
#[derive(Debug, Args, Clone)]
pub struct ConfigArgs {
    /// The agent name (`<agent>.sources = ...` in the file).
    #[arg(short = 'n', long = "name")]
    pub name: String,
    /// The Flume properties file.
    #[arg(short = 'f', long = "conf-file")]
    pub conf_file: PathBuf,
    /// Configuration directory: a relative `--conf-file` not found in the working directory is
    /// looked up here (Flume's `-c/--conf`).
    #[arg(short = 'c', long = "conf")]
    pub conf_dir: Option<PathBuf>,
    /// Java-style system properties: `flume.root.logger=LEVEL,console`,
    /// `flume.monitoring.type=http`, `flume.monitoring.port=34545`; others are ignored.
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    pub defines: Vec<String>,
    /// Flume's behaviour for broken components: drop them with a warning and run the rest.
    #[arg(long)]
    pub lenient: bool,
    /// JVM options that `flume-ng` scripts pass (`-Xmx512m`); accepted and ignored.
    #[arg(short = 'X', value_name = "JVM_OPTION", hide = true)]
    pub jvm_options: Vec<String>,
}

/// `flumen agent` options.
#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Do not apply configuration file changes while running.
    #[arg(long = "no-reload-conf")]
    pub no_reload_conf: bool,
    /// Seconds between checks of the configuration file when file notification is not
    /// available (Flume's `-i/--poll-interval`).
    #[arg(short = 'i', long = "poll-interval", default_value_t = 30)]
    pub poll_interval: u64,
    /// Seconds sinks may keep draining their channels at shutdown.
    #[arg(long = "drain-timeout", default_value_t = 5)]
    pub drain_timeout: u64,
    /// Log level (error, warn, info, debug, trace); overrides `-Dflume.root.logger`.
    #[arg(long = "log-level")]
    pub log_level: Option<String>,
    /// Serve metrics (`/metrics` JSON and Prometheus), `/health` and `/ready` on ADDR
    /// (`127.0.0.1:34545`, `0.0.0.0:34545` or a bare port for loopback). Same server as
    /// `-Dflume.monitoring.type=http -Dflume.monitoring.port=PORT`
    /// [`-Dflume.monitoring.host=HOST`, default 127.0.0.1].
    #[arg(long = "http", value_name = "ADDR")]
    pub http: Option<String>,
    /// Seconds a sink may fail without a success before `/ready` reports the agent not ready.
    #[arg(
        long = "ready-sink-failure-secs",
        value_name = "SECS",
        default_value_t = 30
    )]
    pub ready_sink_failure_secs: u64,
}

impl ConfigArgs {
    /// The `-D` properties as a map.
    pub fn defines(&self) -> BTreeMap<String, String> {
        self.defines
            .iter()
            .map(|d| match d.split_once('=') {
                Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
                None => (d.trim().to_owned(), String::new()),
            })
            .collect()
    }

    /// The configuration file, resolved against `--conf` when relative and not found here.
    pub fn resolved_file(&self) -> PathBuf {
        let f = &self.conf_file;
        if f.is_relative()
            && !f.exists()
            && let Some(dir) = &self.conf_dir
            && dir.join(f).exists()
        {
            return dir.join(f);
        }
        f.clone()
    }
}

/// The log level asked for by `-Dflume.root.logger=LEVEL,appender`.
pub fn flume_log_level(defines: &BTreeMap<String, String>) -> Option<String> {
    let v = defines.get("flume.root.logger")?;
    let level = v.split(',').next()?.trim().to_ascii_lowercase();
    Some(match level.as_str() {
        "fatal" => "error".to_owned(),
        "all" => "trace".to_owned(),
        "off" => "off".to_owned(),
        other => other.to_owned(),
    })
}

/// Sets up logging to stderr at `level` unless `RUST_LOG` says otherwise.
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Parses and validates the agent's configuration into a plan. Structural problems (wiring,
/// lists) and component problems (types, values) are all collected before giving up, so one
/// run shows every mistake.
///
/// # Errors
/// Every diagnostic when any is an error (or the file cannot be read).
pub fn load_plan(
    path: &Path,
    agent: &str,
    options: BuildOptions,
    reuse: topology::build::ChannelReuse<'_>,
) -> Result<Plan, Vec<Diagnostic>> {
    let env = |k: &str| std::env::var(k).ok();
    let (mut def, mut diags): (AgentDef, Vec<Diagnostic>) =
        match flumen_config::load_file(path, agent, &env) {
            Ok(x) => x,
            // Errors without a component (unreadable file, no such agent) leave nothing to
            // check further.
            Err(diags) if diags.iter().any(is_fatal) => return Err(diags),
            Err(diags) => match reparse(path, agent) {
                Some(def) => (def, diags),
                None => return Err(diags),
            },
        };
    if options.lenient {
        let broken = topology::build::broken_components(&diags);
        drop_components(&mut def, &broken);
    }
    let structural_errors = diags.iter().any(Diagnostic::is_error);
    let file: std::sync::Arc<str> = path.display().to_string().into();
    let (plan, mut more) = match topology::build(&def, options, reuse) {
        Ok(mut plan) => {
            let warnings = std::mem::take(&mut plan.warnings);
            (Some(plan), warnings)
        }
        Err(errors) => (None, errors),
    };
    diags.append(&mut more);
    for d in &mut diags {
        d.file.get_or_insert_with(|| file.clone());
    }
    match plan {
        Some(mut plan) if !structural_errors || options.lenient => {
            if options.lenient {
                for d in &mut diags {
                    demote(d);
                }
            }
            plan.warnings = diags;
            Ok(plan)
        }
        _ => Err(diags),
    }
}

/// Lenient mode reports the errors that removed components as warnings.
fn demote(d: &mut Diagnostic) {
    if d.is_error() {
        d.severity = flumen_config::Severity::Warning;
        if !d.message.ends_with("--lenient)") {
            d.message = format!("{} (component removed, --lenient)", d.message);
        }
    }
}

/// Removes components named in error diagnostics, and the sink groups' references to them.
fn drop_components(def: &mut AgentDef, broken: &std::collections::BTreeSet<String>) {
    def.sources
        .retain(|s| !broken.contains(&format!("source {}", s.def.name)));
    def.channels
        .retain(|c| !broken.contains(&format!("channel {}", c.def.name)));
    def.sinks
        .retain(|k| !broken.contains(&format!("sink {}", k.def.name)));
    def.sinkgroups
        .retain(|g| !broken.contains(&format!("sink group {}", g.name)));
    let sinks: Vec<String> = def.sinks.iter().map(|k| k.def.name.clone()).collect();
    for g in &mut def.sinkgroups {
        g.sinks.retain(|s| sinks.contains(s));
    }
}

/// Errors that leave nothing to check further.
fn is_fatal(d: &Diagnostic) -> bool {
    d.is_error() && d.component.is_none() && d.line.is_none()
}

fn reparse(path: &Path, agent: &str) -> Option<AgentDef> {
    let text = std::fs::read_to_string(path).ok()?;
    let (entries, _) = flumen_config::parse_properties(&text);
    let env = |k: &str| std::env::var(k).ok();
    Some(flumen_config::load_agent(&entries, agent, &env).0)
}

/// Prints diagnostics in file order, like a compiler.
pub fn print_diagnostics(diags: &[Diagnostic]) {
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by_key(|d| d.line);
    for d in sorted {
        eprintln!("{d}");
    }
}

/// Runs the command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Agent(args) => agent::run(args),
        Command::Check(args) => check(&args),
        Command::AvroClient(args) => avro_client::run(args),
        Command::Components => {
            components();
            ExitCode::SUCCESS
        }
    }
}

fn check(args: &ConfigArgs) -> ExitCode {
    let path = args.resolved_file();
    let options = BuildOptions {
        lenient: args.lenient,
    };
    match load_plan(&path, &args.name, options, &|_, _| None) {
        Ok(plan) => {
            print_diagnostics(&plan.warnings);
            let w = plan.warnings.len();
            eprintln!(
                "{}: agent `{}` is valid: {} sources, {} channels, {} sink runners{}",
                path.display(),
                args.name,
                plan.sources.len(),
                plan.channels.len(),
                plan.runners.len(),
                if w > 0 {
                    format!(", {w} warnings")
                } else {
                    String::new()
                }
            );
            ExitCode::SUCCESS
        }
        Err(diags) => {
            print_diagnostics(&diags);
            let errors = diags.iter().filter(|d| d.is_error()).count();
            eprintln!(
                "{}: agent `{}` has {errors} error{}",
                path.display(),
                args.name,
                if errors == 1 { "" } else { "s" }
            );
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn components() {
    use crate::components::{
        channels::CHANNELS, interceptors::INTERCEPTORS, sinks::SINKS, sources::SOURCES,
    };
    let print = |kind: &str, rows: Vec<(&str, &str)>| {
        println!("{kind}:");
        for (n, d) in rows {
            println!("  {n:<22} {d}");
        }
    };
    print(
        "sources",
        SOURCES.iter().map(|d| (d.name, d.description)).collect(),
    );
    print(
        "channels",
        CHANNELS.iter().map(|d| (d.name, d.description)).collect(),
    );
    print(
        "sinks",
        SINKS.iter().map(|d| (d.name, d.description)).collect(),
    );
    print(
        "interceptors",
        INTERCEPTORS
            .iter()
            .map(|d| (d.name, d.description))
            .collect(),
    );
    println!("channel selectors:\n  replicating, multiplexing, load_balancing");
    println!("sink processors:\n  default, failover, load_balance");
}
