//! The ONNX engine on the synthetic fixtures of `cargo xtask fetch`
//! (`assets/fixtures/manifest.json`): spec read off each model, raw outputs exact.

mod common;

use adapters::engine::onnx::{DEFAULT_MAX_BATCH, OnnxEngineConfig, OnnxEngineFactory};
use domain::geometry::Size;
use ports::{BatchSize, ElementType, EngineError, InferenceEngine, InputTensor, ModelArtifact};
use serde_json::Value;

/// The largest batch a dynamic model is run at here (smaller than the engine's cap).
const TEST_BATCH: usize = 2;

fn manifest() -> Value {
    let path = common::asset("fixtures/manifest.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn factory() -> OnnxEngineFactory {
    factory_with(None)
}

fn factory_with(max_batch: Option<usize>) -> OnnxEngineFactory {
    OnnxEngineFactory::new(OnnxEngineConfig {
        library: common::ort_library(),
        max_batch,
        ..OnnxEngineConfig::default()
    })
}

fn ints(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

/// How many class names the metadata gives, counting the `names` dict's entries.
fn names_count(model: &Value) -> Option<usize> {
    let names = model["metadata"]["names"].as_str()?;
    Some(names.matches(':').count())
}

#[test]
fn every_fixture_model() {
    let manifest = manifest();
    let models = manifest["models"].as_array().unwrap();
    assert!(!models.is_empty());
    for model in models {
        let file = model["file"].as_str().unwrap();
        let artifact = ModelArtifact {
            name: file.to_owned(),
            path: common::asset(&format!("fixtures/{file}")),
        };
        let classes = model["num_classes"].as_u64().unwrap() as usize;
        let built = factory().build_engine(&artifact);
        if names_count(model).is_some_and(|n| n != classes) {
            // The output scores more classes than the model names: unusable.
            assert!(
                matches!(built, Err(EngineError::Model(_))),
                "{file}: {:?}",
                built.map(|_| ())
            );
            continue;
        }
        let engine = built.unwrap_or_else(|e| panic!("{file}: {e}"));
        check_spec(&engine, model, file);
        check_output(&engine, model, file);
    }
}

fn check_spec(engine: &dyn InferenceEngine, model: &Value, file: &str) {
    let spec = engine.spec();
    let shape = ints(&model["input_shape"]);
    assert_eq!(
        spec.input_name,
        model["input_name"].as_str().unwrap(),
        "{file}"
    );
    let element = match model["input_type"].as_str().unwrap() {
        "float16" => ElementType::F16,
        _ => ElementType::F32,
    };
    assert_eq!(spec.element, element, "{file}");
    // The input's fixed batch, else the output's, else dynamic (adapters engine/onnx/batch.rs).
    let output_batch = ints(&model["output_shape"])[0];
    let batch = if shape[0] > 0 {
        BatchSize::Fixed(shape[0] as usize)
    } else if output_batch > 0 {
        BatchSize::Fixed(output_batch as usize)
    } else {
        BatchSize::Dynamic {
            max: DEFAULT_MAX_BATCH,
        }
    };
    assert_eq!(spec.batch, batch, "{file}");
    let side = |d: i64| if d > 0 { d as u32 } else { 1280 };
    assert_eq!(
        spec.input_size,
        Size::new(side(shape[3]), side(shape[2])).unwrap(),
        "{file}"
    );
    assert_eq!(
        spec.layout.name(),
        model["layout"].as_str().unwrap(),
        "{file}"
    );
    assert_eq!(
        spec.class_count,
        model["num_classes"].as_u64().unwrap() as usize,
        "{file}"
    );
}

fn check_output(engine: &dyn InferenceEngine, model: &Value, file: &str) {
    let spec = engine.spec();
    let batch = match spec.batch {
        BatchSize::Fixed(n) => n,
        BatchSize::Dynamic { max } => max.min(TEST_BATCH),
    };
    let mut tensor = InputTensor::new(spec.element, spec.input_size, batch);
    tensor.set_batch(batch);
    let output = engine
        .infer(&tensor)
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut dims = ints(&model["output_shape"]);
    dims[0] = batch as i64;
    let expected_dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    assert_eq!(output.dims, expected_dims, "{file}");
    // `raw` holds one row per candidate; Ultralytics stores the transpose.
    let transposed = model["layout"] == "ultralytics";
    let rows = model["raw"].as_array().unwrap();
    let (d1, d2) = (expected_dims[1], expected_dims[2]);
    for item in 0..batch {
        for (i, row) in rows.iter().enumerate() {
            for (j, value) in row.as_array().unwrap().iter().enumerate() {
                let index = if transposed { j * d2 + i } else { i * d2 + j };
                let got = output.data[item * d1 * d2 + index];
                assert_eq!(
                    f64::from(got),
                    value.as_f64().unwrap(),
                    "{file} item {item} [{i}][{j}]"
                );
            }
        }
    }
}

/// The end-to-end export that declares a dynamic input batch but runs only at batch 1:
/// derived as batch 1; forced to 2 by `max_batch`, ONNX Runtime's shape error comes back
/// as a rejected batch (the core's cue to send one view per call), not a failed frame.
#[test]
fn a_model_that_runs_only_at_batch_one() {
    let artifact = ModelArtifact {
        name: "e2e_batch1_only.onnx".into(),
        path: common::asset("fixtures/e2e_batch1_only.onnx"),
    };
    let derived = factory().build_engine(&artifact).unwrap();
    assert_eq!(derived.spec().batch, BatchSize::Fixed(1));

    let forced = factory_with(Some(4)).build_engine(&artifact).unwrap();
    let spec = forced.spec();
    assert_eq!(spec.batch, BatchSize::Dynamic { max: 4 });
    let mut tensor = InputTensor::new(spec.element, spec.input_size, 2);
    tensor.set_batch(2);
    match forced.infer(&tensor) {
        Err(EngineError::BatchRejected { batch: 2, reason }) => {
            assert!(
                reason.contains("Dimension of input 0 must be 1"),
                "{reason}"
            );
        }
        other => panic!("expected a rejected batch, got {other:?}"),
    }
    tensor.set_batch(1);
    let output = forced.infer(&tensor).expect("batch 1 runs");
    assert_eq!(output.dims, vec![1, 300, 6]);
}
