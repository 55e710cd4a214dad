//! The ONNX Runtime CPU engine against the real model and the shipped runtime library.
//! One process, one runtime: every test here loads the same library.

mod common;

use std::path::PathBuf;

use adapters::engine::onnx::{OnnxEngineConfig, OnnxEngineFactory};
use adapters::image::{ImageCodec, LetterboxPreprocessor, Region};
use domain::geometry::{Letterbox, Size};
use domain::layout::OutputLayout;
use ports::{
    BatchSize, ElementType, EngineError, EngineFactory, FrameCodec, InputTensor, ModelArtifact,
};

fn factory() -> OnnxEngineFactory {
    OnnxEngineFactory::new(OnnxEngineConfig {
        library: common::ort_library(),
        ..OnnxEngineConfig::default()
    })
}

fn artifact(path: PathBuf) -> ModelArtifact {
    ModelArtifact {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        path,
    }
}

fn real_model() -> ModelArtifact {
    artifact(common::asset("models/azaion.onnx"))
}

#[test]
fn a_missing_library_is_a_runtime_error_naming_it() {
    let missing = PathBuf::from("/nonexistent/libonnxruntime.so.1.32.0");
    let factory = OnnxEngineFactory::new(OnnxEngineConfig {
        library: missing.clone(),
        ..OnnxEngineConfig::default()
    });
    match factory.build(&real_model()) {
        Err(EngineError::Runtime(message)) => {
            assert!(message.contains(&*missing.to_string_lossy()), "{message}");
        }
        other => panic!("expected a runtime error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_file_that_is_not_a_library_is_a_runtime_error() {
    let dir = tempdir("not-a-library");
    let fake = dir.join("libonnxruntime.so");
    std::fs::write(&fake, b"not an ELF file").unwrap();
    let factory = OnnxEngineFactory::new(OnnxEngineConfig {
        library: fake.clone(),
        ..OnnxEngineConfig::default()
    });
    match factory.build(&real_model()) {
        Err(EngineError::Runtime(message)) => {
            assert!(message.contains(&*fake.to_string_lossy()), "{message}");
        }
        other => panic!("expected a runtime error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn the_real_model_spec_is_read() {
    let engine = factory().build(&real_model()).expect("engine");
    let spec = engine.spec();
    assert_eq!(spec.input_name, "images");
    assert_eq!(spec.input_size, Size::new(640, 640).unwrap());
    assert_eq!(spec.element, ElementType::F32);
    assert_eq!(spec.batch, BatchSize::Fixed(1));
    assert_eq!(spec.layout, OutputLayout::UltralyticsV8 { classes: 2 });
    assert_eq!(spec.class_count, 2);
    assert_eq!(engine.engine_type(), ports::EngineKind::Onnx);
}

#[test]
fn bus_photo_through_codec_preprocessor_and_engine() {
    let engine = factory().build(&real_model()).expect("engine");
    let bytes = std::fs::read(common::asset("photos/bus.jpg")).unwrap();
    let frame = ImageCodec::default()
        .decode(&bytes)
        .expect("bus.jpg decodes");
    let input = engine.spec().input_size;
    let (width, height) = (frame.size().width(), frame.size().height());
    let whole = Region {
        x: 0,
        y: 0,
        width,
        height,
    };
    let mut tensor = InputTensor::new(ElementType::F32, input, 1);
    LetterboxPreprocessor::new()
        .fill_region(
            &frame,
            whole,
            &Letterbox::fit(frame.size(), input),
            tensor.slot(0).unwrap(),
        )
        .unwrap();
    let output = engine.infer(&tensor).expect("inference");
    assert_eq!(output.dims, vec![1, 6, 8400]);
    assert_eq!(output.data.len(), 6 * 8400);
    // Rows 4 and 5 are the class scores; the photo shows standing people.
    let best = output.data[4 * 8400..]
        .iter()
        .copied()
        .fold(0.0f32, f32::max);
    assert!(best > 0.5, "best class score {best}");
}

#[test]
fn a_batch_the_model_cannot_take_is_an_inference_error() {
    let engine = factory().build(&real_model()).expect("engine");
    let tensor = InputTensor::new(ElementType::F32, engine.spec().input_size, 2);
    assert!(matches!(
        engine.infer(&tensor),
        Err(EngineError::Inference(_))
    ));
    let tensor = InputTensor::new(ElementType::F16, engine.spec().input_size, 1);
    assert!(matches!(
        engine.infer(&tensor),
        Err(EngineError::Inference(_))
    ));
}

#[test]
fn a_garbage_model_is_a_model_error() {
    let dir = tempdir("garbage-model");
    let path = dir.join("garbage.onnx");
    std::fs::write(&path, b"this is not a protobuf").unwrap();
    match factory().build(&artifact(path)) {
        Err(EngineError::Model(message)) => assert!(message.contains("garbage.onnx"), "{message}"),
        other => panic!("expected a model error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_missing_model_is_a_model_error() {
    let path = PathBuf::from("/nonexistent/model.onnx");
    match factory().build(&artifact(path)) {
        Err(EngineError::Model(message)) => {
            assert!(message.contains("/nonexistent/model.onnx"), "{message}")
        }
        other => panic!("expected a model error, got {:?}", other.map(|_| ())),
    }
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adapters-onnx-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
