//! Letterboxing views of frames into tensor slots (docs/pipeline.md §2).

use adapters::image::LetterboxPreprocessor;
use domain::geometry::{Letterbox, Size};
use domain::tiling::{Tile, View};
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

fn view(tile: Tile, input: Size) -> View {
    View {
        letterbox: Letterbox::fit(size(tile.width(), tile.height()), input),
        tile,
    }
}

fn whole(frame: &RgbFrame, input: Size) -> View {
    view(
        Tile::new(0, 0, frame.size().width(), frame.size().height()),
        input,
    )
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
    let view = whole(&frame, input);
    // 1920×1080 → 640×360, 140 rows of padding above and below.
    assert_eq!(view.letterbox.resized(), size(640, 360));
    assert_eq!((view.letterbox.left(), view.letterbox.top()), (0, 140));
    let mut tensor = InputTensor::new(element, input, 1);
    LetterboxPreprocessor::new()
        .fill(&frame, &view, tensor.slot(0).unwrap())
        .unwrap();
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
    let view = whole(&frame, input);
    assert_eq!(view.letterbox.resized(), size(320, 640));
    let left = view.letterbox.left() as usize;
    assert_eq!(left, 160);
    let mut tensor = InputTensor::new(ElementType::F32, input, 1);
    LetterboxPreprocessor::new()
        .fill(&frame, &view, tensor.slot(0).unwrap())
        .unwrap();
    for y in [0, 320, 639] {
        assert_eq!(at(&tensor, 0, y, left - 1), PAD);
        assert_eq!(at(&tensor, 0, y, left), 10.0 / 255.0);
        assert_eq!(at(&tensor, 2, y, left + 319), 30.0 / 255.0);
        assert_eq!(at(&tensor, 2, y, left + 320), PAD);
    }
}

/// 200×100 frame: red top-left, green top-right, blue bottom-left, white bottom-right.
fn quadrants() -> RgbFrame {
    let (w, h) = (200u32, 100u32);
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            pixels.extend_from_slice(match (x < 100, y < 50) {
                (true, true) => &[255, 0, 0],
                (false, true) => &[0, 255, 0],
                (true, false) => &[0, 0, 255],
                (false, false) => &[255, 255, 255],
            });
        }
    }
    RgbFrame::new(size(w, h), pixels).unwrap()
}

fn centre_of_tile(tile: Tile) -> [f32; 3] {
    let frame = quadrants();
    let input = size(64, 64);
    let mut tensor = InputTensor::new(ElementType::F32, input, 1);
    LetterboxPreprocessor::new()
        .fill(&frame, &view(tile, input), tensor.slot(0).unwrap())
        .unwrap();
    [0, 1, 2].map(|c| at(&tensor, c, 32, 32))
}

#[test]
fn a_tile_view_crops_its_region() {
    assert_eq!(centre_of_tile(Tile::new(0, 0, 100, 50)), [1.0, 0.0, 0.0]);
    assert_eq!(centre_of_tile(Tile::new(100, 0, 100, 50)), [0.0, 1.0, 0.0]);
    assert_eq!(centre_of_tile(Tile::new(0, 50, 100, 50)), [0.0, 0.0, 1.0]);
    assert_eq!(centre_of_tile(Tile::new(100, 50, 100, 50)), [1.0, 1.0, 1.0]);
}

#[test]
fn a_tile_of_the_input_size_is_copied_exactly() {
    // No resize: the tile's pixels land in the tensor unchanged.
    let frame = quadrants();
    let input = size(100, 50);
    let tile = Tile::new(100, 50, 100, 50);
    let mut tensor = InputTensor::new(ElementType::F32, input, 1);
    LetterboxPreprocessor::new()
        .fill(&frame, &view(tile, input), tensor.slot(0).unwrap())
        .unwrap();
    assert!(tensor.as_f32().unwrap().iter().all(|&v| v == 1.0));
}

#[test]
fn every_slot_of_a_batch_is_written() {
    let frame = quadrants();
    let input = size(64, 64);
    let mut tensor = InputTensor::new(ElementType::F32, input, 2);
    let pre = LetterboxPreprocessor::new();
    pre.fill(
        &frame,
        &view(Tile::new(0, 0, 100, 50), input),
        tensor.slot(0).unwrap(),
    )
    .unwrap();
    pre.fill(
        &frame,
        &view(Tile::new(100, 0, 100, 50), input),
        tensor.slot(1).unwrap(),
    )
    .unwrap();
    let data = tensor.as_f32().unwrap();
    let item = 3 * 64 * 64;
    assert_eq!(data[32 * 64 + 32], 1.0); // slot 0, red
    assert_eq!(data[item + 64 * 64 + 32 * 64 + 32], 1.0); // slot 1, green
}

#[test]
fn a_tile_outside_the_frame_is_an_error() {
    let frame = quadrants();
    let input = size(64, 64);
    let mut tensor = InputTensor::new(ElementType::F32, input, 1);
    let result = LetterboxPreprocessor::new().fill(
        &frame,
        &view(Tile::new(150, 0, 100, 50), input),
        tensor.slot(0).unwrap(),
    );
    assert!(result.is_err());
}

#[test]
fn a_slot_of_the_wrong_size_is_an_error() {
    let frame = quadrants();
    let mut tensor = InputTensor::new(ElementType::F32, size(32, 32), 1);
    let result = LetterboxPreprocessor::new().fill(
        &frame,
        &whole(&frame, size(64, 64)),
        tensor.slot(0).unwrap(),
    );
    assert!(result.is_err());
}
