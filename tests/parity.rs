//! The real YOLOv8 fall-detection model on real photos of people: the Rust pipeline
//! and the committed plain-Python reference (scripts/reference.py) must agree —
//! same count, boxes matched with IoU ≥ 0.95, confidences within 0.01.
//!
//! Both get lossless PNGs (bus, zidane and its 4480-wide enlargement are the JPEGs
//! as Pillow decodes them): two JPEG decoders legitimately differ by a few levels,
//! which moves weak confidences by up to 0.025 — decoder noise, not pipeline
//! difference. JPEG decoding itself is tested in the adapters.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use serde_json::Value;

const PHOTOS: [&str; 5] = [
    "bus.png",
    "zidane.png",
    "astronaut.png",
    "camera.png",
    // 4480×2520: tiled into dozens of views.
    "zidane_4480.png",
];

fn python() -> PathBuf {
    std::env::var_os("REFERENCE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/venv/bin/python"))
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

#[test]
fn rust_and_the_python_reference_agree_on_real_photos() {
    let photos: Vec<PathBuf> = PHOTOS
        .iter()
        .map(|p| assets().join("photos").join(p))
        .collect();
    let dir = scratch("parity");
    let config = config_file(&dir, &assets().join("models"), "azaion.onnx", "");
    let rust = run(binary()
        .arg("--config")
        .arg(config)
        .arg("detect")
        .args(&photos));
    assert!(rust.status.success(), "{}", stderr(&rust));
    let reference = run(Command::new(python())
        .arg(repo().join("scripts/reference.py"))
        .arg("--model")
        .arg(assets().join("models/azaion.onnx"))
        .arg("--classes")
        .arg(repo().join("classes.json"))
        .arg("--threads")
        .arg("2")
        .args(&photos));
    assert!(
        reference.status.success(),
        "reference: {}",
        stderr(&reference)
    );

    let rust = by_file(json_lines(&rust));
    let reference = by_file(json_lines(&reference));
    assert_eq!(rust.len(), PHOTOS.len());
    let mut people = 0;
    for ((file, ours), (ref_file, theirs)) in rust.iter().zip(&reference) {
        assert_eq!(file, ref_file);
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{file}: ours {ours:?}\nreference {theirs:?}"
        );
        let mut unmatched: Vec<&Value> = theirs.iter().collect();
        for detection in ours {
            let best = unmatched
                .iter()
                .enumerate()
                .filter(|(_, t)| t["classNum"] == detection["classNum"])
                .max_by(|(_, a), (_, b)| iou(detection, a).total_cmp(&iou(detection, b)))
                .map(|(i, _)| i)
                .unwrap_or_else(|| panic!("{file}: no reference box of the class of {detection}"));
            let matched = unmatched.remove(best);
            assert!(
                iou(detection, matched) >= 0.95,
                "{file}: {detection} vs {matched}"
            );
            let delta = (detection["confidence"].as_f64().unwrap()
                - matched["confidence"].as_f64().unwrap())
            .abs();
            assert!(delta <= 0.01, "{file}: confidence {detection} vs {matched}");
            assert_eq!(detection["label"], matched["label"]);
        }
        people += ours.len();
    }
    assert!(people >= 5, "the photos show people; found {people}");
}
