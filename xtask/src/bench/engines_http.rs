//! The HTTP part of `cargo xtask bench-engines`: `POST /detect` of one photo at
//! concurrency 1, 2, 4, 8 on four services, one after another on the same machine —
//! the Rust service on ONNX Runtime f32 and on OpenVINO bf16, and the Python service
//! (FastAPI, 2 workers, `benches/python_service.py`) on the same two engines, the
//! way a Python team would speed up — with each one's memory.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use super::engines::engine_command;
use super::http::{self, Service, free_port, multipart};
use super::{CONCURRENCY, HTTP_PHOTO, Options};
use crate::fetch;

/// One service of the comparison.
struct Peer {
    label: &'static str,
    rust: bool,
    openvino: bool,
}

const PEERS: [Peer; 4] = [
    Peer {
        label: "Rust, ONNX Runtime f32",
        rust: true,
        openvino: false,
    },
    Peer {
        label: "Rust, OpenVINO bf16",
        rust: true,
        openvino: true,
    },
    Peer {
        label: "Python, ONNX Runtime f32",
        rust: false,
        openvino: false,
    },
    Peer {
        label: "Python, OpenVINO bf16",
        rust: false,
        openvino: true,
    },
];

/// Runs the four services; returns the section of docs/engines.md.
pub fn run(
    root: &Path,
    binary: &Path,
    scratch: &Path,
    threads: usize,
    requests: usize,
    engine_only_ms: [f64; 2],
) -> Result<String> {
    let model = root.join("assets/models/azaion.onnx");
    let python = fetch::venv_python(root);
    ensure_python_openvino(root, &python)?;
    let photo = std::fs::read(root.join("assets/photos").join(HTTP_PHOTO))?;
    let body = multipart(HTTP_PHOTO, "application/octet-stream", None, &photo);
    let options = Options {
        requests,
        threads,
        soak: 0,
        runs: 0,
        video_seconds: 0,
        tiled_requests: 0,
    };
    let mut measured = Vec::new();
    for peer in &PEERS {
        println!("==> http: {} at concurrency {CONCURRENCY:?}", peer.label);
        let port = free_port()?;
        let command = if peer.rust {
            rust_service(root, binary, scratch, &model, port, threads, peer.openvino)
        } else {
            python_service(root, &python, &model, port, threads, peer.openvino)
        };
        measured.push(http::measure(command, port, &body, None, &options, None)?);
    }
    Ok(section(threads, requests, &measured, engine_only_ms))
}

fn rust_service(
    root: &Path,
    binary: &Path,
    scratch: &Path,
    model: &Path,
    port: u16,
    threads: usize,
    openvino: bool,
) -> Command {
    let precision = openvino.then_some("bf16");
    let mut command = engine_command(
        root,
        binary,
        scratch,
        model,
        &root.join("classes.json"),
        precision,
    );
    command
        .env("DETECTIONS_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("DETECTIONS_ANNOTATIONS__KIND", "file")
        .env(
            "DETECTIONS_ANNOTATIONS__PATH",
            scratch.join("http-annotations.jsonl"),
        )
        .env("DETECTIONS_OUTBOX__SPOOL_DIR", scratch.join("http-spool"));
    let threads_key = if openvino {
        "DETECTIONS_ENGINE__THREADS"
    } else {
        "DETECTIONS_ENGINE__INTRA_THREADS"
    };
    command.env(threads_key, threads.to_string());
    command.arg("serve");
    command
}

fn python_service(
    root: &Path,
    python: &Path,
    model: &Path,
    port: u16,
    threads: usize,
    openvino: bool,
) -> Command {
    let mut command = Command::new(python);
    command
        .arg(root.join("benches/python_service.py"))
        .arg("--model")
        .arg(model)
        .arg("--classes")
        .arg(root.join("classes.json"))
        .args(["--port", &port.to_string()])
        .args(["--threads", &threads.to_string()])
        .args(["--workers", "2"])
        .args(["--engine", if openvino { "openvino" } else { "onnx" }])
        .current_dir(root);
    command
}

/// The Python service's packages (benches/requirements.txt) and `openvino` in the
/// reference venv, the latter from the pinned wheel `cargo xtask fetch` keeps.
fn ensure_python_openvino(root: &Path, python: &Path) -> Result<()> {
    let wheel = fetch::ensure_wheel(root, &fetch::OPENVINO)?;
    println!(
        "==> pip install -r benches/requirements.txt and {}",
        wheel.display()
    );
    let status = Command::new(python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
        .arg("-r")
        .arg(root.join("benches/requirements.txt"))
        .arg(&wheel)
        .status()
        .context("could not run pip")?;
    anyhow::ensure!(status.success(), "pip install failed ({status})");
    Ok(())
}

/// `engine_only_ms`: one call on the photo alone, ONNX Runtime f32 and OpenVINO bf16.
fn section(
    threads: usize,
    requests: usize,
    measured: &[Service],
    engine_only_ms: [f64; 2],
) -> String {
    let mut doc = String::new();
    let _ = writeln!(
        doc,
        "\n## `POST /detect`, the services side by side\n\n\
         {HTTP_PHOTO} (one view) on YOLOv8s 640, {requests} requests at each concurrency, \
         {threads} engine threads; the Python service is FastAPI with 2 workers on the \
         reference pipeline (`benches/python_service.py`), with `--engine openvino` on \
         OpenVINO bf16 (one infer request per worker). ×: images/s ÷ the Python \
         service's on ONNX Runtime f32; last column: the Rust service on OpenVINO ÷ the \
         Python service on OpenVINO.\n"
    );
    let header: Vec<String> = PEERS.iter().map(|p| p.label.to_string()).collect();
    let _ = writeln!(
        doc,
        "| images/s | {} | Rust OV ÷ Python OV |\n|---|{}---:|",
        header.join(" | "),
        "---:|".repeat(PEERS.len())
    );
    for (index, concurrency) in CONCURRENCY.iter().enumerate() {
        let rates: Vec<f64> = measured
            .iter()
            .map(|s| s.levels.get(index).map_or(f64::NAN, |l| l.images_per_s))
            .collect();
        let python_ort = rates[2];
        let cells: Vec<String> = rates
            .iter()
            .map(|r| format!("{r:.2} ({:.2}×)", r / python_ort))
            .collect();
        let _ = writeln!(
            doc,
            "| c={concurrency} | {} | {:.2} |",
            cells.join(" | "),
            rates[1] / rates[3]
        );
    }
    let _ = writeln!(
        doc,
        "\nThe Rust service's images/s ÷ its engine alone (1000 ÷ the engine-only ms of \
         {HTTP_PHOTO} in the table above: ONNX Runtime f32 {:.1} ms, OpenVINO bf16 {:.1} ms):\n\n\
         | ÷ engine-only | {} |\n|---|{}",
        engine_only_ms[0],
        engine_only_ms[1],
        CONCURRENCY.map(|c| format!("c={c}")).join(" | "),
        "---:|".repeat(CONCURRENCY.len())
    );
    for (peer, engine_ms) in [(0, engine_only_ms[0]), (1, engine_only_ms[1])] {
        let cells: Vec<String> = (0..CONCURRENCY.len())
            .map(|i| {
                let rate = measured[peer]
                    .levels
                    .get(i)
                    .map_or(f64::NAN, |l| l.images_per_s);
                format!("{:.2}", rate * engine_ms / 1000.0)
            })
            .collect();
        let _ = writeln!(doc, "| {} | {} |", PEERS[peer].label, cells.join(" | "));
    }
    let _ = writeln!(
        doc,
        "\n| memory, MiB | {} |\n|---|{}",
        header.join(" | "),
        "---:|".repeat(PEERS.len())
    );
    let row = |what: &str, value: &dyn Fn(&Service) -> f64| {
        let cells: Vec<String> = measured
            .iter()
            .map(|s| format!("{:.0}", value(s)))
            .collect();
        format!("| {what} | {} |", cells.join(" | "))
    };
    let _ = writeln!(
        doc,
        "{}",
        row("idle RSS after warm-up", &|s| s.idle.rss_mib)
    );
    let _ = writeln!(doc, "{}", row("RSS after the load", &|s| s.loaded.rss_mib));
    let _ = writeln!(doc, "{}", row("peak RSS", &|s| s.end.peak_mib));
    doc
}
