//! Building [`OnnxEngine`]s from model files (the `Converting` step of spec A4).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use ort::environment::Environment;
use ort::ep::ExecutionProviderDispatch;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ports::{EngineError, EngineFactory, InferenceEngine, ModelArtifact};

use super::OnnxEngineConfig;
use super::engine::OnnxEngine;
use super::runtime::{self, panic_message};
use super::spec::read_spec;

/// Loads ONNX models into CPU sessions.
#[derive(Debug, Clone)]
pub struct OnnxEngineFactory {
    pub(crate) config: OnnxEngineConfig,
}

impl OnnxEngineFactory {
    /// Cheap: the runtime library is loaded by the first [`EngineFactory::build`], so a
    /// missing library shows as an engine error (spec A4 `Error`), not a start-up failure.
    pub fn new(config: OnnxEngineConfig) -> Self {
        Self { config }
    }

    /// Builds the concrete engine (tests and benches; the service uses the port).
    pub fn build_engine(&self, model: &ModelArtifact) -> Result<OnnxEngine, EngineError> {
        self.build_with(model, &[])
    }

    /// Sessions with `providers` registered in order (none: the CPU). A provider that
    /// cannot be registered fails the build: they are marked `error_on_failure`.
    pub(crate) fn build_with(
        &self,
        model: &ModelArtifact,
        providers: &[ExecutionProviderDispatch],
    ) -> Result<OnnxEngine, EngineError> {
        let environment = runtime::environment(&self.config.library)?;
        // ONNX Runtime reports a missing file as a generic load failure: say it plainly.
        crate::engine::files::readable(model)?;
        // The sessions' intra-op threads inherit this thread's priority.
        crate::engine::priority::lower_current_thread(self.config.inference_nice);
        let count = self.config.sessions.max(1);
        let mut sessions = Vec::with_capacity(count);
        for _ in 0..count {
            sessions.push(self.session(&environment, &model.path, providers).map_err(
                |e| match e {
                    EngineError::Model(reason) => {
                        EngineError::Model(format!("{}: {reason}", model.name))
                    }
                    other => other,
                },
            )?);
        }
        let read = read_spec(&sessions[0], &self.config).map_err(|e| {
            EngineError::Model(format!(
                "{}: {}",
                model.name,
                crate::engine::model::model_reason(&e)
            ))
        })?;
        tracing::info!(
            model = %model.name,
            sessions = count,
            threads = self.config.threads_per_session(),
            spec = ?read.spec,
            batch = %read.batch_reason,
            "ONNX engine ready"
        );
        Ok(OnnxEngine::new(read.spec, read.output_name, sessions)
            .with_nice(self.config.inference_nice))
    }

    fn session(
        &self,
        environment: &Environment,
        path: &Path,
        providers: &[ExecutionProviderDispatch],
    ) -> Result<Session, EngineError> {
        let threads = self.config.threads_per_session();
        let spinning = self.config.intra_spinning;
        let model = EngineError::Model;
        let options = |e: ort::Error<_>| model(format!("session options: {e}"));
        let build = || -> Result<Session, EngineError> {
            let mut builder = Session::builder(environment).map_err(|e| model(e.to_string()))?;
            if !providers.is_empty() {
                builder = builder
                    .with_execution_providers(providers)
                    .map_err(|e| model(format!("execution provider: {e}")))?;
            }
            builder
                .with_optimization_level(GraphOptimizationLevel::Level3)
                .map_err(options)?
                .with_intra_threads(threads)
                .map_err(options)?
                // One operator at a time: parallelism comes from intra-op threads and the pool.
                .with_inter_threads(1)
                .map_err(options)?
                .with_intra_op_spinning(spinning)
                .map_err(options)?
                .commit_from_file(path)
                .map_err(|e| model(e.to_string()))
        };
        catch_unwind(AssertUnwindSafe(build)).unwrap_or_else(|panic| {
            Err(model(format!(
                "ONNX Runtime panicked: {}",
                panic_message(panic.as_ref())
            )))
        })
    }
}

impl EngineFactory for OnnxEngineFactory {
    fn build(&self, model: &ModelArtifact) -> Result<Arc<dyn InferenceEngine>, EngineError> {
        Ok(Arc::new(self.build_engine(model)?))
    }
}
