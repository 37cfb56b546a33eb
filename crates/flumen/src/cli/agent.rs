//! `flumen agent`: run an agent until SIGTERM/SIGINT, applying configuration changes live.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use flumen_core::MetricsRegistry;
use notify::Watcher;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::{
    AgentArgs, EXIT_CONFIG, EXIT_RUNTIME, flume_log_level, init_logging, load_plan,
    print_diagnostics,
};
use crate::topology::{BuildOptions, RunningAgent};

/// Runs the agent; returns when it has shut down.
pub fn run(args: AgentArgs) -> ExitCode {
    let defines = args.config.defines();
    let level = args
        .log_level
        .clone()
        .or_else(|| flume_log_level(&defines))
        .unwrap_or_else(|| "info".into());
    init_logging(&level);
    if let Some(t) = defines.get("flume.monitoring.type") {
        // Remembered for the metrics server; served by a later version.
        let port = defines
            .get("flume.monitoring.port")
            .map_or("41414", String::as_str);
        tracing::info!(monitoring = %t, port, "Monitoring requested; the HTTP metrics server is not part of this build yet.");
    }
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
    runtime.block_on(run_agent(args))
}

async fn run_agent(args: AgentArgs) -> ExitCode {
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
    let mut agent = RunningAgent::new(Arc::new(MetricsRegistry::default()));
    agent.apply(plan).await;
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
                reload(&mut agent, &path, &name, options).await;
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
    tracing::info!(agent = %name, "Agent stopped.");
    ExitCode::SUCCESS
}

async fn reload(agent: &mut RunningAgent, path: &Path, name: &str, options: BuildOptions) {
    let reuse = |n: &str, fp: &crate::topology::build::Fingerprint| agent.reusable_channel(n, fp);
    match load_plan(path, name, options, &reuse) {
        Ok(plan) => {
            for d in &plan.warnings {
                tracing::warn!(diagnostic = %d, "Configuration warning.");
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
        }
    }
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
