//! Stage `e2e`: the release binary against the stand-in over real HTTP
//! (`deploy/tests/release.sh`), then the Docker rollout (`deploy/tests/rollout.sh`,
//! which skips itself loudly where no Docker daemon answers).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// `cargo build --release` of the service and the stand-in; returns the folder
/// holding both binaries.
pub fn build_release(root: &Path) -> Result<PathBuf> {
    let mut cmd = crate::cargo();
    cmd.args(["build", "--release", "-p", "detections", "-p", "standin"]);
    crate::export_env(&mut cmd, root);
    let status = cmd
        .status()
        .context("could not run cargo build --release")?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release"))
}

/// The console's browser tests (`tests/console_browser.rs`) against the release
/// binary instead of the debug one the tests stage used.
pub fn browser(root: &Path, release: &Path) -> Result<()> {
    let mut cmd = crate::cargo();
    cmd.args(["test", "-p", "detections", "--test", "console_browser"])
        .env("E2E_SERVICE_BIN", release.join("detections"));
    crate::export_env(&mut cmd, root);
    let status = cmd.status().context("could not run the browser tests")?;
    if !status.success() {
        bail!("the console's browser tests failed ({status})");
    }
    Ok(())
}

/// Runs one of the test scripts with the release binaries and assets exported.
pub fn script(root: &Path, release: &Path, script: &str) -> Result<()> {
    let mut cmd = Command::new("bash");
    cmd.arg(root.join(script))
        .env("CARGO_TARGET_DIR", release.parent().unwrap_or(release))
        .env("E2E_SERVICE_BIN", release.join("detections"))
        .env("E2E_STANDIN_BIN", release.join("standin"));
    crate::export_env(&mut cmd, root);
    let status = cmd
        .status()
        .with_context(|| format!("could not run {script}"))?;
    if !status.success() {
        bail!("{script} failed ({status})");
    }
    Ok(())
}
