//! Letterboxing views of frames into tensor slots (docs/pipeline.md §2).

use adapters::image::{LetterboxPreprocessor, Region};
use domain::geometry::{Letterbox, Size};
use domain::settings::RecognitionSettings;
use domain::tiling::{ViewRules, plan_views};
use half::f16;
use ports::{ElementType, InputTensor, Preprocessor, RgbFrame};

const PAD: f32 = 114.0 / 255.0;

fn size(w: u32, h: u32) -> Size {
    Size::new(w, h).unwrap()
}

fn uniform(w: u32, h: u32, rgb: [u8; 3]) -> RgbFrame {
    let pixels = rgb
        .iter()
        .copied()
        .cycle()
        .take(w as usize * h as usize * 3)
        .collect();
    RgbFrame::new(size(w, h), pixels).unwrap()
}

fn region(x: u32, y: u32, width: u32, height: u32) -> Region {
    Region {
        x,
        y,
        width,
        height,
    }
}

/// Letterboxes `region` of `frame` into a fresh one-item tensor.
fn letterboxed(frame: &RgbFrame, area: Region, input: Size, element: ElementType) -> InputTensor {
    let letterbox = Letterbox::fit(size(area.width, area.height), input);
    let mut tensor = InputTensor::new(element, input, 1);
    LetterboxPreprocessor::new()
        .fill_region(frame, area, &letterbox, tensor.slot(0).unwrap())
        .unwrap();
    tensor
}

fn whole(frame: &RgbFrame) -> Region {
    region(0, 0, frame.size().width(), frame.size().height())
}

/// Value at (channel, y, x) of slot 0, as f32.
fn at(tensor: &InputTensor, c: usize, y: usize, x: usize) -> f32 {
    let [_, _, h, w] = tensor.shape();
    let index = c * h * w + y * w + x;
    match tensor.element() {
        ElementType::F32 => tensor.as_f32().unwrap()[index],
        ElementType::F16 => tensor.as_f16().unwrap()[index].to_f32(),
    }
}

fn letterbox_uniform(element: ElementType) {
    let rgb = [200u8, 30, 90];
    let frame = uniform(1920, 1080, rgb);
    let input = size(640, 640);
    // 1920×1080 → 640×360, 140 rows of padding above and below.
    let letterbox = Letterbox::fit(frame.size(), input);
    assert_eq!(letterbox.resized(), size(640, 360));
    assert_eq!((letterbox.left(), letterbox.top()), (0, 140));
    let tensor = letterboxed(&frame, whole(&frame), input, element);
    let exact = |v: f32| match element {
        ElementType::F32 => v,
        ElementType::F16 => f16::from_f32(v).to_f32(),
    };
    for (c, value) in rgb.into_iter().enumerate() {
        let colour = exact(f32::from(value) / 255.0);
        for y in 0..640 {
            let expected = if (140..500).contains(&y) {
                colour
            } else {
                exact(PAD)
            };
            for x in 0..640 {
                assert_eq!(at(&tensor, c, y, x), expected, "channel {c} at ({x}, {y})");
            }
        }
    }
}

#[test]
fn uniform_frame_letterboxed_f32() {
    letterbox_uniform(ElementType::F32);
}

#[test]
fn uniform_frame_letterboxed_f16() {
    letterbox_uniform(ElementType::F16);
}

#[test]
fn a_tall_frame_is_padded_left_and_right() {
    let frame = uniform(300, 600, [10, 20, 30]);
    let input = size(640, 640);
    let letterbox = Letterbox::fit(frame.size(), input);
    assert_eq!(letterbox.resized(), size(320, 640));
    let left = letterbox.left() as usize;
    assert_eq!(left, 160);
    let tensor = letterboxed(&frame, whole(&frame), input, ElementType::F32);
    for y in [0, 320, 639] {
        assert_eq!(at(&tensor, 0, y, left - 1), PAD);
        assert_eq!(at(&tensor, 0, y, left), 10.0 / 255.0);
        assert_eq!(at(&tensor, 2, y, left + 319), 30.0 / 255.0);
        assert_eq!(at(&tensor, 2, y, left + 320), PAD);
    }
}

/// `2w × 2h`: red top-left, green top-right, blue bottom-left, white bottom-right.
fn quadrants(w: u32, h: u32) -> RgbFrame {
    let mut pixels = Vec::with_capacity((4 * w * h * 3) as usize);
    for y in 0..2 * h {
        for x in 0..2 * w {
            pixels.extend_from_slice(match (x < w, y < h) {
                (true, true) => &[255, 0, 0],
                (false, true) => &[0, 255, 0],
                (true, false) => &[0, 0, 255],
                (false, false) => &[255, 255, 255],
            });
        }
    }
    RgbFrame::new(size(2 * w, 2 * h), pixels).unwrap()
}

#[test]
fn a_region_crops_its_quadrant() {
    // 200×100 quadrants into 64×64: resized to 64×32 at (0, 16); every image pixel is the
    // quadrant's colour, so any pixel read from outside the crop would show.
    let frame = quadrants(200, 100);
    let input = size(64, 64);
    let cases = [
        (region(0, 0, 200, 100), [1.0, 0.0, 0.0]),
        (region(200, 0, 200, 100), [0.0, 1.0, 0.0]),
        (region(0, 100, 200, 100), [0.0, 0.0, 1.0]),
        (region(200, 100, 200, 100), [1.0, 1.0, 1.0]),
    ];
    for (area, colour) in cases {
        let tensor = letterboxed(&frame, area, input, ElementType::F32);
        for (c, expected) in colour.into_iter().enumerate() {
            for y in 16..48 {
                for x in 0..64 {
                    assert_eq!(
                        at(&tensor, c, y, x),
                        expected,
                        "{area:?} channel {c} ({x}, {y})"
                    );
                }
            }
            assert_eq!(at(&tensor, c, 15, 0), PAD);
            assert_eq!(at(&tensor, c, 48, 63), PAD);
        }
    }
}

/// A frame whose every pixel differs from its neighbours.
fn textured(w: u32, h: u32) -> RgbFrame {
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            pixels.extend_from_slice(&[(x * 7 + y) as u8, (y * 5 + x * 3) as u8, (x ^ y) as u8]);
        }
    }
    RgbFrame::new(size(w, h), pixels).unwrap()
}

/// The region copied out into a frame of its own.
fn copied(frame: &RgbFrame, area: Region) -> RgbFrame {
    let stride = frame.size().width() as usize * 3;
    let mut pixels = Vec::new();
    for y in area.y..area.y + area.height {
        let start = y as usize * stride + area.x as usize * 3;
        pixels.extend_from_slice(&frame.pixels()[start..start + area.width as usize * 3]);
    }
    RgbFrame::new(size(area.width, area.height), pixels).unwrap()
}

#[test]
fn planned_tiles_equal_letterboxing_a_copy_of_the_tile() {
    // 400×300 into 64×64 at altitude 50 m: tiles of 204×204 (resized), overlapping.
    let frame = textured(400, 300);
    let input = size(64, 64);
    let patch = domain::settings::SettingsPatch::from_json_str(r#"{"altitude": 50}"#).unwrap();
    let settings = RecognitionSettings::default().merged(&patch);
    let plan = plan_views(frame.size(), input, &settings, ViewRules::default());
    assert!(plan.is_tiled() && plan.views().len() > 2, "{plan:?}");
    let pre = LetterboxPreprocessor::new();
    for view in plan.views() {
        let tile = view.tile();
        assert!(tile.width() > 64, "tiles must be resized for this test");
        let area = region(tile.x(), tile.y(), tile.width(), tile.height());
        let mut tensor = InputTensor::new(ElementType::F32, input, 1);
        pre.fill(&frame, view, tensor.slot(0).unwrap()).unwrap();
        let own = copied(&frame, area);
        let expected = letterboxed(&own, whole(&own), input, ElementType::F32);
        assert_eq!(tensor.as_f32(), expected.as_f32(), "{tile:?}");
    }
}

#[test]
fn tiles_of_the_input_size_are_copied_exactly() {
    // 200×100 into 64×64 at the default altitude: 64×64 tiles, no resize at all.
    let frame = textured(200, 100);
    let input = size(64, 64);
    let plan = plan_views(
        frame.size(),
        input,
        &RecognitionSettings::default(),
        ViewRules::default(),
    );
    assert!(plan.is_tiled());
    let mut tensor = InputTensor::new(ElementType::F32, input, plan.views().len());
    let pre = LetterboxPreprocessor::new();
    for (index, view) in plan.views().iter().enumerate() {
        pre.fill(&frame, view, tensor.slot(index).unwrap()).unwrap();
    }
    let data = tensor.as_f32().unwrap();
    let item = 3 * 64 * 64;
    // The tiles; the full-frame pass after them is the frame shrunk, not a copy.
    assert_eq!(plan.views().len(), plan.tiles().len() + 1);
    for (index, view) in plan.tiles().iter().enumerate() {
        let tile = view.tile();
        assert_eq!(tile.size(), input);
        for (y, x) in [(0, 0), (31, 17), (63, 63)] {
            let px = (tile.y() as usize + y) * 200 * 3 + (tile.x() as usize + x) * 3;
            for c in 0..3 {
                let value = data[index * item + c * 64 * 64 + y * 64 + x];
                assert_eq!(value, f32::from(frame.pixels()[px + c]) / 255.0, "{tile:?}");
            }
        }
    }
}

#[test]
fn a_region_outside_the_frame_is_an_error() {
    let frame = quadrants(50, 50);
    let input = size(64, 64);
    let letterbox = Letterbox::fit(size(100, 50), input);
    let mut tensor = InputTensor::new(ElementType::F32, input, 1);
    let result = LetterboxPreprocessor::new().fill_region(
        &frame,
        region(50, 0, 100, 50),
        &letterbox,
        tensor.slot(0).unwrap(),
    );
    assert!(result.is_err());
}

#[test]
fn a_slot_of_the_wrong_size_is_an_error() {
    let frame = quadrants(50, 50);
    let letterbox = Letterbox::fit(frame.size(), size(64, 64));
    let mut tensor = InputTensor::new(ElementType::F32, size(32, 32), 1);
    let result = LetterboxPreprocessor::new().fill_region(
        &frame,
        whole(&frame),
        &letterbox,
        tensor.slot(0).unwrap(),
    );
    assert!(result.is_err());
}
