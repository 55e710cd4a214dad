//! The ONNX engine on tiny in-test models: float16, dynamic dimensions, metadata, overrides
//! and refused element types. The models echo their input, so the values are checkable.

mod common;

use std::path::PathBuf;

use adapters::engine::onnx::{OnnxEngine, OnnxEngineConfig, OnnxEngineFactory};
use common::onnx_model::{Dim, FLOAT, FLOAT16, INT8, planes_model};
use domain::geometry::Size;
use domain::layout::{LayoutKind, OutputLayout};
use half::f16;
use ports::{BatchSize, ElementType, EngineError, InferenceEngine, InputTensor, ModelArtifact};

const NAMES: (&str, &str) = ("names", "{0: 'person', 1: 'car'}");

fn build(bytes: &[u8], name: &str, layout: Option<LayoutKind>) -> Result<OnnxEngine, EngineError> {
    build_with(bytes, name, layout, 1)
}

fn build_with(
    bytes: &[u8],
    name: &str,
    layout: Option<LayoutKind>,
    sessions: usize,
) -> Result<OnnxEngine, EngineError> {
    let dir = std::env::temp_dir().join(format!("adapters-fixtures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    OnnxEngineFactory::new(OnnxEngineConfig {
        library: common::ort_library(),
        layout,
        max_batch: Some(4),
        sessions,
        ..OnnxEngineConfig::default()
    })
    .build_engine(&ModelArtifact {
        name: name.to_owned(),
        path,
    })
}

fn dynamic() -> [Dim; 4] {
    [
        Dim::Dynamic("batch"),
        Dim::Fixed(3),
        Dim::Dynamic("height"),
        Dim::Dynamic("width"),
    ]
}

#[test]
fn float16_dynamic_model_with_imgsz() {
    let model = planes_model(FLOAT16, dynamic(), &[NAMES, ("imgsz", "[32, 48]")]);
    let engine = build(&model, "f16-dynamic.onnx", None).expect("engine");
    let spec = engine.spec();
    assert_eq!(
        spec.input_size,
        Size::new(48, 32).unwrap(),
        "imgsz is [height, width]"
    );
    assert_eq!(spec.element, ElementType::F16);
    assert_eq!(spec.batch, BatchSize::Dynamic { max: 4 });
    assert_eq!(spec.layout, OutputLayout::UltralyticsV8 { classes: 2 });
    assert_eq!(spec.class_count, 2);

    // Two items: every value of item i is (i + 1) / 8, exactly representable in f16.
    let mut tensor = InputTensor::new(ElementType::F16, spec.input_size, 3);
    for item in 0..2 {
        let Some(ports::TensorSlot::F16(slot)) = tensor.slot(item) else {
            panic!("f16 slot")
        };
        slot.fill(f16::from_f32((item as f32 + 1.0) / 8.0));
    }
    tensor.set_batch(2);
    let output = engine.infer(&tensor).expect("inference");
    assert_eq!(output.dims, vec![2, 6, 32 * 48]);
    let per_item = 6 * 32 * 48;
    assert!(output.data[..per_item].iter().all(|&v| v == 0.125));
    assert!(output.data[per_item..].iter().all(|&v| v == 0.25));
}

#[test]
fn float32_static_model_without_metadata() {
    let dims = [Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(16), Dim::Fixed(24)];
    let engine = build(&planes_model(FLOAT, dims, &[]), "f32-static.onnx", None).expect("engine");
    let spec = engine.spec();
    assert_eq!(spec.input_size, Size::new(24, 16).unwrap());
    assert_eq!(spec.element, ElementType::F32);
    assert_eq!(spec.batch, BatchSize::Fixed(1));
    let mut tensor = InputTensor::new(ElementType::F32, spec.input_size, 1);
    let Some(ports::TensorSlot::F32(slot)) = tensor.slot(0) else {
        panic!("f32 slot")
    };
    for (i, v) in slot.iter_mut().enumerate() {
        *v = i as f32;
    }
    let output = engine.infer(&tensor).expect("inference");
    assert_eq!(output.dims, vec![1, 6, 16 * 24]);
    // Rows 0–2 and 3–5 are the three planes in order.
    let plane = 16 * 24;
    assert_eq!(output.data[..3 * plane], output.data[3 * plane..]);
    assert_eq!(output.data[plane + 5], (plane + 5) as f32);
}

#[test]
fn a_dynamic_model_without_imgsz_takes_1280() {
    let model = planes_model(FLOAT, dynamic(), &[NAMES]);
    let engine = build(&model, "no-imgsz.onnx", None).expect("engine");
    assert_eq!(engine.spec().input_size, Size::new(1280, 1280).unwrap());
}

#[test]
fn the_layout_override_wins() {
    let model = planes_model(FLOAT, dynamic(), &[NAMES]);
    let engine = build(&model, "override.onnx", Some(LayoutKind::YoloV5)).expect("engine");
    // The class dimension is dynamic in YOLOv5's reading: the names give the count.
    assert_eq!(engine.spec().layout, OutputLayout::YoloV5 { classes: 2 });
    // (An unknown layout name cannot get this far: the configuration refuses it.)
}

#[test]
fn an_int8_input_is_refused_by_name() {
    let model = planes_model(INT8, dynamic(), &[NAMES]);
    match build(&model, "int8.onnx", None) {
        Err(EngineError::Model(message)) => {
            assert!(
                message.contains("Int8") && message.contains("int8.onnx"),
                "{message}"
            );
        }
        other => panic!("expected a model error, got {other:?}"),
    }
}

#[test]
fn concurrent_calls_share_the_session_pool() {
    let model = planes_model(FLOAT, dynamic(), &[NAMES, ("imgsz", "[64, 64]")]);
    let engine = build_with(&model, "pool.onnx", None, 2).expect("engine");
    std::thread::scope(|scope| {
        for worker in 0..4u8 {
            let engine = &engine;
            scope.spawn(move || {
                let value = f32::from(worker) / 4.0;
                let mut tensor = InputTensor::new(ElementType::F32, engine.spec().input_size, 1);
                let Some(ports::TensorSlot::F32(slot)) = tensor.slot(0) else {
                    panic!("slot")
                };
                slot.fill(value);
                for _ in 0..20 {
                    let output = engine.infer(&tensor).expect("inference");
                    // Each caller gets its own input back: no mix-up between sessions.
                    assert!(output.data.iter().all(|&v| v == value));
                }
            });
        }
    });
}
