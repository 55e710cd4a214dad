//! Tiles without seams (docs/pipeline.md §5.2): one object, one box, wherever the tiles
//! are cut.
//!
//! * Exact geometry, through `detections detect`: `brightbox_64.onnx` (made by
//!   scripts/make_fixtures.py) boxes exactly the pixels above half brightness in each
//!   colour channel of a view. A 166×64 frame is three 64-px tiles (x 0, 51, 102) and
//!   the full-frame pass.
//! * A real model on a real photo, through `POST /detect`: seven people pasted on gravel
//!   across horizontal, vertical and corner seams of the 640 model's tiles.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};

/// A 166×64 black PNG with filled rectangles `(x1, y1, x2, y2, channel)` (pixels
/// `x1..x2` × `y1..y2` at 255 in that channel).
fn picture(dir: &Path, name: &str, rects: &[(u32, u32, u32, u32, usize)]) -> PathBuf {
    let mut img = image::RgbImage::new(166, 64);
    for &(x1, y1, x2, y2, channel) in rects {
        for y in y1..y2 {
            for x in x1..x2 {
                img.get_pixel_mut(x, y).0[channel] = 255;
            }
        }
    }
    let path = dir.join(name);
    img.save(&path).unwrap();
    path
}

/// `detections detect` with the brightbox model: each detection's box in frame pixels.
fn detect_boxes(image: &Path, settings: Value, tag: &str) -> Vec<[f64; 4]> {
    let dir = scratch(tag);
    let config = config_file(&dir, &assets().join("fixtures"), "brightbox_64.onnx", "");
    let output = run(binary()
        .arg("--config")
        .arg(config)
        .arg("detect")
        .arg("--settings")
        .arg(settings.to_string())
        .arg(image));
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    let mut boxes: Vec<[f64; 4]> = lines[0]["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| corners(d, 166.0, 64.0))
        .collect();
    boxes.sort_by(|a, b| a[0].total_cmp(&b[0]));
    boxes
}

/// A DetectionDto's corners in the pixels of a `w`×`h` frame.
fn corners(d: &Value, w: f64, h: f64) -> [f64; 4] {
    let v = |k: &str| d[k].as_f64().unwrap();
    let (cx, cy, bw, bh) = (
        v("centerX") * w,
        v("centerY") * h,
        v("width") * w,
        v("height") * h,
    );
    [cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0]
}

fn assert_boxes(got: &[[f64; 4]], want: &[[f64; 4]], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: got {got:?}, want {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            g.iter().zip(w).all(|(a, b)| (a - b).abs() < 1e-6),
            "{what}: got {got:?}, want {want:?}"
        );
    }
}

#[test]
fn an_object_cut_by_a_seam_comes_back_as_one_box_equal_to_it() {
    let dir = scratch("seams-cut");
    // Red, x 40..90: tile 0 (x 0..64) sees 40..64, tile 1 (51..115) sees 51..90.
    let image = picture(&dir, "cut.png", &[(40, 20, 90, 44, 0)]);
    let object = [40.0, 20.0, 90.0, 44.0];
    assert_boxes(
        &detect_boxes(&image, json!({}), "seams-cut-on"),
        &[object],
        "merged, with the full-frame pass",
    );
    assert_boxes(
        &detect_boxes(
            &image,
            json!({"tile_full_frame_pass": false}),
            "seams-cut-tiles",
        ),
        &[object],
        "merged, tiles only",
    );
    // The original: each tile's part, as two boxes.
    assert_boxes(
        &detect_boxes(&image, json!({"tile_merge": false}), "seams-cut-off"),
        &[[40.0, 20.0, 64.0, 44.0], [51.0, 20.0, 90.0, 44.0]],
        "tile_merge off",
    );
}

#[test]
fn two_objects_side_by_side_at_a_seam_stay_two() {
    let dir = scratch("seams-two");
    // Red x 30..60 lies in tile 0, and its right end in tile 1; green x 62..100 starts
    // two pixels before tile 0 ends. Same class: only geometry tells them apart.
    let image = picture(
        &dir,
        "two.png",
        &[(30, 10, 60, 50, 0), (62, 14, 100, 54, 1)],
    );
    assert_boxes(
        &detect_boxes(&image, json!({}), "seams-two-on"),
        &[[30.0, 10.0, 60.0, 50.0], [62.0, 14.0, 100.0, 54.0]],
        "two neighbours",
    );
}

#[test]
fn an_object_larger_than_a_tile_comes_back_once() {
    let dir = scratch("seams-large");
    // Blue x 10..150: wider than a tile (64), so every tile sees only a part (10..64,
    // 51..115, 102..150, overlapping by 13 px: too little to tell they are one); the
    // full-frame pass sees it whole.
    let image = picture(&dir, "large.png", &[(10, 20, 150, 44, 2)]);
    assert_boxes(
        &detect_boxes(&image, json!({}), "seams-large-on"),
        &[[10.0, 20.0, 150.0, 44.0]],
        "with the full-frame pass",
    );
    assert_eq!(
        detect_boxes(
            &image,
            json!({"tile_full_frame_pass": false}),
            "seams-large-tiles"
        )
        .len(),
        3,
        "without the full-frame pass, the three parts"
    );
}

// ------------------------------------------------------------- real model

fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

/// `POST /detect` of the seams photo with `settings`: every detection's box.
fn detect_photo(service: &Service, photo: &[u8], settings: Value) -> Vec<[f64; 4]> {
    let (status, body) = service.detect(photo.to_vec(), "seams.jpg", Some(settings));
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|d| corners(d, 2400.0, 1600.0))
        .collect()
}

#[test]
fn people_across_seams_come_back_once_each_on_a_real_model() {
    let photos = assets().join("photos");
    let photo = std::fs::read(photos.join("seams_2400x1600.jpg")).unwrap();
    let layout: Value =
        serde_json::from_slice(&std::fs::read(photos.join("seams_2400x1600.json")).unwrap())
            .unwrap();
    let objects: Vec<(String, [f64; 4])> = layout["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["where"].as_str().unwrap().to_owned(),
                serde_json::from_value(o["box"].clone()).unwrap(),
            )
        })
        .collect();
    let dir = scratch("seams-real");
    let config = media_config(
        &dir,
        &assets().join("models"),
        "azaion.onnx",
        "",
        "[annotations]\nkind = \"file\"\npath = \"annotations.jsonl\"",
        "",
    );
    let service = Service::start(dir, &config);
    let merged = detect_photo(&service, &photo, json!({}));
    let original = detect_photo(&service, &photo, json!({"tile_merge": false}));
    // Boxes that touch an object (IoU above 0.1): a part of it, or all of it.
    let touching = |boxes: &[[f64; 4]], object: &[f64; 4]| -> Vec<[f64; 4]> {
        boxes
            .iter()
            .filter(|b| iou(b, object) > 0.1)
            .copied()
            .collect()
    };
    let mut split_before = 0;
    for (place, object) in &objects {
        let mine = touching(&merged, object);
        assert_eq!(mine.len(), 1, "{place} {object:?}: {mine:?}");
        let overlap = iou(&mine[0], object);
        assert!(overlap >= 0.7, "{place} {object:?}: IoU {overlap:.2}");
        let before = touching(&original, object);
        if place == "inside" {
            // Inside a tile: exactly what the original gives.
            assert_eq!(before, mine, "{place} {object:?}");
        } else if before.len() != 1 || iou(&before[0], object) < 0.7 {
            split_before += 1;
        }
    }
    // The photo shows the defect: without merging, most seam crossings are broken.
    assert!(split_before >= 3, "only {split_before} broken before");
}
