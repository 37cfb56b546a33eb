//! `flumen agent`: run an agent until SIGTERM/SIGINT, applying configuration changes live,
//! with the HTTP metrics server when `--http` or `-Dflume.monitoring.type=http` asks for it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use flumen_core::{CancellationToken, MetricsRegistry};
use notify::Watcher;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::{
    AgentArgs, EXIT_CONFIG, EXIT_RUNTIME, flume_log_level, init_logging, load_plan,
    print_diagnostics,
};
use crate::http::config_view::Running;
use crate::http::console::ConsoleState;
use crate::topology::{BuildOptions, Plan, RunningAgent};

/// Runs the agent; returns when it has shut down.
pub fn run(args: AgentArgs) -> ExitCode {
    let defines = args.config.defines();
    let level = args
        .log_level
        .clone()
        .or_else(|| flume_log_level(&defines))
        .unwrap_or_else(|| "info".into());
    init_logging(&level);
    let http = match crate::http::monitoring(args.http.as_deref(), &defines) {
        Ok(m) => {
            for w in &m.warnings {
                tracing::warn!(problem = %w, "Monitoring option not applied.");
            }
            m.addr
        }
        Err(e) => {
            eprintln!("flumen: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flumen: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    runtime.block_on(run_agent(args, http))
}

async fn run_agent(args: AgentArgs, http: Option<SocketAddr>) -> ExitCode {
    let path = args.config.resolved_file();
    let name = args.config.name.clone();
    let options = BuildOptions {
        lenient: args.config.lenient,
    };
    let plan = match load_plan(&path, &name, options, &|_, _| None) {
        Ok(plan) => plan,
        Err(diags) => {
            print_diagnostics(&diags);
            let n = diags.iter().filter(|d| d.is_error()).count();
            eprintln!(
                "flumen: refusing to start agent `{name}`: {n} configuration error{} in {} (run `flumen check` to see them again, or --lenient to drop the broken components as Flume does)",
                if n == 1 { "" } else { "s" },
                path.display()
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    print_diagnostics(&plan.warnings);
    let (n_src, n_ch, n_run) = (plan.sources.len(), plan.channels.len(), plan.runners.len());
    let registry = Arc::new(MetricsRegistry::default());
    // The server starts before the components, so a taken port stops the agent before any
    // event is accepted, and `/ready` can say "starting" meanwhile.
    let server_stop = CancellationToken::new();
    let server = match http {
        None => None,
        Some(addr) => match crate::http::bind(addr).await {
            Ok(listener) => {
                let state = crate::http::AppState::new(
                    registry.clone(),
                    &name,
                    Duration::from_secs(args.ready_sink_failure_secs),
                );
                let bound = listener.local_addr().unwrap_or(addr);
                let console = ConsoleState::new(state.clone(), server_stop.clone());
                let handle = crate::http::serve(
                    listener,
                    crate::http::router(state.clone())
                        .merge(crate::http::console::router(console.clone())),
                    server_stop.clone(),
                );
                tracing::info!(address = %bound, "HTTP metrics server listening (/metrics, /metrics/prometheus, /health, /ready, console on /).");
                Some((state, handle, console))
            }
            Err(e) => {
                eprintln!("flumen: {e}");
                return ExitCode::from(EXIT_RUNTIME);
            }
        },
    };
    let console = server.as_ref().map(|(_, _, c)| c.clone());
    if let Some(console) = &console {
        publish_applied(console, &path, &name, &plan).await;
    }
    let mut agent = RunningAgent::new(registry);
    agent.apply(plan).await;
    if let Some((state, _, _)) = &server {
        state.set_agent_started();
    }
    tracing::info!(agent = %name, file = %path.display(), sources = n_src, channels = n_ch, sink_runners = n_run, "Agent started.");

    let (Ok(mut sigterm), Ok(mut sigint)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("flumen: cannot install signal handlers");
        return ExitCode::from(EXIT_RUNTIME);
    };
    let (reload_tx, mut reload_rx) = mpsc::channel::<()>(1);
    let _watcher = if args.no_reload_conf {
        None
    } else {
        Some(watch_config(
            &path,
            Duration::from_secs(args.poll_interval.max(1)),
            reload_tx,
        ))
    };
    let mut last = file_stamp(&path).await;

    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM received; shutting down (send again to force)."); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT received; shutting down (send again to force)."); break; }
            Some(()) = reload_rx.recv() => {
                // Let an editor finish writing before reading.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while reload_rx.try_recv().is_ok() {}
                let stamp = file_stamp(&path).await;
                if stamp == last {
                    continue;
                }
                last = stamp;
                reload(&mut agent, &path, &name, options, console.as_ref()).await;
            }
        }
    }

    // A second signal forces the exit while draining.
    tokio::spawn(async move {
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = sigint.recv() => {}
        }
        eprintln!("flumen: second signal, exiting now");
        std::process::exit(130);
    });
    agent
        .shutdown(Duration::from_secs(args.drain_timeout))
        .await;
    // Metrics stay readable while the sinks drain; the server goes last.
    server_stop.cancel();
    if let Some((_, handle, _)) = server {
        // Graceful shutdown waits for open keep-alive connections; a scraper must not hold
        // the exit hostage.
        let _ = tokio::time::timeout(Duration::from_secs(2), handle).await;
    }
    tracing::info!(agent = %name, "Agent stopped.");
    ExitCode::SUCCESS
}

async fn reload(
    agent: &mut RunningAgent,
    path: &Path,
    name: &str,
    options: BuildOptions,
    console: Option<&ConsoleState>,
) {
    let reuse = |n: &str, fp: &crate::topology::build::Fingerprint| agent.reusable_channel(n, fp);
    match load_plan(path, name, options, &reuse) {
        Ok(plan) => {
            for d in &plan.warnings {
                tracing::warn!(diagnostic = %d, "Configuration warning.");
            }
            if let Some(console) = console {
                publish_applied(console, path, name, &plan).await;
            }
            let s = agent.apply(plan).await;
            tracing::info!(
                file = %path.display(),
                added = ?s.added, restarted = ?s.restarted, removed = ?s.removed, kept = s.kept.len(),
                "Configuration reloaded."
            );
        }
        Err(diags) => {
            for d in diags.iter().filter(|d| d.is_error()) {
                tracing::error!(diagnostic = %d, "Configuration error.");
            }
            tracing::error!(file = %path.display(), "New configuration rejected; the running flows keep the previous one.");
            if let Some(console) = console {
                console.rejected(&diags);
            }
        }
    }
}

/// Shows `plan` (about to be applied) on the console's `/config`: the file is read again for
/// the components' properties as written (the plan keeps only built components), restricted
/// to the components the plan runs.
async fn publish_applied(console: &ConsoleState, path: &Path, name: &str, plan: &Plan) {
    let mut running = Running {
        sources: plan.sources.iter().map(|s| s.name.clone()).collect(),
        channels: plan.channels.iter().map(|c| c.name.clone()).collect(),
        ..Running::default()
    };
    for r in &plan.runners {
        let sinks = r.sink_names();
        // A runner named after its only sink is an ungrouped sink; otherwise a group.
        if sinks.len() != 1 || sinks[0] != r.name {
            running.groups.insert(r.name.clone());
        }
        running.sinks.extend(sinks.into_iter().map(str::to_owned));
    }
    let def = match tokio::fs::read(path).await {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let (entries, _) = flumen_config::parse_properties(text);
            let env = |k: &str| std::env::var(k).ok();
            flumen_config::load_agent(&entries, name, &env).0
        }
        // Changed or removed since the plan was loaded: show the names at least.
        Err(_) => flumen_config::AgentDef {
            name: name.to_owned(),
            ..Default::default()
        },
    };
    console.applied(&def, path, &running, &plan.warnings);
}

/// Content identity of the file: reload only when it really changed.
async fn file_stamp(path: &Path) -> Option<(SystemTime, u64, u64)> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    let bytes = tokio::fs::read(path).await.ok()?;
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    Some((meta.modified().ok()?, meta.len(), hash))
}

/// Sends on `tx` when the file may have changed: file notification on its directory (editors
/// replace files by renaming, so the file itself is not watched), and a poll as a fallback
/// for filesystems without notification.
fn watch_config(
    path: &Path,
    poll: Duration,
    tx: mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    let poll_tx = tx.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(poll);
        tick.tick().await;
        loop {
            tick.tick().await;
            if poll_tx.send(()).await.is_err() {
                return;
            }
        }
    });
    let file: PathBuf = path.file_name().map(PathBuf::from)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && ev.paths.iter().any(|p| p.file_name() == Some(file.as_os_str()))
        {
            let _ = tx.try_send(());
        }
    })
    .map_err(|e| tracing::warn!(error = %e, "File notification unavailable; polling the configuration file."))
    .ok()?;
    if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
        tracing::warn!(error = %e, dir = %dir.display(), "Cannot watch the configuration directory; polling instead.");
        return None;
    }
    Some(watcher)
}
