//! Same detections as the pipeline the models are made for. The reference,
//! `scripts/reference.py`, is OpenCV doing exactly what Ultralytics' `LetterBox` does
//! (`preprocess = "letterbox"`) or what the original service's `cv2.dnn.blobFromImage`
//! does (`preprocess = "stretch"`), on photos decoded by `cv2.imdecode` (libjpeg-turbo,
//! EXIF orientation applied). Two real models with different input sizes, JPEGs and
//! PNGs, photos shrunk, enlarged, tiled and stored sideways, both modes:
//!
//! * every reference detection with confidence ≥ 0.25 is found by the service with the
//!   same class, IoU ≥ 0.9 and |Δconfidence| ≤ 0.01;
//! * nothing the service finds above 0.25 + 0.01 is missing from the reference.
//!
//! The service is checked on ONNX Runtime and on OpenVINO in float32 (its bfloat16
//! is held to ONNX Runtime by `tests/openvino.rs`).
//!
//! Both sides run at a threshold of 0.24, so a detection near 0.25 on one side is still
//! visible on the other; lower-scored candidates can only be dropped by higher ones, never
//! drop them, so the lower threshold changes nothing above it.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::matching::{Agreement, Matched, both_ways};
use common::*;
use serde_json::Value;

const THRESHOLD: f64 = 0.25;
const CONFIDENCE_TOLERANCE: f64 = 0.01;
const AGREEMENT: Agreement = Agreement {
    confidence: CONFIDENCE_TOLERANCE,
    iou: 0.9,
};

/// A real model and the photos it is checked on.
struct Case {
    /// The model file under `assets/models`.
    model: &'static str,
    /// Its classes.json (every class of the model, so none is filtered out).
    classes: fn() -> PathBuf,
    photos: &'static [&'static str],
    /// Reference detections (≥ 0.25) over all photos, at least: the check is not empty.
    min_found: usize,
}

/// The fall-detection YOLOv8s (640 input, Normal/Fall): shrunk (960×540, 720×960),
/// enlarged (512²), tiled (bus, zidane; people across tile seams, merged) and sideways
/// (EXIF 6) photos.
const YOLOV8_640: Case = Case {
    model: "azaion.onnx",
    classes: || repo().join("classes.json"),
    photos: &[
        "bus.jpg",
        "zidane.jpg",
        "zidane_960x540.jpg",
        "bus_720x960.png",
        "astronaut.png",
        "camera.png",
        "bus_exif6.jpg",
        "bus_exif6.png",
        "seams_2400x1600.jpg",
    ],
    min_found: 15,
};

/// A YOLOv8n with a 320 input (18 classes, faces among them), smaller than every photo
/// it sees: shrunk whole frames (460–470 px), and tiled ones (512², 810×1080).
const YOLOV8_320: Case = Case {
    model: "yolov8n_320.onnx",
    classes: || assets().join("models/yolov8n_320.classes.json"),
    photos: &[
        "astronaut_460.png",
        "camera_460.jpg",
        "bus_353x470.jpg",
        "zidane_470x264.png",
        "astronaut.png",
        "camera.png",
        "bus.jpg",
    ],
    min_found: 3,
};

fn python() -> PathBuf {
    std::env::var_os("REFERENCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/venv/bin/python"))
}

fn settings() -> String {
    format!(
        "{{\"probability_threshold\": {}}}",
        THRESHOLD - CONFIDENCE_TOLERANCE
    )
}

fn by_file(lines: Vec<Value>) -> Vec<(String, Vec<Value>)> {
    lines
        .into_iter()
        .map(|l| {
            let file = l["file"].as_str().unwrap().to_string();
            (file, l["detections"].as_array().unwrap().clone())
        })
        .collect()
}

fn reference(case: &Case, preprocess: &str, photos: &[PathBuf]) -> Vec<(String, Vec<Value>)> {
    let out = run(Command::new(python())
        .arg(repo().join("scripts/reference.py"))
        .arg("--model")
        .arg(assets().join("models").join(case.model))
        .arg("--classes")
        .arg((case.classes)())
        .args(["--threads", "2", "--preprocess", preprocess])
        .args(["--settings", &settings()])
        .args(photos));
    assert!(out.status.success(), "reference: {}", stderr(&out));
    by_file(json_lines(&out))
}

/// The engine the service runs on.
#[derive(Debug, Clone, Copy)]
enum Engine {
    OnnxRuntime,
    OpenvinoF32,
}

fn service(
    case: &Case,
    preprocess: &str,
    photos: &[PathBuf],
    engine: Engine,
) -> Vec<(String, Vec<Value>)> {
    let dir = scratch(&format!("parity-{}-{preprocess}-{engine:?}", case.model));
    let config = config_file(&dir, &assets().join("models"), case.model, "");
    let mut command = binary();
    if let Engine::OpenvinoF32 = engine {
        command.envs(openvino_env(&dir, "f32"));
    }
    let out = run(command
        .arg("--config")
        .arg(config)
        .env("DETECTIONS_ENGINE__PREPROCESS", preprocess)
        .env("DETECTIONS_CLASSES__PATH", (case.classes)())
        .arg("detect")
        .args(["--settings", &settings()])
        .args(photos));
    assert!(out.status.success(), "{}", stderr(&out));
    by_file(json_lines(&out))
}

fn check(case: &Case, preprocess: &str) {
    let photos: Vec<PathBuf> = case
        .photos
        .iter()
        .map(|p| assets().join("photos").join(p))
        .collect();
    let theirs = reference(case, preprocess, &photos);
    for engine in [Engine::OnnxRuntime, Engine::OpenvinoF32] {
        let ours = service(case, preprocess, &photos, engine);
        compare(case, &format!("{preprocess} {engine:?}"), &ours, &theirs);
    }
}

fn compare(
    case: &Case,
    preprocess: &str,
    ours: &[(String, Vec<Value>)],
    theirs: &[(String, Vec<Value>)],
) {
    let photos = case.photos;
    assert_eq!(ours.len(), photos.len());
    assert_eq!(theirs.len(), photos.len());
    let Matched {
        found,
        worst_confidence,
        worst_iou,
    } = both_ways(
        ours,
        theirs,
        THRESHOLD,
        AGREEMENT,
        ("reference", "service"),
        |file| format!("{} {preprocess} {file}", case.model),
    );
    println!(
        "{} {preprocess}: {found} reference detections matched, largest |Δconfidence| \
         {worst_confidence:.4}, smallest IoU {worst_iou:.4}",
        case.model
    );
    assert!(
        found >= case.min_found,
        "{} {preprocess}: the reference found {found} detections, expected at least {}",
        case.model,
        case.min_found
    );
}

#[test]
fn yolov8_640_letterbox_matches_ultralytics() {
    check(&YOLOV8_640, "letterbox");
}

#[test]
fn yolov8_640_stretch_matches_the_original_service() {
    check(&YOLOV8_640, "stretch");
}

#[test]
fn yolov8_320_letterbox_matches_ultralytics() {
    check(&YOLOV8_320, "letterbox");
}

#[test]
fn yolov8_320_stretch_matches_the_original_service() {
    check(&YOLOV8_320, "stretch");
}

/// A photo stored sideways with EXIF Orientation 6 is detected upright: the same boxes
/// as the upright photo (the PNG pair has identical pixels once turned).
#[test]
fn exif_orientation_is_applied_before_detection() {
    let dir = scratch("parity-orientation");
    let config = config_file(&dir, &assets().join("models"), "azaion.onnx", "");
    let out = run(binary()
        .arg("--config")
        .arg(config)
        .arg("detect")
        .arg(assets().join("photos/bus.png"))
        .arg(assets().join("photos/bus_exif6.png")));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = by_file(json_lines(&out));
    let (upright, sideways) = (&lines[0].1, &lines[1].1);
    assert!(!upright.is_empty(), "bus.png shows people");
    assert_eq!(upright, sideways, "the tagged photo must be turned upright");
}
