//! The pixels the model sees against OpenCV's (docs/pipeline.md §0, §2), on references
//! that `scripts/make_fixtures.py` writes with OpenCV (assets/fixtures/decode, …/resize):
//!
//! * JPEG decoding against `cv2.imdecode`: photos and JPEGs that OpenCV itself encoded
//!   (progressive, 4:4:4, 4:2:2, grey). Both use libjpeg-turbo with the same settings,
//!   so the pixels are equal.
//! * Resizing against `cv2.resize(..., INTER_LINEAR)`: shrinking by integer and
//!   non-integer factors, enlarging, odd sizes and aspect changes; within one level.

use std::path::PathBuf;

use adapters::image::{ImageCodec, LetterboxPreprocessor, Region};
use domain::geometry::{Letterbox, Size};
use ports::{ElementType, FrameCodec, InputTensor, RgbFrame};
use serde_json::Value;

/// `assets/fixtures/<kind>`, with its manifest.
fn fixtures(kind: &str) -> (PathBuf, Value) {
    let assets = std::env::var_os("TEST_ASSETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets"));
    let dir = assets.join("fixtures").join(kind);
    let manifest = std::fs::read(dir.join("manifest.json"))
        .unwrap_or_else(|e| panic!("{}: {e}: run `cargo xtask fetch`", dir.display()));
    (dir, serde_json::from_slice(&manifest).unwrap())
}

fn decode(path: PathBuf) -> RgbFrame {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ImageCodec::default()
        .decode(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn jpeg_pixels_equal_opencv_imdecode() {
    let (dir, manifest) = fixtures("decode");
    let jpegs = manifest["jpegs"].as_array().unwrap();
    assert!(jpegs.len() >= 6);
    for name in jpegs {
        let name = name.as_str().unwrap();
        let ours = decode(dir.join(name));
        let opencv = decode(dir.join(format!("{name}.png")));
        assert_eq!(ours.size(), opencv.size(), "{name}");
        let differing = ours
            .pixels()
            .iter()
            .zip(opencv.pixels())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            differing, 0,
            "{name}: {differing} values differ from OpenCV's"
        );
    }
}

/// `source` resized to `target` by the preprocessor (a stretch: the whole input), as 8-bit
/// RGB values read back from the tensor.
fn resized(source: &RgbFrame, target: Size) -> Vec<u8> {
    let (w, h) = (source.size().width(), source.size().height());
    let mut tensor = InputTensor::new(ElementType::F32, target, 1);
    LetterboxPreprocessor::new()
        .fill_region(
            source,
            Region {
                x: 0,
                y: 0,
                width: w,
                height: h,
            },
            &Letterbox::stretch(source.size(), target),
            tensor.slot(0).unwrap(),
        )
        .unwrap();
    let planes = tensor.as_f32().unwrap();
    let plane = (target.width() * target.height()) as usize;
    (0..plane)
        .flat_map(|i| (0..3).map(move |c| (planes[c * plane + i] * 255.0).round() as u8))
        .collect()
}

#[test]
fn resize_is_within_one_level_of_opencv_inter_linear() {
    let (dir, manifest) = fixtures("resize");
    let mut checked = 0;
    for case in manifest["cases"].as_array().unwrap() {
        let name = case["source"].as_str().unwrap();
        let source = decode(dir.join(name));
        for target in case["targets"].as_array().unwrap() {
            let (w, h) = (
                target[0].as_u64().unwrap() as u32,
                target[1].as_u64().unwrap() as u32,
            );
            let stem = name.trim_end_matches(".png");
            let opencv = decode(dir.join(format!("{stem}_{w}x{h}.png")));
            let ours = resized(&source, Size::new(w, h).unwrap());
            let values = ours.len();
            let worst = ours
                .iter()
                .zip(opencv.pixels())
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            let equal = ours
                .iter()
                .zip(opencv.pixels())
                .filter(|(a, b)| a == b)
                .count();
            let share = equal as f64 / values as f64;
            println!(
                "{name} → {w}×{h}: {:.2} % of values equal, worst {worst} level(s)",
                share * 100.0
            );
            assert!(worst <= 1, "{name} → {w}×{h}: a value is off by {worst}");
            assert!(
                share >= 0.6,
                "{name} → {w}×{h}: only {:.1} % equal",
                share * 100.0
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} cases in the manifest");
}
