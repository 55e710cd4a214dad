//! `cargo xtask bench`: every measurement of the service in one run on one machine,
//! written as one document, `docs/performance.md`.
//!
//! 1. [`frames`]: `detections bench-frames` and `scripts/reference.py --bench` back to
//!    back on each photo, stage by stage (decode, preprocess, engine, full). The
//!    engine-only time of a photo is the physical limit for that model and thread
//!    count; every other speed is also given as a ratio to it.
//! 2. [`http`]: for each model, the release service and the Python FastAPI service
//!    (`benches/python_service.py`) under `POST /detect` at concurrency 1, 2, 4, 8,
//!    with `/health` probed during the load and resident memory read from /proc; with
//!    the real model, the tiled 5472×3648 photo; with the tiny model, a soak.
//! 3. [`video`]: a 720p clip through the release service; inferred frames per second
//!    against engine-only on a frame of the same size.
//! 4. [`report`]: a summary table (each row with its target, if any) and the detailed
//!    sections, with the machine, the commit, the date and the command line.

mod cluster;
mod details;
mod engines;
mod engines_http;
mod engines_section;
mod engines_video;
mod frames;
mod http;
mod machine;
mod report;
mod video;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{cargo, fetch};

/// The photo of the HTTP load (one view of the 640 model).
pub const HTTP_PHOTO: &str = "coffee.png";
/// The tiled photo: 77 views of the 640 model.
pub const TILED_PHOTO: &str = "big_5472x3648.jpg";
/// A 1280×720 photo: the frames of the video step are made from it.
pub const VIDEO_STILL: &str = "street_1280x720.jpg";
pub const CONCURRENCY: [usize; 4] = [1, 2, 4, 8];

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// `POST /detect` requests at each concurrency.
    pub requests: usize,
    /// ONNX Runtime intra-op threads, both sides.
    pub threads: usize,
    /// Requests of the memory-growth check.
    pub soak: usize,
    /// Runs of each stage in the stage-by-stage step.
    pub runs: usize,
    /// Length of the 720p clip, seconds (25 fps).
    pub video_seconds: usize,
    /// Requests of the tiled photo, at concurrency 1.
    pub tiled_requests: usize,
}

impl Options {
    const FULL: Options = Options {
        requests: 40,
        threads: 2,
        soak: 5000,
        runs: 5,
        video_seconds: 10,
        tiled_requests: 3,
    };
    /// `--quick`: the smallest numbers that still exercise every step (a smoke run).
    const QUICK: Options = Options {
        requests: 4,
        threads: 2,
        soak: 150,
        runs: 1,
        video_seconds: 2,
        tiled_requests: 1,
    };

    /// The command line that repeats this run exactly.
    pub fn command_line(&self) -> String {
        format!(
            "cargo xtask bench --requests {} --threads {} --soak {} --runs {} \
             --video-seconds {} --tiled-requests {}",
            self.requests,
            self.threads,
            self.soak,
            self.runs,
            self.video_seconds,
            self.tiled_requests
        )
    }
}

/// `--quick` picks the defaults (wherever it stands); the other flags override them.
pub fn parse(args: &[String]) -> Result<Options> {
    let mut options = if args.iter().any(|a| a == "--quick") {
        Options::QUICK
    } else {
        Options::FULL
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let target = match arg.as_str() {
            "--quick" => continue,
            "--requests" => &mut options.requests,
            "--threads" => &mut options.threads,
            "--soak" => &mut options.soak,
            "--runs" => &mut options.runs,
            "--video-seconds" => &mut options.video_seconds,
            "--tiled-requests" => &mut options.tiled_requests,
            other => bail!("bench: unknown argument `{other}`"),
        };
        let value = args
            .next()
            .with_context(|| format!("bench: `{arg}` needs a number"))?;
        *target = value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("bench: `{arg} {value}`: expected a positive number"))?;
    }
    Ok(options)
}

/// One model of the run.
pub struct Model {
    pub label: &'static str,
    pub path: PathBuf,
    /// The photos of the stage-by-stage step.
    pub photos: &'static [&'static str],
}

impl Model {
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    }

    pub fn mib(&self) -> f64 {
        std::fs::metadata(&self.path).map_or(f64::NAN, |m| m.len() as f64 / 1048576.0)
    }
}

/// What every step needs: paths, options and a scratch folder removed at the end.
pub struct Bench<'a> {
    pub root: &'a Path,
    pub options: &'a Options,
    pub binary: PathBuf,
    pub python: PathBuf,
    pub scratch: PathBuf,
    /// The engine the service runs on.
    pub engine: BenchEngine,
}

/// Which engine a [`Bench`]'s configurations name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchEngine {
    OnnxF32,
    /// OpenVINO at this precision, its compiled models cached in the scratch folder.
    Openvino(&'static str),
}

impl Drop for Bench<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

impl Bench<'_> {
    pub fn photo(&self, name: &str) -> PathBuf {
        self.root.join("assets/photos").join(name)
    }

    /// `detections --config <config>`, without the caller's `DETECTIONS_*` and
    /// adapter-selecting variables (they would change what is measured).
    pub fn detections(&self, config: &Path) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--config").arg(config).current_dir(self.root);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("DETECTIONS_")
                || ["LOADER_URL", "ANNOTATIONS_URL", "VIDEOS_DIR", "IMAGES_DIR"]
                    .contains(&name.as_ref())
            {
                cmd.env_remove(&key);
            }
        }
        cmd
    }

    fn engine_section(&self) -> String {
        let threads = self.options.threads;
        match self.engine {
            BenchEngine::OnnxF32 => format!(
                "[engine]\nkind = \"onnx\"\nlibrary = {:?}\nintra_threads = {threads}\n",
                fetch::ort_library(self.root).display().to_string()
            ),
            BenchEngine::Openvino(precision) => format!(
                "[engine]\nkind = \"openvino\"\nlibrary = {:?}\nprecision = {precision:?}\n\
                 threads = {threads}\ncache_dir = {:?}\n",
                fetch::openvino_library(self.root).display().to_string(),
                self.scratch.join("openvino-cache").display().to_string()
            ),
        }
    }

    /// A configuration of the release binary for `model`, serving on `port`.
    pub fn config(&self, tag: &str, model: &Path, port: u16) -> Result<PathBuf> {
        let name = model.file_name().unwrap_or_default().to_string_lossy();
        let model_dir = model.parent().unwrap_or(self.root);
        let text = format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\n\
             [classes]\npath = {classes:?}\n\
             [model]\nname = {name:?}\n\
             [model_source]\nkind = \"local\"\ndir = {model_dir:?}\n\
             {engine}\
             [annotations]\nkind = \"file\"\npath = {annotations:?}\n\
             [outbox]\nspool_dir = {spool:?}\n\
             [logging]\nlevel = \"warn\"\n",
            classes = self.root.join("classes.json").display().to_string(),
            model_dir = model_dir.display().to_string(),
            engine = self.engine_section(),
            annotations = self.scratch.join("annotations.jsonl").display().to_string(),
            spool = self
                .scratch
                .join(format!("spool-{tag}"))
                .display()
                .to_string(),
        );
        let path = self.scratch.join(format!("{tag}.toml"));
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

/// Where cargo puts its output: `CARGO_TARGET_DIR` when set, else `target/`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

pub use cluster::bench_cluster;
pub use engines::{bench_engines, parse as parse_engines};

fn cargo_release_build(root: &Path) -> Result<std::process::ExitStatus> {
    cargo()
        .args(["build", "--release", "-p", "detections"])
        .current_dir(root)
        .status()
        .context("could not start `cargo build --release`")
}

pub fn bench(root: &Path, options: &Options) -> Result<()> {
    let started = Instant::now();
    let models = [
        Model {
            label: "azaion",
            path: root.join("assets/models/azaion.onnx"),
            photos: &[
                HTTP_PHOTO,
                "bus_1920x1080.jpg",
                VIDEO_STILL,
                "zidane.png",
                TILED_PHOTO,
            ],
        },
        Model {
            label: "tiny",
            path: root.join("assets/fixtures/tiny_v8_640.onnx"),
            photos: &[HTTP_PHOTO, "bus_1920x1080.jpg"],
        },
    ];
    let python = fetch::venv_python(root);
    let mut needed = vec![
        python.clone(),
        fetch::ort_library(root),
        root.join("classes.json"),
        root.join("scripts/reference.py"),
        root.join("benches/python_service.py"),
    ];
    for model in &models {
        needed.push(model.path.clone());
        needed.extend(
            model
                .photos
                .iter()
                .map(|p| root.join("assets/photos").join(p)),
        );
    }
    if let Some(missing) = needed.iter().find(|p| !p.is_file()) {
        bail!("{} is missing (run `cargo xtask fetch`)", missing.display());
    }
    // The video step needs it; better to know now than after the other steps.
    let ffmpeg = Command::new("ffmpeg")
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .status();
    if !ffmpeg.is_ok_and(|s| s.success()) {
        bail!("ffmpeg is missing (the video step makes its clip with it): apt-get install ffmpeg");
    }

    println!("==> build: cargo build --release -p detections");
    let status = cargo()
        .args(["build", "--release", "-p", "detections"])
        .current_dir(root)
        .status()
        .context("could not start `cargo build --release`")?;
    if !status.success() {
        bail!("`cargo build --release -p detections` exited with {status}");
    }
    let binary = target_dir(root).join("release/detections");
    if !binary.is_file() {
        bail!("{} is missing after the build", binary.display());
    }
    println!("==> pip install -r benches/requirements.txt (the Python service)");
    let status = Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
        .arg("-r")
        .arg(root.join("benches/requirements.txt"))
        .status()
        .context("could not run pip")?;
    if !status.success() {
        bail!("pip install -r benches/requirements.txt failed");
    }

    let scratch = std::env::temp_dir().join(format!("detections-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let bench = Bench {
        root,
        options,
        binary,
        python,
        scratch,
        engine: BenchEngine::OnnxF32,
    };
    let stages = frames::run(&bench, &models)?;
    let services = models
        .iter()
        .map(|model| http::run(&bench, model))
        .collect::<Result<Vec<_>>>()?;
    let video = video::run(&bench, &models[0])?;
    let measured = report::Measured {
        models: &models,
        stages: &stages,
        services: &services,
        video: &video,
    };
    let doc = report::document(&bench, &measured, started.elapsed());
    println!("\n{}", report::summary(&measured));
    let target = root.join("docs/performance.md");
    // The CPU engines' section is bench-engines' run: kept as it was.
    let previous = std::fs::read_to_string(&target).unwrap_or_default();
    let doc = match engines_section::find(&previous) {
        Some(section) => engines_section::splice(&doc, section),
        None => doc,
    };
    std::fs::write(&target, doc).with_context(|| format!("cannot write {}", target.display()))?;
    println!(
        "==> wrote {} ({:.1} min)",
        target.display(),
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn defaults_quick_and_overrides() {
        assert_eq!(parse(&[]).unwrap(), Options::FULL);
        assert_eq!(parse(&args("--quick")).unwrap(), Options::QUICK);
        let o = parse(&args("--runs 2 --quick --tiled-requests 5")).unwrap();
        assert_eq!(
            (o.runs, o.tiled_requests, o.soak),
            (2, 5, Options::QUICK.soak)
        );
        assert!(parse(&args("--runs 0")).is_err());
        assert!(parse(&args("--runs")).is_err());
        assert!(parse(&args("--video-only")).is_err());
    }

    #[test]
    fn the_command_line_repeats_the_run() {
        let o = parse(&args("--quick --threads 4")).unwrap();
        let line = o.command_line();
        let again = parse(&args(line.trim_start_matches("cargo xtask bench"))).unwrap();
        assert_eq!(again, o);
    }
}
