//! The GPU start-up of spec A4: a pre-built TensorRT engine for this GPU if one exists;
//! otherwise a fallback session serves while the engine is built, shared and switched to.
//!
//! Transitions (all legal in `domain::availability`):
//! - engine found: `Downloading → Enabled`;
//! - built: `Downloading → Converting` (fallback serving) `→ Uploading → Enabled`;
//! - upload fails: `… → Uploading → Warning`; conversion fails: `Converting → Warning`;
//! - no GPU: `Downloading → Error`, or with a CPU fallback allowed
//!   `Downloading → Converting → Warning`.

use std::sync::Arc;

use domain::availability::{Availability, Reason};
use ports::gpu::calibration_cache_name;
use ports::{
    Conversion, EngineError, EngineFactory, GpuInfo, GpuUnavailable, InferenceEngine,
    ModelArtifact, ModelSourceError, Precision,
};

use super::failure::{BuildFailure, GpuUnusable, StartFailure};
use super::{EngineManager, GpuSetup};

impl EngineManager {
    fn gpu_setup(&self) -> &GpuSetup {
        self.gpu.as_ref().expect("called on the GPU path only")
    }

    pub(super) async fn start_gpu(self: &Arc<Self>) -> Result<(), StartFailure> {
        let gpu = self.gpu_setup();
        let probe = Arc::clone(&gpu.probe);
        let info = match blocking(move || probe.probe()).await? {
            Ok(info) => info,
            Err(unavailable) => return self.serve_on_cpu(unavailable).await,
        };
        tracing::info!(
            gpu = %info.name,
            compute_capability = format!("{}.{}", info.cc_major, info.cc_minor),
            multiprocessors = info.sm_count,
            "GPU found"
        );
        if gpu.tensorrt && self.start_from_built_engine(&info).await {
            return Ok(());
        }

        let name = self.options.model_name.clone();
        tracing::info!(model = %name, source = %self.source.describe(), "downloading model");
        let model = self
            .source
            .load(&name)
            .await
            .map_err(|source| StartFailure::Model {
                model: name.clone(),
                source,
            })?;
        self.move_to(Availability::Converting);
        let (fallback, note) = self.fallback_session(&model).await?;
        let fallback_type = self.install(fallback);
        tracing::info!(engine = %fallback_type, "serving from the fallback session");
        if !gpu.tensorrt {
            self.move_to(match note {
                None => Availability::Enabled,
                Some(note) => Availability::Warning(Reason::new(note)),
            });
            return Ok(());
        }

        let conversion = self.conversion(&info).await;
        tracing::info!(
            engine = %conversion.engine_name,
            precision = ?conversion.precision,
            "building the TensorRT engine"
        );
        let factory = Arc::clone(&self.factory);
        let source_model = model.clone();
        let plan = conversion.clone();
        let converted = blocking(move || factory.convert(&source_model, &plan))
            .await
            .and_then(|built| built.map_err(BuildFailure::from));
        let built = match converted {
            Ok(built) => built,
            Err(reason) => {
                self.keep_serving(format!(
                    "building the TensorRT engine {} failed: {reason}; serving from the {fallback_type} session",
                    conversion.engine_name
                ));
                return Ok(());
            }
        };
        let to_load = built.clone();
        let engine = match self.prepare(move |f| f.load_engine(&to_load)).await {
            Ok(engine) => engine,
            Err(reason) => {
                self.keep_serving(format!(
                    "the built TensorRT engine {} cannot be used: {reason}; serving from the {fallback_type} session",
                    conversion.engine_name
                ));
                return Ok(());
            }
        };
        // The switch: calls in flight finish on the fallback, new ones get TensorRT.
        let engine_type = self.install(engine);
        tracing::info!(engine = %engine_type, "switched to the TensorRT engine");
        self.move_to(Availability::Uploading);
        match self.source.upload(&built.name, &built.path).await {
            Ok(()) => {
                self.move_to(Availability::Enabled);
                tracing::info!(engine = %built.name, "TensorRT engine shared and enabled");
            }
            Err(e) => {
                let reason = format!(
                    "the TensorRT engine {} works but is not shared: upload to {} failed: {e}",
                    built.name,
                    self.source.describe()
                );
                tracing::warn!(%reason);
                self.move_to(Availability::Warning(Reason::new(reason)));
            }
        }
        Ok(())
    }

    /// Looks for this GPU's engine (INT8 first when asked for, then the plain one), in
    /// the local cache and then at the source; loads the first that works.
    async fn start_from_built_engine(self: &Arc<Self>, info: &GpuInfo) -> bool {
        let gpu = self.gpu_setup();
        let mut wanted = Vec::with_capacity(2);
        if gpu.int8 && info.supports_int8() {
            wanted.push(Precision::Int8);
        }
        wanted.push(Precision::Fp16);
        for precision in wanted {
            let name = info.engine_name(&self.options.model_name, precision);
            let Some(artifact) = self.find_engine(&name).await else {
                continue;
            };
            match self.prepare(move |f| f.load_engine(&artifact)).await {
                Ok(engine) => {
                    let engine_type = self.install_as(engine, Availability::Enabled);
                    tracing::info!(engine = %name, %engine_type, "pre-built engine enabled");
                    return true;
                }
                Err(reason) => {
                    tracing::warn!(engine = %name, %reason, "pre-built engine unusable; building another")
                }
            }
        }
        false
    }

    async fn find_engine(&self, name: &str) -> Option<ModelArtifact> {
        let gpu = self.gpu_setup();
        let local = gpu.local_engines.iter().map(|s| s.as_ref());
        for source in local.chain(std::iter::once(self.source.as_ref())) {
            match source.load(name).await {
                Ok(artifact) => {
                    tracing::info!(engine = %name, source = %source.describe(), "engine found");
                    return Some(artifact);
                }
                Err(ModelSourceError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::warn!(engine = %name, source = %source.describe(), error = %e, "cannot ask for the engine")
                }
            }
        }
        None
    }

    /// INT8 when asked for, possible and calibrated; else float16 where fast; else float32.
    async fn conversion(&self, info: &GpuInfo) -> Conversion {
        let gpu = self.gpu_setup();
        let model = &self.options.model_name;
        if gpu.int8 && info.supports_int8() {
            let cache = calibration_cache_name(model);
            match self.source.load(&cache).await {
                Ok(artifact) => {
                    return Conversion {
                        engine_name: info.engine_name(model, Precision::Int8),
                        precision: Precision::Int8,
                        calibration: Some(artifact.path),
                    };
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no INT8 calibration cache; building without INT8")
                }
            }
        }
        let precision = if gpu.fp16 && info.supports_fp16() {
            Precision::Fp16
        } else {
            Precision::Fp32
        };
        Conversion {
            engine_name: info.engine_name(model, precision),
            precision,
            calibration: None,
        }
    }

    /// The session that serves while TensorRT builds: the GPU factory's own (CUDA), or the
    /// CPU when allowed — with a note that turns `Enabled` into `Warning`.
    async fn fallback_session(
        &self,
        model: &ModelArtifact,
    ) -> Result<(Arc<dyn InferenceEngine>, Option<String>), StartFailure> {
        let artifact = model.clone();
        let gpu_error = match self.prepare(move |f| f.build(&artifact)).await {
            Ok(engine) => return Ok((engine, None)),
            Err(reason) => reason,
        };
        let Some(cpu) = self.gpu_setup().cpu_fallback.clone() else {
            return Err(StartFailure::NoGpuSession(gpu_error));
        };
        let artifact = model.clone();
        let note = format!("{gpu_error}; serving on the CPU (engine.allow_cpu_fallback)");
        match self.prepare_with(cpu, move |f| f.build(&artifact)).await {
            Ok(engine) => Ok((engine, Some(note))),
            Err(cpu) => Err(StartFailure::CpuFallbackFailed {
                gpu: GpuUnusable::Session(gpu_error),
                cpu,
            }),
        }
    }

    /// No usable GPU: `Error`, or the CPU engine with `Warning` when that is allowed.
    async fn serve_on_cpu(
        self: &Arc<Self>,
        unavailable: GpuUnavailable,
    ) -> Result<(), StartFailure> {
        let Some(cpu) = self.gpu_setup().cpu_fallback.clone() else {
            return Err(StartFailure::NoGpu(unavailable));
        };
        let name = self.options.model_name.clone();
        let model = match self.source.load(&name).await {
            Ok(model) => model,
            Err(source) => {
                return Err(StartFailure::NoGpuNoModel {
                    gpu: unavailable,
                    model: name,
                    source,
                });
            }
        };
        self.move_to(Availability::Converting);
        let note = format!("{unavailable}; serving on the CPU (engine.allow_cpu_fallback)");
        let engine = match self.prepare_with(cpu, move |f| f.build(&model)).await {
            Ok(engine) => engine,
            Err(cpu) => {
                return Err(StartFailure::CpuFallbackFailed {
                    gpu: GpuUnusable::Probe(unavailable),
                    cpu,
                });
            }
        };
        tracing::warn!(%note);
        self.install_as(engine, Availability::Warning(Reason::new(note)));
        Ok(())
    }

    /// A failure after the fallback serves: `Warning`, and the start is done.
    fn keep_serving(&self, reason: String) {
        tracing::warn!(%reason);
        self.move_to(Availability::Warning(Reason::new(reason)));
    }

    async fn prepare(
        &self,
        make: impl FnOnce(&dyn EngineFactory) -> Result<Arc<dyn InferenceEngine>, EngineError>
        + Send
        + 'static,
    ) -> Result<Arc<dyn InferenceEngine>, BuildFailure> {
        self.prepare_with(Arc::clone(&self.factory), make).await
    }
}

/// Runs `work` on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, BuildFailure> {
    Ok(tokio::task::spawn_blocking(work).await?)
}
