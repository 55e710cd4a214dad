//! `detections serve` (the default): the HTTP service until SIGTERM or Ctrl-C, then the
//! orderly shutdown of spec B.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use adapters::annotations::outbox::Outbox;
use adapters::http::HttpConfig;
use ports::MemoryBudget;

use crate::compose::{self, Core};
use crate::config::Config;
use crate::fail;

pub async fn serve(config: Config, core: Core) -> ExitCode {
    // Installed before anything records, so /metrics sees every count from the start.
    adapters::http::prometheus();
    Outbox::describe_metrics();
    detections::service::describe_metrics();
    if config.model.start_at_boot {
        core.engines.start_if_allowed();
    }
    let memory = body_memory(&config);
    let application = match compose::application(&config, core, Arc::clone(&memory)).await {
        Ok(application) => Arc::new(application),
        Err(e) => return fail(e),
    };
    application.spawn_availability_feed();
    application.spawn_takeovers();
    let listener = match tokio::net::TcpListener::bind(config.server.bind).await {
        Ok(listener) => listener,
        Err(e) => return fail(format!("cannot listen on {}: {e}", config.server.bind)),
    };
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let rules = config.view_rules();
    tracing::info!(
        %address,
        preprocess = rules.preprocess.as_str(),
        tiling = ?rules.tiling,
        "listening"
    );
    let http = HttpConfig {
        budget: memory,
        max_body_bytes: usize::try_from(config.server.max_body_bytes).unwrap_or(usize::MAX),
        request_timeout: Duration::from_secs(config.server.request_timeout_secs),
        sse_keep_alive: Duration::from_secs(config.events.keep_alive_secs.max(1)),
        console: config.server.console,
    };
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(adapters::http::serve(
        listener,
        Arc::clone(&application) as Arc<dyn ports::DetectionService>,
        http,
        async {
            let _ = http_stopped.await;
        },
    ));
    shutdown_signal().await;
    // Spec B: new work gets 503 while jobs stop, the outbox sends what it can and event
    // streams end; then the listener closes and in-flight requests finish, all within
    // the grace period.
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let deadline = tokio::time::Instant::now() + grace;
    application.shutdown(grace).await;
    let _ = stop_http.send(());
    match tokio::time::timeout_at(deadline, server).await {
        Ok(Ok(Ok(()))) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Ok(Ok(Err(e))) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "server task failed");
            ExitCode::FAILURE
        }
        Err(_) => {
            tracing::warn!("requests still open when the grace period ended; exiting");
            ExitCode::SUCCESS
        }
    }
}

/// The memory all request bodies share (ARCHITECTURE.md "The memory plan").
fn body_memory(config: &Config) -> Arc<MemoryBudget> {
    let budget = config.server.body_memory_budget(machine_memory());
    tracing::info!(
        body_memory_budget_mib = budget >> 20,
        in_memory_body_max_mib = config.server.in_memory_body_max_bytes >> 20,
        "memory for request bodies"
    );
    MemoryBudget::new(
        usize::try_from(budget).unwrap_or(usize::MAX),
        usize::try_from(config.server.in_memory_body_max_bytes).unwrap_or(usize::MAX),
    )
}

/// MemTotal of /proc/meminfo, in bytes (None where there is none).
fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
