//! JPEG decoding against `cv2.imdecode` (docs/pipeline.md §0): photos and JPEGs that OpenCV
//! itself encoded (progressive, 4:4:4, 4:2:2, grey), with OpenCV's decoded pixels stored
//! losslessly by `scripts/make_fixtures.py` (assets/fixtures/decode). Both use
//! libjpeg-turbo with the same settings, so the pixels are equal.

use std::path::PathBuf;

use adapters::image::ImageCodec;
use ports::{FrameCodec, RgbFrame};
use serde_json::Value;

fn fixtures() -> PathBuf {
    let assets = std::env::var_os("TEST_ASSETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets"));
    let dir = assets.join("fixtures/decode");
    assert!(
        dir.join("manifest.json").is_file(),
        "{} missing: run `cargo xtask fetch`",
        dir.display()
    );
    dir
}

fn decode(path: PathBuf) -> RgbFrame {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ImageCodec::default()
        .decode(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn jpeg_pixels_equal_opencv_imdecode() {
    let dir = fixtures();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
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
