//! `cargo xtask` — set-up tooling for the Detections service.
//!
//! * `cargo xtask fetch [--runtime-only]` — pinned wheels → `assets/`, Python
//!   venv, fixtures and derived photos (idempotent).
//! * `cargo xtask test` — the CI pipeline, stage by stage (`==> <stage>: …`): fetch;
//!   lint (fmt, clippy, shellcheck); tests (cargo test, bats); security (cargo audit,
//!   licences, [`security`]); e2e (release binary + stand-in, Docker rollout, Docker cluster, [`e2e`]).
//! * `cargo xtask run [args…]` — fetch the runtime, then `cargo run --release -- serve args…`.
//! * `cargo xtask bench [--quick] [--requests N] …` — engine-only, the pipeline stage by
//!   stage, the service over HTTP, the tiled photo, a video and memory, Rust vs Python,
//!   in one run, into `docs/performance.md` ([`bench`]).

mod bench;
mod e2e;
mod fetch;
mod security;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  fetch [--runtime-only]  download pinned wheels, extract assets, build the Python
                          venv and generate fixtures/photos (idempotent)
  test [--only STAGE]     the CI pipeline: fetch; lint (fmt, clippy, shellcheck); tests
                          (cargo test, bats); security (cargo audit, licences); e2e
                          (release binary + stand-in over HTTP, Docker rollout, Docker cluster);
                          --only lint|tests|security|e2e runs fetch and that stage
  run [args...]           fetch --runtime-only, then cargo run --release -- serve [args...]
  bench [--quick] [--requests N] [--threads T] [--soak N] [--runs N]
        [--video-seconds S] [--tiled-requests N]
                          one run, one machine, Rust vs the Python service, each speed
                          also as a ratio to engine-only: bench-frames vs reference.py
                          stage by stage (--runs, default 5); POST /detect at concurrency
                          1, 2, 4, 8 (--requests each, default 40) with /health probed;
                          the tiled 5472x3648 photo (--tiled-requests, default 3); a 720p
                          video (--video-seconds, default 10); RSS and a soak (--soak,
                          default 5000); --threads intra-op threads (default 2); --quick:
                          the smallest numbers (a smoke run) -> docs/performance.md
  bench-http [...]        the same as bench (an alias)
  bench-cluster           what the NATS broker costs (POST /detect, event latency across
                          replicas, events/s) and the takeover time of a killed job
  bench-engines [--rounds N] [--runs N] [--threads T] [--http N | --no-http]
                          ONNX Runtime f32, OpenVINO f32 and OpenVINO bf16 side by side,
                          engine-only and full pipeline, and `POST /detect` on the Rust
                          and Python services on ONNX Runtime and OpenVINO bf16 (RSS
                          too), into docs/engines.md and its section of
                          docs/performance.md (which bench keeps)
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
            let only = match rest.as_slice() {
                [] => None,
                [flag, stage] if flag == "--only" && STAGES.contains(&stage.as_str()) => {
                    Some(stage.as_str())
                }
                _ => bail!("test: unexpected arguments {rest:?}\n\n{USAGE}"),
            };
            test(&root, only)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("run") => run(&root, &rest),
        Some("bench-cluster") => {
            bench::bench_cluster(&root)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("bench-engines") => {
            let options = bench::parse_engines(&rest)?;
            bench::bench_engines(&root, &options)?;
            Ok(ExitCode::SUCCESS)
        }
        Some("bench" | "bench-http") => {
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
        .env("REFERENCE_PYTHON", fetch::venv_python(root))
        // The console's browser tests fail, not skip, without Chromium here.
        .env("REQUIRE_BROWSER_TESTS", "1");
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        cmd.env("ORT_DYLIB_PATH", fetch::ort_library(root));
    }
    if std::env::var_os("OPENVINO_LIBRARY").is_none() {
        cmd.env("OPENVINO_LIBRARY", fetch::openvino_library(root));
    }
}

/// The CI pipeline; `.ci/run` calls this. Each step prints `==> <stage>: <what>`,
/// and a table of times closes the run.
fn test(root: &Path, only: Option<&str>) -> Result<()> {
    let mut times = Timings::new();
    let run = |name: &str| only.is_none_or(|o| o == name);
    stage("fetch", "cargo xtask fetch");
    fetch::fetch(root, false).context("stage `fetch` failed")?;
    times.lap("fetch");
    if run("lint") {
        lint(root)?;
        times.lap("lint");
    }
    if run("tests") {
        tests(root)?;
        times.lap("tests");
    }
    if run("security") {
        security(root)?;
        times.lap("security");
    }
    if run("e2e") {
        end_to_end(root, &mut times)?;
    }
    println!("==> all stages passed");
    times.print();
    Ok(())
}

const STAGES: [&str; 4] = ["lint", "tests", "security", "e2e"];

fn lint(root: &Path) -> Result<()> {
    cargo_step(
        root,
        "lint",
        "cargo fmt --all --check",
        &["fmt", "--all", "--check"],
    )?;
    cargo_step(
        root,
        "lint",
        "cargo clippy --workspace --all-targets -- -D warnings",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    // The core library must not see the adapters (ARCHITECTURE.md "Dependency rule"):
    // built without the binary's `server` feature, any `adapters::` in it fails here.
    cargo_step(
        root,
        "lint",
        "cargo check -p detections --lib --no-default-features (the core without adapters)",
        &[
            "check",
            "-p",
            "detections",
            "--lib",
            "--no-default-features",
        ],
    )?;
    let scripts = shell_scripts(root)?;
    stage("lint", &format!("shellcheck ({} scripts)", scripts.len()));
    tool_step(
        root,
        "shellcheck",
        Command::new("shellcheck").args(&scripts),
    )
}

fn tests(root: &Path) -> Result<()> {
    cargo_step(
        root,
        "tests",
        "cargo test --workspace (unit, property, integration)",
        &["test", "--workspace"],
    )?;
    stage(
        "tests",
        "bats deploy/tests (deploy scripts against a fake docker)",
    );
    tool_step(root, "bats", Command::new("bats").arg("deploy/tests"))
}

fn security(root: &Path) -> Result<()> {
    stage("security", "cargo audit --no-fetch --db <advisory-db>");
    security::audit(root).context("stage `security` failed")?;
    stage("security", "dependency licences against licences.toml");
    security::licences(root).context("stage `security` failed")
}

fn end_to_end(root: &Path, times: &mut Timings) -> Result<()> {
    stage("e2e", "cargo build --release -p detections -p standin");
    let release = e2e::build_release(root).context("stage `e2e` failed")?;
    times.lap("e2e: release build");
    stage("e2e", "release binary with the stand-in over HTTP");
    e2e::script(root, &release, "deploy/tests/release.sh").context("stage `e2e` failed")?;
    times.lap("e2e: release binary");
    stage(
        "e2e",
        "the console in headless Chromium, against the release binary",
    );
    e2e::browser(root, &release).context("stage `e2e` failed")?;
    times.lap("e2e: console in a browser");
    stage(
        "e2e",
        "Docker rollout: images, local registry, deploy/rollback",
    );
    e2e::script(root, &release, "deploy/tests/rollout.sh").context("stage `e2e` failed")?;
    times.lap("e2e: docker rollout");
    stage(
        "e2e",
        "Docker cluster: three NATS servers, three replicas, HAProxy",
    );
    e2e::script(root, &release, "deploy/tests/cluster.sh").context("stage `e2e` failed")?;
    times.lap("e2e: docker cluster");
    Ok(())
}

fn stage(name: &str, shown: &str) {
    println!("==> {name}: {shown}");
}

fn cargo_step(root: &Path, name: &str, shown: &str, args: &[&str]) -> Result<()> {
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
    Ok(())
}

/// A system tool that `.ci/run` installs; a missing one is an error, not a skip.
fn tool_step(root: &Path, tool: &str, cmd: &mut Command) -> Result<()> {
    export_env(cmd, root);
    let status = cmd.status().with_context(|| {
        format!("`{tool}` is missing: apt-get install {tool} (.ci/run installs it)")
    })?;
    if !status.success() {
        bail!("`{tool}` failed ({status})");
    }
    Ok(())
}

/// Every shell script of the repository: `*.sh` and the fakes of deploy/tests.
fn shell_scripts(root: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .args(["*.sh", ".ci/run", "deploy/tests/fake/*"])
        .output()
        .context("git ls-files")?;
    if !out.status.success() {
        bail!("git ls-files failed");
    }
    let files: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| root.join(l))
        .filter(|p| p.is_file())
        .collect();
    if files.is_empty() {
        bail!("no shell scripts found");
    }
    Ok(files)
}

/// Wall time of each stage, printed at the end.
struct Timings {
    last: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Timings {
    fn new() -> Self {
        Self {
            last: Instant::now(),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        self.laps.push((name, now - self.last));
        self.last = now;
    }

    fn print(&self) {
        println!("==> timings");
        for (name, d) in &self.laps {
            println!("    {name:<22} {:>6.1} min", d.as_secs_f64() / 60.0);
        }
    }
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
