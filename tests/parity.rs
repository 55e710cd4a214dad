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
//! Both sides run at a threshold of 0.24, so a detection near 0.25 on one side is still
//! visible on the other; lower-scored candidates can only be dropped by higher ones, never
//! drop them, so the lower threshold changes nothing above it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

const THRESHOLD: f64 = 0.25;
const CONFIDENCE_TOLERANCE: f64 = 0.01;
const MIN_IOU: f64 = 0.9;

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

fn iou(a: &Value, b: &Value) -> f64 {
    let c = |d: &Value, k: &str| d[k].as_f64().unwrap();
    let corners = |d: &Value| {
        (
            c(d, "centerX") - c(d, "width") / 2.0,
            c(d, "centerY") - c(d, "height") / 2.0,
            c(d, "centerX") + c(d, "width") / 2.0,
            c(d, "centerY") + c(d, "height") / 2.0,
        )
    };
    let (ax1, ay1, ax2, ay2) = corners(a);
    let (bx1, by1, bx2, by2) = corners(b);
    let inter = (ax2.min(bx2) - ax1.max(bx1)).max(0.0) * (ay2.min(by2) - ay1.max(by1)).max(0.0);
    let union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

fn confidence(d: &Value) -> f64 {
    d["confidence"].as_f64().unwrap()
}

/// Every detection of `wanted` at or above `floor` has a partner in `found`: same class,
/// IoU ≥ 0.9, confidence within the tolerance. Partners are taken greedily by IoU, each
/// used once.
/// Returns the largest confidence difference and the smallest IoU of the pairs.
fn all_found(file: &str, what: &str, wanted: &[Value], found: &[Value], floor: f64) -> (f64, f64) {
    let mut unmatched: Vec<&Value> = found.iter().collect();
    let (mut worst_confidence, mut worst_iou) = (0.0_f64, 1.0_f64);
    for detection in wanted.iter().filter(|d| confidence(d) >= floor) {
        let best = unmatched
            .iter()
            .enumerate()
            .filter(|(_, f)| f["classNum"] == detection["classNum"])
            .max_by(|(_, a), (_, b)| iou(detection, a).total_cmp(&iou(detection, b)))
            .map(|(i, _)| i);
        let Some(best) = best else {
            panic!("{file}: {what} {detection} has no partner of its class in {found:?}");
        };
        let partner = unmatched.remove(best);
        assert!(
            iou(detection, partner) >= MIN_IOU,
            "{file}: {what} {detection} vs {partner}: IoU {:.3}",
            iou(detection, partner)
        );
        assert!(
            (confidence(detection) - confidence(partner)).abs() <= CONFIDENCE_TOLERANCE,
            "{file}: {what} {detection} vs {partner}: confidence"
        );
        assert_eq!(detection["label"], partner["label"], "{file}");
        worst_confidence =
            worst_confidence.max((confidence(detection) - confidence(partner)).abs());
        worst_iou = worst_iou.min(iou(detection, partner));
    }
    (worst_confidence, worst_iou)
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

fn service(case: &Case, preprocess: &str, photos: &[PathBuf]) -> Vec<(String, Vec<Value>)> {
    let dir = scratch(&format!("parity-{}-{preprocess}", case.model));
    let config = config_file(&dir, &assets().join("models"), case.model, "");
    let out = run(binary()
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
    let ours = service(case, preprocess, &photos);
    let theirs = reference(case, preprocess, &photos);
    assert_eq!(ours.len(), photos.len());
    assert_eq!(theirs.len(), photos.len());
    let (mut found, mut worst_confidence, mut worst_iou) = (0, 0.0_f64, 1.0_f64);
    for ((file, ours), (reference_file, theirs)) in ours.iter().zip(&theirs) {
        assert_eq!(file, reference_file);
        let file = Path::new(file).file_name().unwrap().to_string_lossy();
        let file = format!("{} {preprocess} {file}", case.model);
        let (confidence_delta, min_iou) = all_found(&file, "reference", theirs, ours, THRESHOLD);
        all_found(
            &file,
            "service",
            ours,
            theirs,
            THRESHOLD + CONFIDENCE_TOLERANCE,
        );
        found += theirs.iter().filter(|d| confidence(d) >= THRESHOLD).count();
        worst_confidence = worst_confidence.max(confidence_delta);
        worst_iou = worst_iou.min(min_iou);
    }
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
