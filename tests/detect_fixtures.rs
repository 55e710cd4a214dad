//! `detections detect` on synthetic models whose raw outputs are known (built by
//! scripts/make_fixtures.py): exact boxes after letterbox, inverse and filters, for
//! every output layout, static and dynamic input, float16 input, and batching.

mod common;

use std::path::{Path, PathBuf};

use common::*;

struct Fixture {
    boxes: Vec<[f64; 6]>,
    kept: Vec<usize>,
    input: (f64, f64),
}

fn fixture(name: &str) -> Fixture {
    let entry = fixture_entry(name);
    let shape: Vec<i64> = serde_json::from_value(entry["input_shape"].clone()).unwrap();
    // A dynamic spatial input without `imgsz` metadata runs at 1280×1280 (spec A4).
    let side = |d: i64| if d > 0 { d as f64 } else { 1280.0 };
    Fixture {
        boxes: serde_json::from_value(entry["boxes"].clone()).unwrap(),
        kept: serde_json::from_value(entry["kept_default"].clone()).unwrap(),
        input: (side(shape[3]), side(shape[2])),
    }
}

/// What the pipeline must answer for a one-view image of `w × h`, computed here from
/// first principles: Ultralytics letterbox inverse, clip, normalise, then overlap
/// removal (containment > 0.6, by confidence), sorted by confidence.
fn expected(fixture: &Fixture, w: f64, h: f64) -> Vec<[f64; 6]> {
    let (mw, mh) = fixture.input;
    let r = (mw / w).min(mh / h);
    let (nw, nh) = ((w * r).round(), (h * r).round());
    let left = ((mw - nw) / 2.0 - 0.1).round();
    let top = ((mh - nh) / 2.0 - 0.1).round();
    let mut boxes: Vec<[f64; 6]> = fixture
        .kept
        .iter()
        .map(|&i| {
            let [x1, y1, x2, y2, score, class] = fixture.boxes[i];
            let x = |v: f64| ((v - left) / r).clamp(0.0, w);
            let y = |v: f64| ((v - top) / r).clamp(0.0, h);
            let (x1, y1, x2, y2) = (x(x1), y(y1), x(x2), y(y2));
            [
                (x1 + x2) / 2.0 / w,
                (y1 + y2) / 2.0 / h,
                (x2 - x1) / w,
                (y2 - y1) / h,
                score,
                class,
            ]
        })
        // A box that lies wholly in the padding has nothing left after clipping.
        .filter(|b| b[2] > 0.0 && b[3] > 0.0)
        .collect();
    boxes.sort_by(|a, b| b[4].total_cmp(&a[4]));
    let mut kept: Vec<[f64; 6]> = Vec::new();
    for candidate in boxes {
        if kept.iter().all(|k| containment(k, &candidate) <= 0.6) {
            kept.push(candidate);
        }
    }
    kept
}

fn containment(a: &[f64; 6], b: &[f64; 6]) -> f64 {
    let corners = |d: &[f64; 6]| {
        (
            d[0] - d[2] / 2.0,
            d[1] - d[3] / 2.0,
            d[0] + d[2] / 2.0,
            d[1] + d[3] / 2.0,
        )
    };
    let (ax1, ay1, ax2, ay2) = corners(a);
    let (bx1, by1, bx2, by2) = corners(b);
    let iw = (ax2.min(bx2) - ax1.max(bx1)).max(0.0);
    let ih = (ay2.min(by2) - ay1.max(by1)).max(0.0);
    let smaller = (a[2] * a[3]).min(b[2] * b[3]);
    if smaller <= 0.0 {
        0.0
    } else {
        iw * ih / smaller
    }
}

fn grey_png(dir: &Path, w: u32, h: u32) -> PathBuf {
    let path = dir.join(format!("grey_{w}x{h}.png"));
    image::RgbImage::from_pixel(w, h, image::Rgb([90, 90, 90]))
        .save(&path)
        .unwrap();
    path
}

fn detect(model: &str, image: &Path, extra_args: &[&str], tag: &str) -> std::process::Output {
    let dir = scratch(tag);
    let config = config_file(&dir, &assets().join("fixtures"), model, "");
    run(binary()
        .arg("--config")
        .arg(config)
        .arg("detect")
        .args(extra_args)
        .arg(image))
}

fn assert_matches(model: &str, w: u32, h: u32) {
    let tag = format!("{model}-{w}x{h}");
    let dir = scratch(&format!("img-{tag}"));
    let image = grey_png(&dir, w, h);
    let output = detect(model, &image, &[], &tag);
    assert!(output.status.success(), "{model}: {}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["file"], image.display().to_string());
    let got = lines[0]["detections"].as_array().unwrap();
    let want = expected(&fixture(model), f64::from(w), f64::from(h));
    assert_eq!(got.len(), want.len(), "{model}: got {got:?}, want {want:?}");
    for (g, e) in got.iter().zip(&want) {
        let value = |k: &str| g[k].as_f64().unwrap();
        for (key, expected) in ["centerX", "centerY", "width", "height"].iter().zip(e) {
            assert!(
                (value(key) - expected).abs() < 1e-4,
                "{model} {key}: {g} vs {e:?}"
            );
        }
        assert!(
            (value("confidence") - e[4]).abs() < 1e-6,
            "{model}: {g} vs {e:?}"
        );
        assert_eq!(g["classNum"].as_f64().unwrap(), e[5], "{model}: {g}");
        let label = if e[5] == 0.0 { "Normal" } else { "Fall" };
        assert_eq!(g["label"], label);
    }
}

#[test]
fn end_to_end_layout() {
    assert_matches("e2e_static_640.onnx", 800, 600);
}

#[test]
fn ultralytics_layout_with_nms() {
    assert_matches("v8_static_640.onnx", 800, 600);
}

#[test]
fn ultralytics_layout_on_a_square_image() {
    assert_matches("v8_static_640.onnx", 640, 640);
}

#[test]
fn yolov5_layout() {
    assert_matches("v5_static_640.onnx", 600, 800);
}

#[test]
fn float16_input() {
    assert_matches("v8_fp16_640.onnx", 800, 600);
}

#[test]
fn dynamic_input_without_metadata_runs_at_1280() {
    assert_matches("v8_dynamic.onnx", 1600, 1200);
}

#[test]
fn dynamic_batch_input() {
    assert_matches("v8_dynamic_batch_640.onnx", 800, 600);
}

#[test]
fn a_class_count_mismatch_names_both_numbers() {
    let dir = scratch("mismatch-img");
    let image = grey_png(&dir, 640, 640);
    let output = detect("v8_wrong_classes.onnx", &image, &[], "mismatch");
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains('3') && message.contains('2') && message.contains("classes"),
        "{message}"
    );
}

#[test]
fn batching_tiles_does_not_change_the_answer() {
    let dir = scratch("batch-img");
    let image = grey_png(&dir, 2000, 1500);
    let one = detect(
        "v8_dynamic_batch_640.onnx",
        &image,
        &["--batch", "1"],
        "batch1",
    );
    let four = detect(
        "v8_dynamic_batch_640.onnx",
        &image,
        &["--batch", "4"],
        "batch4",
    );
    assert!(
        one.status.success() && four.status.success(),
        "{}",
        stderr(&four)
    );
    let detections = &json_lines(&one)[0]["detections"];
    assert!(
        !detections.as_array().unwrap().is_empty(),
        "tiles found the fixture's boxes"
    );
    assert_eq!(detections, &json_lines(&four)[0]["detections"]);
}

#[test]
fn bad_files_fail_alone_with_the_reason() {
    let dir = scratch("bad-files");
    let good = grey_png(&dir, 640, 640);
    let garbage = dir.join("random.jpg");
    std::fs::write(&garbage, [0x13u8, 0x37, 0x00, 0xff, 0x42].repeat(100)).unwrap();
    let empty = dir.join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.join("missing.png");
    let config = config_file(&dir, &assets().join("fixtures"), "v8_static_640.onnx", "");
    let output = run(binary()
        .arg("--config")
        .arg(config)
        .arg("detect")
        .args([&good, &garbage, &empty, &missing]));
    assert!(!output.status.success(), "a failed file fails the run");
    assert_eq!(
        json_lines(&output).len(),
        1,
        "the good file is still answered"
    );
    let message = stderr(&output);
    assert!(
        message.contains("random.jpg: unsupported or unrecognised image format"),
        "{message}"
    );
    assert!(
        message.contains("empty.png: the file is empty"),
        "{message}"
    );
    assert!(message.contains("missing.png: cannot read"), "{message}");
    assert!(!message.contains("panicked"), "{message}");
}

#[test]
fn annotate_writes_each_image_with_its_boxes_drawn() {
    let dir = scratch("annotate");
    let image = grey_png(&dir, 640, 640);
    let out = dir.join("annotated");
    let output = detect(
        "v8_static_640.onnx",
        &image,
        &["--annotate", out.to_str().unwrap()],
        "annotate-run",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let written = image::open(out.join("grey_640x640.annotated.jpg"))
        .expect("the annotated image is written")
        .to_rgb8();
    assert_eq!(written.dimensions(), (640, 640));
    // The strongest fixture box (class Normal, #2ecc71) starts at (100, 100): its
    // left edge is drawn in the class colour over the grey.
    let edge = written.get_pixel(100, 250);
    assert!(
        edge[1] > 150 && edge[0] < 120,
        "box edge in the class colour: {edge:?}"
    );
    assert!(
        written.get_pixel(300, 600)[0].abs_diff(90) <= 3,
        "background untouched"
    );
}
