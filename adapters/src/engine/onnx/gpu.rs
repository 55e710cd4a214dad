//! ONNX Runtime on an NVIDIA GPU: the CUDA session (the `cuda` engine, and the fallback
//! that serves while TensorRT builds), and TensorRT engines through the TensorRT
//! execution provider (spec A4).
//!
//! An "engine file" here is ONNX Runtime's *EP context model* with the serialized
//! TensorRT engine embedded (`trt_dump_ep_context_model`, embed mode 1): one file that
//! ONNX Runtime's TensorRT provider loads without the original model and without
//! rebuilding. It is not a bare TensorRT plan (`trtexec --saveEngine`): only ONNX Runtime
//! with the TensorRT provider reads it, and like any TensorRT engine it is tied to the
//! GPU (hence the name) and the TensorRT version.
//!
//! Every provider is registered with `error_on_failure`: `ort` would otherwise fall back to
//! the CPU silently when the GPU library, CUDA, cuDNN or TensorRT is missing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ort::ep::{self, ExecutionProviderDispatch};
use ports::{Conversion, EngineError, EngineFactory, InferenceEngine, ModelArtifact, Precision};

use super::{OnnxEngineConfig, OnnxEngineFactory};

/// Settings of the GPU engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuEngineConfig {
    /// The library (the GPU build of ONNX Runtime), layout, batch and session settings.
    pub onnx: OnnxEngineConfig,
    /// CUDA device ordinal.
    pub device_id: u32,
    /// TensorRT's builder workspace limit, bytes.
    pub workspace_bytes: u64,
    /// Built engines, TensorRT's engine and timing caches and calibration tables: a local
    /// volume, so a restart on the same GPU does not rebuild.
    pub cache_dir: PathBuf,
}

/// Builds CUDA sessions, TensorRT engines, and loads built ones.
#[derive(Debug, Clone)]
pub struct GpuEngineFactory {
    config: GpuEngineConfig,
    base: OnnxEngineFactory,
}

impl GpuEngineFactory {
    pub fn new(config: GpuEngineConfig) -> Self {
        let base = OnnxEngineFactory::new(config.onnx.clone());
        Self { config, base }
    }

    /// The CUDA provider, failing loudly.
    fn cuda(&self) -> ExecutionProviderDispatch {
        ep::CUDA::default()
            .with_device_id(self.config.device_id as i32)
            .build()
            .error_on_failure()
    }

    /// The TensorRT provider with the engine and timing caches on the local volume; with
    /// `build`, also the precision and where to write the engine file.
    fn tensorrt(&self, build: Option<(&Conversion, &Path)>) -> ExecutionProviderDispatch {
        let cache = self.config.cache_dir.display().to_string();
        let mut trt = ep::TensorRT::default()
            .with_device_id(self.config.device_id as i32)
            .with_max_workspace_size(
                usize::try_from(self.config.workspace_bytes).unwrap_or(usize::MAX),
            )
            .with_engine_cache(true)
            .with_engine_cache_path(&cache)
            .with_timing_cache(true)
            .with_timing_cache_path(&cache);
        if let Some((conversion, out)) = build {
            trt = trt
                .with_fp16(conversion.precision != Precision::Fp32)
                .with_int8(conversion.precision == Precision::Int8)
                .with_dump_ep_context_model(true)
                .with_ep_context_file_path(out.display())
                .with_ep_context_embed_mode(1);
            if let Some(name) = conversion.calibration.as_deref().and_then(Path::file_name) {
                trt = trt
                    .with_int8_calibration_table_name(name.to_string_lossy())
                    .with_int8_use_native_calibration_table(true);
            }
        }
        trt.build().error_on_failure()
    }

    /// A failure to create a GPU session, with what a person can do about it.
    fn backend(&self, what: &str, error: EngineError) -> EngineError {
        match error {
            EngineError::Runtime(reason) => EngineError::Runtime(reason),
            // Only a run rejects a batch; passed on as it is.
            rejected @ EngineError::BatchRejected { .. } => rejected,
            EngineError::Model(reason)
            | EngineError::Inference(reason)
            | EngineError::Backend(reason) => EngineError::Backend(format!(
                "the {what} session could not be created: {reason}. The GPU engine needs the GPU \
                     build of ONNX Runtime ({} with libonnxruntime_providers_cuda.so{} beside it, \
                     from the onnxruntime-gpu wheel), CUDA 12 and cuDNN 9{} on the library path",
                self.config.onnx.library.display(),
                if what == "CUDA" {
                    ""
                } else {
                    " and libonnxruntime_providers_tensorrt.so"
                },
                if what == "CUDA" {
                    ""
                } else {
                    " and TensorRT 10"
                },
            )),
        }
    }
}

impl EngineFactory for GpuEngineFactory {
    /// The CUDA session: the `cuda` engine, and the fallback while TensorRT builds.
    fn build(&self, model: &ModelArtifact) -> Result<Arc<dyn InferenceEngine>, EngineError> {
        let engine = self
            .base
            .build_with(model, &[self.cuda()])
            .map_err(|e| self.backend("CUDA", e))?;
        Ok(Arc::new(engine.with_type(ports::EngineKind::Cuda)))
    }

    fn load_engine(&self, engine: &ModelArtifact) -> Result<Arc<dyn InferenceEngine>, EngineError> {
        let loaded = self
            .base
            .build_with(engine, &[self.tensorrt(None), self.cuda()])
            .map_err(|e| self.backend("TensorRT", e))?;
        Ok(Arc::new(loaded.with_type(ports::EngineKind::Tensorrt)))
    }

    fn convert(
        &self,
        model: &ModelArtifact,
        conversion: &Conversion,
    ) -> Result<ModelArtifact, EngineError> {
        let cache = &self.config.cache_dir;
        let io = |what: &str, e: std::io::Error| {
            EngineError::Backend(format!(
                "{what} in the engine cache {}: {e}",
                cache.display()
            ))
        };
        std::fs::create_dir_all(cache).map_err(|e| io("cannot create a folder", e))?;
        if let Some(calibration) = &conversion.calibration {
            // TensorRT's provider reads the calibration table from its cache folder.
            let name = calibration.file_name().unwrap_or_default();
            std::fs::copy(calibration, cache.join(name))
                .map_err(|e| io("cannot place the calibration cache", e))?;
        }
        let out = cache.join(&conversion.engine_name);
        match std::fs::remove_file(&out) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("cannot replace the old engine", e)),
        }
        // Creating the session builds the engine (static shapes) and writes the file.
        let session = self
            .base
            .build_with(
                model,
                &[self.tensorrt(Some((conversion, &out))), self.cuda()],
            )
            .map_err(|e| self.backend("TensorRT", e))?;
        drop(session);
        match std::fs::metadata(&out) {
            Ok(meta) if meta.len() > 0 => Ok(ModelArtifact {
                name: conversion.engine_name.clone(),
                path: out,
            }),
            _ => Err(EngineError::Backend(format!(
                "TensorRT wrote no engine to {} (a model with dynamic input shapes needs \
                 profile shapes)",
                out.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(library: &str) -> GpuEngineConfig {
        GpuEngineConfig {
            onnx: OnnxEngineConfig {
                library: library.into(),
                ..OnnxEngineConfig::default()
            },
            device_id: 0,
            workspace_bytes: 1 << 30,
            cache_dir: std::env::temp_dir().join("detections-gpu-test"),
        }
    }

    fn model() -> ModelArtifact {
        ModelArtifact {
            name: "azaion.onnx".into(),
            path: "/nonexistent/azaion.onnx".into(),
        }
    }

    #[test]
    fn a_missing_library_names_the_path() {
        let factory = GpuEngineFactory::new(config("/nonexistent/libonnxruntime.so.1.32.0"));
        let error = factory
            .build(&model())
            .err()
            .expect("no library")
            .to_string();
        assert!(
            error.contains("/nonexistent/libonnxruntime.so.1.32.0")
                && error.contains("cannot be read"),
            "{error}"
        );
    }

    #[test]
    fn session_failures_say_which_libraries_the_gpu_engine_needs() {
        let factory = GpuEngineFactory::new(config("/opt/ort/libonnxruntime.so"));
        let error = factory
            .backend("TensorRT", EngineError::Model("provider not found".into()))
            .to_string();
        for needed in [
            "provider not found",
            "/opt/ort/libonnxruntime.so",
            "onnxruntime-gpu",
            "libonnxruntime_providers_tensorrt.so",
            "cuDNN 9",
            "TensorRT 10",
        ] {
            assert!(error.contains(needed), "{needed} missing from: {error}");
        }
        let error = factory
            .backend("CUDA", EngineError::Model("x".into()))
            .to_string();
        assert!(!error.contains("TensorRT"), "{error}");
    }
}
