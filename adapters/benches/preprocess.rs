//! Per-frame CPU cost: decoding a 1920×1080 JPEG and letterboxing it into a 640×640 f32
//! tensor (one thread), and one inference of the real model.
//!
//! `cargo bench -p adapters --bench preprocess` (assets from `cargo xtask fetch`, or
//! `TEST_ASSETS_DIR`).

use std::path::PathBuf;

use adapters::engine::onnx::{OnnxEngineConfig, OnnxEngineFactory};
use adapters::image::{ImageCodec, LetterboxPreprocessor, Region};
use criterion::{Criterion, criterion_group, criterion_main};
use domain::geometry::{Letterbox, Size};
use ports::{ElementType, FrameCodec, InferenceEngine, InputTensor, ModelArtifact, RgbFrame};

fn asset(relative: &str) -> PathBuf {
    let root = std::env::var_os("TEST_ASSETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets"));
    let path = root.join(relative);
    assert!(
        path.is_file(),
        "bench asset {} is missing: run `cargo xtask fetch`",
        path.display()
    );
    path
}

/// bus.jpg (810×1080) stretched to 1920×1080 and re-encoded: a full-HD camera frame.
fn full_hd_jpeg(codec: &ImageCodec) -> Vec<u8> {
    let bus = image::open(asset("photos/bus.jpg"))
        .expect("bus.jpg")
        .into_rgb8();
    let wide = image::imageops::resize(&bus, 1920, 1080, image::imageops::FilterType::Triangle);
    let frame = RgbFrame::new(Size::new(1920, 1080).unwrap(), wide.into_raw()).unwrap();
    codec.encode_jpeg(&frame, 90).unwrap()
}

/// Letterboxes the whole frame into slot 0.
fn letterbox(frame: &RgbFrame, tensor: &mut InputTensor) {
    let (width, height) = (frame.size().width(), frame.size().height());
    let whole = Region {
        x: 0,
        y: 0,
        width,
        height,
    };
    let letterbox = Letterbox::fit(frame.size(), tensor.size());
    LetterboxPreprocessor::new()
        .fill_region(frame, whole, &letterbox, tensor.slot(0).unwrap())
        .unwrap();
}

fn preprocess(c: &mut Criterion) {
    let codec = ImageCodec::default();
    let jpeg = full_hd_jpeg(&codec);
    let input = Size::new(640, 640).unwrap();
    let mut tensor = InputTensor::new(ElementType::F32, input, 1);
    let mut half = InputTensor::new(ElementType::F16, input, 1);
    let frame = codec.decode(&jpeg).unwrap();

    c.bench_function("decode 1920x1080 jpeg", |b| {
        b.iter(|| codec.decode(&jpeg).unwrap())
    });
    // The decoder the service used before libjpeg-turbo (zune-jpeg through `image`), side
    // by side on the same bytes.
    c.bench_function("decode 1920x1080 jpeg, image crate (zune-jpeg)", |b| {
        b.iter(|| {
            image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
                .unwrap()
                .into_rgb8()
        })
    });
    c.bench_function("letterbox 1920x1080 -> 640x640 f32", |b| {
        b.iter(|| letterbox(&frame, &mut tensor))
    });
    c.bench_function("letterbox 1920x1080 -> 640x640 f16", |b| {
        b.iter(|| letterbox(&frame, &mut half))
    });
    c.bench_function("decode + letterbox 1920x1080 jpeg -> 640x640 f32", |b| {
        b.iter(|| letterbox(&codec.decode(&jpeg).unwrap(), &mut tensor))
    });
}

fn engine(c: &mut Criterion) {
    let library = match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => asset("onnxruntime/libonnxruntime.so.1.32.0"),
    };
    let spinning = std::env::var("BENCH_INTRA_SPINNING").is_ok_and(|v| v == "1");
    let factory = OnnxEngineFactory::new(OnnxEngineConfig {
        library,
        intra_spinning: spinning,
        ..OnnxEngineConfig::default()
    });
    let model = ModelArtifact {
        name: "azaion.onnx".into(),
        path: asset("models/azaion.onnx"),
    };
    let engine = factory.build_engine(&model).expect("engine");
    let codec = ImageCodec::default();
    let frame = codec
        .decode(&std::fs::read(asset("photos/bus.jpg")).unwrap())
        .unwrap();
    let input = engine.spec().input_size;
    let mut tensor = InputTensor::new(ElementType::F32, input, 1);
    letterbox(&frame, &mut tensor);
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    group.bench_function(
        format!("infer azaion.onnx 640x640 (spinning {spinning})"),
        |b| b.iter(|| engine.infer(&tensor).unwrap()),
    );
    group.finish();
}

criterion_group!(benches, preprocess, engine);
criterion_main!(benches);
