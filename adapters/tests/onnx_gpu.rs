//! The GPU engine on a machine without a GPU and with the CPU build of ONNX Runtime:
//! every GPU session must fail loudly with what to install, never run on the CPU.

mod common;

use adapters::engine::onnx::{GpuEngineConfig, GpuEngineFactory, OnnxEngineConfig};
use ports::gpu::GpuInfo;
use ports::{Conversion, EngineError, EngineFactory, ModelArtifact, Precision};

fn factory(cache: &std::path::Path) -> GpuEngineFactory {
    GpuEngineFactory::new(GpuEngineConfig {
        onnx: OnnxEngineConfig {
            library: common::ort_library(),
            ..OnnxEngineConfig::default()
        },
        device_id: 0,
        workspace_bytes: 1 << 30,
        cache_dir: cache.to_path_buf(),
    })
}

fn model() -> ModelArtifact {
    ModelArtifact {
        name: "tiny_v8_640.onnx".into(),
        path: common::asset("fixtures/tiny_v8_640.onnx"),
    }
}

fn cache() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("detections-gpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_loud(error: EngineError, provider: &str) {
    let EngineError::Backend(reason) = &error else {
        panic!("expected a backend error, got {error:?}");
    };
    assert!(
        reason.contains(&format!("the {provider} session could not be created"))
            && reason.contains("onnxruntime-gpu"),
        "{reason}"
    );
}

#[test]
fn cuda_on_the_cpu_build_fails_loudly() {
    let error = factory(&cache())
        .build(&model())
        .err()
        .expect("no CUDA here");
    assert_loud(error, "CUDA");
}

#[test]
fn tensorrt_on_the_cpu_build_fails_loudly_and_writes_nothing() {
    let cache = cache();
    let gpu = GpuInfo {
        name: "NVIDIA H200".into(),
        cc_major: 9,
        cc_minor: 0,
        sm_count: 132,
    };
    let conversion = Conversion {
        engine_name: gpu.engine_name("tiny_v8_640.onnx", Precision::Fp16),
        precision: Precision::Fp16,
        calibration: None,
    };
    assert_eq!(conversion.engine_name, "tiny_v8_640.cc_9.0_sm_132.engine");
    let factory = factory(&cache);
    let error = factory
        .convert(&model(), &conversion)
        .expect_err("no TensorRT here");
    assert_loud(error, "TensorRT");
    assert!(!cache.join(&conversion.engine_name).exists());
    let error = factory
        .load_engine(&model())
        .err()
        .expect("no TensorRT here");
    assert_loud(error, "TensorRT");
}
