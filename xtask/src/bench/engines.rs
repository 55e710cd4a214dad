//! `cargo xtask bench-engines`: the CPU engines side by side on the same models and
//! photos, in one run. Each round runs `detections bench-frames` once per engine, the
//! engines in turn, so all of them see the same machine load; the table shows each
//! engine's median over the rounds and its ratio to ONNX Runtime in float32, and is
//! written to `docs/engines.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::frames::{json_line, number};
use crate::fetch;

/// One engine: its name in the table and the environment that selects it.
struct Engine {
    label: &'static str,
    openvino_precision: Option<&'static str>,
}

const ENGINES: [Engine; 3] = [
    Engine {
        label: "ONNX Runtime 1.32, f32",
        openvino_precision: None,
    },
    Engine {
        label: "OpenVINO 2026.4, f32",
        openvino_precision: Some("f32"),
    },
    Engine {
        label: "OpenVINO 2026.4, bf16",
        openvino_precision: Some("bf16"),
    },
];

/// A model, its classes, and the photo it is timed on.
struct Case {
    label: &'static str,
    model: &'static str,
    classes: &'static str,
    photo: &'static str,
}

/// Index in [`CASES`] of the HTTP comparison's photo: its engine-only time is what
/// the services' images/s are held to.
const HTTP_CASE: usize = 3;

const CASES: [Case; 4] = [
    Case {
        label: "YOLOv8s 640 (azaion.onnx), bus.jpg: 5 views",
        model: "assets/models/azaion.onnx",
        classes: "classes.json",
        photo: "assets/photos/bus.jpg",
    },
    Case {
        label: "YOLOv8s 640, big_5472x3648.jpg: tiled",
        model: "assets/models/azaion.onnx",
        classes: "classes.json",
        photo: "assets/photos/big_5472x3648.jpg",
    },
    Case {
        label: "YOLOv8n 320 (yolov8n_320.onnx), bus.jpg",
        model: "assets/models/yolov8n_320.onnx",
        classes: "assets/models/yolov8n_320.classes.json",
        photo: "assets/photos/bus.jpg",
    },
    Case {
        label: "YOLOv8s 640, coffee.png: 1 view (the HTTP photo)",
        model: "assets/models/azaion.onnx",
        classes: "classes.json",
        photo: "assets/photos/coffee.png",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    pub rounds: usize,
    pub runs: usize,
    pub threads: usize,
    /// `POST /detect` requests per concurrency in the services' comparison (`--http`;
    /// 0: `--no-http`, the engines only).
    pub http_requests: usize,
    /// Seconds of the 720p clip of the video comparison (0: `--no-video`).
    pub video_seconds: usize,
}

pub fn parse(args: &[String]) -> Result<EngineOptions> {
    let mut options = EngineOptions {
        rounds: 5,
        runs: 5,
        threads: 2,
        http_requests: 24,
        video_seconds: 10,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = |args: &mut std::slice::Iter<'_, String>| -> Result<usize> {
            let text = args
                .next()
                .with_context(|| format!("{flag} needs a number"))?;
            let n: usize = text
                .parse()
                .with_context(|| format!("{flag} {text}: not a number"))?;
            if n == 0 {
                bail!("{flag} must be at least 1");
            }
            Ok(n)
        };
        match flag.as_str() {
            "--rounds" => options.rounds = value(&mut args)?,
            "--runs" => options.runs = value(&mut args)?,
            "--threads" => options.threads = value(&mut args)?,
            "--http" => options.http_requests = value(&mut args)?,
            "--no-http" => options.http_requests = 0,
            "--video-seconds" => options.video_seconds = value(&mut args)?,
            "--no-video" => options.video_seconds = 0,
            other => bail!("bench-engines: unknown option {other}"),
        }
    }
    Ok(options)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// What the speed is worth: the accuracy gate each engine passes (`tests/openvino.rs`).
const ACCURACY: &str = "Accuracy, from `cargo test --test openvino` (ONNX Runtime f32 is \
the reference; the YOLOv8s 640 model on 7 photos and 5 video frames, threshold 0.3): \
OpenVINO f32 gives the same answers (|Δconfidence| 0.0000, IoU 1.0000); OpenVINO bf16 \
agrees view by view (largest |Δconfidence| 0.0147, smallest IoU 0.991 over 28 \
detections), but on one tiled photo (zidane.jpg) its small shifts tip a borderline \
merge of boxes across a tile seam the other way, so the merged answer differs. That is \
why the embedded default, `kind = \"auto\"`, lets only the exact engines compete: at \
start it times ONNX Runtime and OpenVINO f32 on the model and serves the faster \
(ARCHITECTURE.md, \"Two CPU engines\").\n";

pub fn bench_engines(root: &Path, options: &EngineOptions) -> Result<()> {
    let started = Instant::now();
    println!("==> build: cargo build --release -p detections");
    let status = super::cargo_release_build(root)?;
    if !status.success() {
        bail!("`cargo build --release -p detections` exited with {status}");
    }
    let binary = super::target_dir(root).join("release/detections");
    let scratch = std::env::temp_dir().join(format!("detections-engines-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    // engine_ms and full_ms per case and engine, one value per round.
    let mut times = vec![vec![(Vec::new(), Vec::new()); ENGINES.len()]; CASES.len()];
    for round in 1..=options.rounds {
        for (case_index, case) in CASES.iter().enumerate() {
            for (engine_index, engine) in ENGINES.iter().enumerate() {
                println!(
                    "==> round {round}/{}: {} on {}",
                    options.rounds, case.label, engine.label
                );
                let line = bench_frames(root, &binary, &scratch, case, engine, options)?;
                println!("{line}");
                let slot = &mut times[case_index][engine_index];
                slot.0.push(number(&line, "engine_ms")?);
                slot.1.push(number(&line, "full_ms")?);
            }
        }
    }
    let http_photo_ms = {
        let per_engine = &mut times[HTTP_CASE];
        [median(&mut per_engine[0].0), median(&mut per_engine[2].0)]
    };
    let http = if options.http_requests > 0 {
        super::engines_http::run(
            root,
            &binary,
            &scratch,
            options.threads,
            options.http_requests,
            http_photo_ms,
        )?
    } else {
        String::new()
    };
    let video = if options.video_seconds > 0 {
        super::engines_video::run(
            root,
            &binary,
            options.threads,
            options.video_seconds,
            options.runs,
        )?
    } else {
        String::new()
    };
    let _ = std::fs::remove_dir_all(&scratch);
    let mut doc = String::new();
    let line = format!(
        "cargo xtask bench-engines --rounds {} --runs {} --threads {} --http {} --video-seconds {}",
        options.rounds, options.runs, options.threads, options.http_requests, options.video_seconds
    );
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let (runs, rounds) = (options.runs, options.rounds);
    let machine = super::machine::machine();
    let bf16 = bf16_support();
    let _ = writeln!(
        doc,
        "# The CPU engines side by side\n\n\
         Written by `{line}` ({minutes:.1} min). Each round runs `detections bench-frames \
         --runs {runs}` once per engine, the engines in turn on the same machine load; the \
         figures are the medians over {rounds} rounds of the mean milliseconds per photo \
         (`engine`: the model calls alone; `full`: decode, letterbox, engine, decode of \
         the output, NMS). Ratio: ONNX Runtime f32's time ÷ this engine's (above 1 is \
         faster). Accuracy of each: `tests/openvino.rs`, below.\n\n\
         Machine: {machine}; bfloat16: {bf16}.\n"
    );
    let _ = writeln!(doc, "{ACCURACY}");
    let _ = writeln!(
        doc,
        "| model, photo | engine | engine ms | × | full ms | × |\n|---|---|---:|---:|---:|---:|"
    );
    for (case, per_engine) in CASES.iter().zip(&mut times) {
        let (base_engine, base_full) = {
            let (e, f) = &mut per_engine[0];
            (median(e), median(f))
        };
        for (engine, (e, f)) in ENGINES.iter().zip(per_engine.iter_mut()) {
            let (engine_ms, full_ms) = (median(e), median(f));
            let _ = writeln!(
                doc,
                "| {} | {} | {engine_ms:.1} | {:.2} | {full_ms:.1} | {:.2} |",
                case.label,
                engine.label,
                base_engine / engine_ms,
                base_full / full_ms
            );
        }
    }
    doc.push_str(&http);
    doc.push_str(&video);
    println!("\n{doc}");
    let target = root.join("docs/engines.md");
    std::fs::write(&target, &doc).with_context(|| format!("cannot write {}", target.display()))?;
    println!("==> wrote {}", target.display());
    let performance = root.join("docs/performance.md");
    let current = std::fs::read_to_string(&performance).unwrap_or_default();
    let spliced =
        super::engines_section::splice(&current, &super::engines_section::from_engines_doc(&doc));
    std::fs::write(&performance, spliced)
        .with_context(|| format!("cannot write {}", performance.display()))?;
    println!("==> and its section of {}", performance.display());
    Ok(())
}

fn bench_frames(
    root: &Path,
    binary: &Path,
    scratch: &Path,
    case: &Case,
    engine: &Engine,
    options: &EngineOptions,
) -> Result<String> {
    let mut cmd = engine_command(
        root,
        binary,
        scratch,
        &root.join(case.model),
        &root.join(case.classes),
        engine.openvino_precision,
    );
    cmd.arg("bench-frames")
        .args(["--runs", &options.runs.to_string()])
        .args(["--threads", &options.threads.to_string()])
        .arg(root.join(case.photo));
    json_line(&mut cmd, &format!("bench-frames ({})", engine.label))
}

/// `binary` on `model` with `classes` from the local folder, on ONNX Runtime or, with
/// a precision, on OpenVINO (its compiled models cached in `scratch`), logging warnings
/// only; the caller adds the subcommand.
pub(super) fn engine_command(
    root: &Path,
    binary: &Path,
    scratch: &Path,
    model: &Path,
    classes: &Path,
    openvino_precision: Option<&str>,
) -> Command {
    let mut cmd = Command::new(binary);
    cmd.current_dir(root)
        .env(
            "DETECTIONS_MODEL__NAME",
            model.file_name().unwrap_or_default(),
        )
        .env("DETECTIONS_MODEL_SOURCE__KIND", "local")
        .env(
            "DETECTIONS_MODEL_SOURCE__DIR",
            model.parent().unwrap_or(root),
        )
        .env("DETECTIONS_CLASSES__PATH", classes)
        .env("DETECTIONS_LOGGING__LEVEL", "warn");
    match openvino_precision {
        None => cmd
            .env("DETECTIONS_ENGINE__KIND", "onnx")
            .env("DETECTIONS_ENGINE__LIBRARY", fetch::ort_library(root)),
        Some(precision) => cmd
            .env("DETECTIONS_ENGINE__KIND", "openvino")
            .env("DETECTIONS_ENGINE__LIBRARY", fetch::openvino_library(root))
            .env("DETECTIONS_ENGINE__PRECISION", precision)
            .env(
                "DETECTIONS_ENGINE__CACHE_DIR",
                scratch.join("openvino-cache"),
            ),
    };
    cmd
}

/// Whether the CPU computes in bfloat16 (AVX-512 BF16, AMX).
fn bf16_support() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has = |flag: &str| info.split_whitespace().any(|f| f == flag);
    format!(
        "avx512_bf16 {}, amx_bf16 {}",
        if has("avx512_bf16") { "yes" } else { "no" },
        if has("amx_bf16") { "yes" } else { "no" }
    )
}
