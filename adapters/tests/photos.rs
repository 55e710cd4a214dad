//! Every photo of the test assets decodes (real encoders' output, not only ours).

mod common;

use adapters::image::ImageCodec;
use ports::FrameCodec;

#[test]
fn every_asset_photo_decodes() {
    common::asset("photos/bus.jpg");
    let dir = common::assets().join("photos");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        // A photo's layout notes (where its objects are) sit beside it.
        if path.extension().is_some_and(|e| e == "json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let frame = ImageCodec::default()
            .decode(&bytes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let size = frame.size();
        assert_eq!(
            frame.pixels().len(),
            size.width() as usize * size.height() as usize * 3
        );
        seen += 1;
    }
    assert!(seen > 0);
}

#[test]
fn bus_photo_has_its_size() {
    let bytes = std::fs::read(common::asset("photos/bus.jpg")).unwrap();
    let frame = ImageCodec::default().decode(&bytes).unwrap();
    assert_eq!((frame.size().width(), frame.size().height()), (810, 1080));
}
