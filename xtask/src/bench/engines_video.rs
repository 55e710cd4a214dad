//! The video part of `cargo xtask bench-engines`: the 720p clip of `cargo xtask bench`
//! (step 3) through the release service on ONNX Runtime f32 and on OpenVINO bf16, one
//! after the other; each one's inferred frames per second against its own engine-only
//! rate on the clip's still.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::video::{self, FPS, PERIOD, Video};
use super::{Bench, BenchEngine, Model, Options, VIDEO_STILL};
use crate::fetch;

const ENGINES: [(&str, BenchEngine); 2] = [
    ("Rust, ONNX Runtime f32", BenchEngine::OnnxF32),
    ("Rust, OpenVINO bf16", BenchEngine::Openvino("bf16")),
];

/// Runs the clip on each engine; returns the section of docs/engines.md.
pub fn run(
    root: &Path,
    binary: &Path,
    threads: usize,
    seconds: usize,
    runs: usize,
) -> Result<String> {
    let options = Options {
        requests: 0,
        threads,
        soak: 0,
        runs,
        video_seconds: seconds,
        tiled_requests: 0,
    };
    let model = Model {
        label: "YOLOv8s 640",
        path: root.join("assets/models/azaion.onnx"),
        photos: &[],
    };
    let mut measured = Vec::new();
    for (label, engine) in ENGINES {
        println!("==> video: {label}");
        let bench = Bench {
            root,
            options: &options,
            binary: binary.to_path_buf(),
            python: fetch::venv_python(root),
            scratch: std::env::temp_dir().join(format!(
                "detections-engines-video-{}-{}",
                std::process::id(),
                measured.len()
            )),
            engine,
        };
        std::fs::create_dir_all(&bench.scratch)?;
        measured.push((label, video::run(&bench, &model)?));
    }
    Ok(section(seconds, &measured))
}

fn section(seconds: usize, measured: &[(&str, Video)]) -> String {
    let mut doc = String::new();
    let first = &measured[0].1;
    let _ = writeln!(
        doc,
        "\n## A 720p video, `POST /detect`\n\n\
         A {seconds} s 1280×720 clip at {FPS} fps ({:.1} MiB, {VIDEO_STILL} with temporal \
         noise, as in `cargo xtask bench`), sent whole with `frame_period_recognition` \
         {PERIOD}: {} frames inferred, {:.0} views each. Engine-only: `bench-frames` on \
         the still, before and after the request, mean of the two. ×: ÷ ONNX Runtime \
         f32's frames/s.\n\n\
         | engine | inferred frames/s | × | engine-only frames/s | ÷ engine-only |\n\
         |---|---:|---:|---:|---:|",
        first.clip_mib, first.inferred, first.views
    );
    let base = first.frames_per_s();
    for (label, video) in measured {
        let _ = writeln!(
            doc,
            "| {label} | {:.2} | {:.2} | {:.2} | {:.2} |",
            video.frames_per_s(),
            video.frames_per_s() / base,
            video.engine_per_s(),
            video.frames_per_s() / video.engine_per_s()
        );
    }
    doc
}
