//! Writes the letterboxed f32 tensor of an image's whole frame to a raw file, for
//! comparing preprocessing with the Python reference.
use adapters::image::{ImageCodec, LetterboxPreprocessor, Region};
use domain::geometry::{Letterbox, Size};
use ports::{ElementType, FrameCodec, InputTensor};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bytes = std::fs::read(&args[1]).unwrap();
    let frame = ImageCodec::default().decode(&bytes).unwrap();
    if let Some(raw) = args.get(3) {
        std::fs::write(raw, frame.pixels()).unwrap();
    }
    let input = Size::new(640, 640).unwrap();
    let lb = Letterbox::fit(frame.size(), input);
    let mut tensor = InputTensor::new(ElementType::F32, input, 1);
    let region = Region {
        x: 0,
        y: 0,
        width: frame.size().width(),
        height: frame.size().height(),
    };
    LetterboxPreprocessor::new()
        .fill_region(&frame, region, &lb, tensor.slot(0).unwrap())
        .unwrap();
    let data: Vec<u8> = tensor
        .as_f32()
        .unwrap()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(&args[2], data).unwrap();
}
