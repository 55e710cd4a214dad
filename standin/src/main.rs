//! `standin --models-dir <dir> --bind 0.0.0.0:8080`: the Loader and Annotations
//! stand-in as a process, driven over HTTP under `/_standin` (see README.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

/// A stand-in for the Loader and Annotations services, for tests.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Folder that `/load/{name}` reads from and `/upload/{name}` writes to.
    #[arg(long, env = "STANDIN_MODELS_DIR", default_value = ".")]
    models_dir: PathBuf,
    /// Address to listen on; port 0 picks a free one (printed on stderr).
    #[arg(long, env = "STANDIN_BIND", default_value = "0.0.0.0:8080")]
    bind: SocketAddr,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    if !args.models_dir.is_dir() {
        eprintln!(
            "standin: --models-dir {} is not a folder",
            args.models_dir.display()
        );
        return ExitCode::from(2);
    }
    let listener = match tokio::net::TcpListener::bind(args.bind).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("standin: cannot listen on {}: {e}", args.bind);
            return ExitCode::from(2);
        }
    };
    let address = listener
        .local_addr()
        .map_or_else(|_| args.bind.to_string(), |a| a.to_string());
    // Same shape as the service's start-up line, so a test can parse `address=`.
    eprintln!(
        "standin listening address={address} models_dir={}",
        args.models_dir.display()
    );
    let shared = Arc::new(standin::Shared::new(args.models_dir));
    let served = axum::serve(listener, standin::router(shared))
        .with_graceful_shutdown(stop_signal())
        .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("standin: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C, or SIGTERM (a container stop).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
