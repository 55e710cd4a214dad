//! "Ensure engine": the lazy, single-flight start-up that walks the availability state
//! machine (spec A4) against the model source and the engine factory.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use domain::availability::{Availability, Reason};
use domain::classes::ClassTable;
use ports::{
    BatchSize, EngineError, EngineFactory, EngineKind, GpuProbe, Health, InferenceEngine,
    InputTensor, ModelSource,
};
use tokio::sync::{broadcast, watch};

/// Why no engine could be handed out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "engine not available: {}{}",
    status.availability.name(),
    status.availability.reason().map(|r| format!(" ({r})")).unwrap_or_default()
)]
pub struct EngineUnavailable {
    pub status: Health,
}

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Artifact name at the model source.
    pub model_name: String,
    /// How long a caller waits for a start before giving up (the start goes on).
    pub start_wait: Duration,
    /// After a failed start, no new start sooner than this.
    pub retry_interval: Duration,
}

/// What the GPU start-up needs besides the model source and the engine factory
/// (spec A4, GPU engine). The factory then builds the CUDA fallback session (`build`),
/// loads TensorRT engines (`load_engine`) and converts models into them (`convert`).
pub struct GpuSetup {
    pub probe: Arc<dyn GpuProbe>,
    /// Build, share and switch to a TensorRT engine (`tensorrt`); without it the CUDA
    /// session is the engine (`cuda`).
    pub tensorrt: bool,
    /// Build in float16 where the GPU has fast float16.
    pub fp16: bool,
    /// Build in INT8 where the GPU can and the calibration cache is at the source.
    pub int8: bool,
    /// Engines built earlier on this host (the local cache volume), asked before the source.
    pub local_engines: Option<Arc<dyn ModelSource>>,
    /// Serves on the CPU when the GPU cannot — only when configured, and reported as
    /// `Warning`, never silently.
    pub cpu_fallback: Option<Arc<dyn EngineFactory>>,
}

/// Owns the engine and its availability. Cheap to query, safe to share.
///
/// The engine is an `Arc` behind a lock: a switch (CUDA fallback → TensorRT) replaces
/// the `Arc`, so calls in flight finish on the engine they took and new calls get the
/// new one; the old engine is dropped when its last call returns.
pub struct EngineManager {
    source: Arc<dyn ModelSource>,
    factory: Arc<dyn EngineFactory>,
    classes: Arc<ClassTable>,
    options: EngineOptions,
    status: watch::Sender<Health>,
    /// Every transition, in order (a `watch` coalesces; SSE and tests need each one).
    transitions: broadcast::Sender<Health>,
    engine: RwLock<Option<Arc<dyn InferenceEngine>>>,
    attempt: Mutex<Attempt>,
    gpu: Option<GpuSetup>,
    /// Serves when `factory` cannot start (configured only, reported as `Warning`).
    fallback: Option<Arc<dyn EngineFactory>>,
    /// `kind = "auto"`: the engines timed against `factory`'s on this machine; the
    /// fastest serves (see [`fastest`]).
    contenders: Vec<Contender>,
}

/// An engine `auto` may choose, by what it is.
pub struct Contender {
    pub kind: EngineKind,
    pub factory: Arc<dyn EngineFactory>,
}

/// How a start goes besides building `factory`'s engine.
enum Start {
    Plain,
    Fallback(Arc<dyn EngineFactory>),
    Gpu(GpuSetup),
    Fastest(Vec<Contender>),
}

#[derive(Debug, Default)]
struct Attempt {
    running: bool,
    last_failure: Option<Instant>,
}

impl EngineManager {
    pub fn new(
        source: Arc<dyn ModelSource>,
        factory: Arc<dyn EngineFactory>,
        classes: Arc<ClassTable>,
        options: EngineOptions,
    ) -> Arc<Self> {
        Self::build(source, factory, classes, options, Start::Plain)
    }

    /// A manager that builds every contender, times each on the model's own input, and
    /// serves the fastest (`kind = "auto"`). Offer only engines that pass the accuracy
    /// gate against each other: speed alone decides.
    pub fn fastest_of(
        source: Arc<dyn ModelSource>,
        contenders: Vec<Contender>,
        classes: Arc<ClassTable>,
        options: EngineOptions,
    ) -> Arc<Self> {
        let first = Arc::clone(&contenders.first().expect("at least one contender").factory);
        Self::build(source, first, classes, options, Start::Fastest(contenders))
    }

    /// [`Self::new`] that serves from `fallback` when `factory` cannot start (a missing
    /// or broken library, a precision the machine lacks): `Warning` with the reason,
    /// never silently.
    pub fn with_fallback(
        source: Arc<dyn ModelSource>,
        factory: Arc<dyn EngineFactory>,
        classes: Arc<ClassTable>,
        options: EngineOptions,
        fallback: Arc<dyn EngineFactory>,
    ) -> Arc<Self> {
        Self::build(source, factory, classes, options, Start::Fallback(fallback))
    }

    /// A manager that starts the GPU engine (spec A4): a pre-built TensorRT engine when
    /// one exists for this GPU, else a fallback session while one is built.
    pub fn with_gpu(
        source: Arc<dyn ModelSource>,
        factory: Arc<dyn EngineFactory>,
        classes: Arc<ClassTable>,
        options: EngineOptions,
        gpu: GpuSetup,
    ) -> Arc<Self> {
        Self::build(source, factory, classes, options, Start::Gpu(gpu))
    }

    fn build(
        source: Arc<dyn ModelSource>,
        factory: Arc<dyn EngineFactory>,
        classes: Arc<ClassTable>,
        options: EngineOptions,
        start: Start,
    ) -> Arc<Self> {
        let (mut gpu, mut fallback, mut contenders) = (None, None, Vec::new());
        match start {
            Start::Plain => {}
            Start::Fallback(factory) => fallback = Some(factory),
            Start::Gpu(setup) => gpu = Some(setup),
            Start::Fastest(all) => contenders = all,
        }
        let (status, _) = watch::channel(Health {
            availability: Availability::None,
            engine_type: None,
            precision: None,
        });
        Arc::new(Self {
            source,
            factory,
            classes,
            options,
            status,
            transitions: broadcast::channel(64).0,
            engine: RwLock::new(None),
            attempt: Mutex::new(Attempt::default()),
            gpu,
            fallback,
            contenders,
        })
    }

    pub fn status(&self) -> Health {
        self.status.borrow().clone()
    }

    /// The latest status, for waiters that only care where it settles.
    pub fn watch(&self) -> watch::Receiver<Health> {
        self.status.subscribe()
    }

    /// Every transition from now on, none skipped (SSE `availability` events, metrics).
    pub fn transitions(&self) -> broadcast::Receiver<Health> {
        self.transitions.subscribe()
    }

    /// The engine if one is loaded, without starting anything.
    pub fn current(&self) -> Option<Arc<dyn InferenceEngine>> {
        self.engine.read().ok().and_then(|e| e.clone())
    }

    /// Returns the engine, starting it if needed. Concurrent callers share one start;
    /// a caller gives up after `start_wait` while the start carries on.
    pub async fn ensure(self: &Arc<Self>) -> Result<Arc<dyn InferenceEngine>, EngineUnavailable> {
        if let Some(engine) = self.current() {
            return Ok(engine);
        }
        let mut changes = self.status.subscribe();
        self.start_if_allowed();
        let settled = tokio::time::timeout(
            self.options.start_wait,
            // An engine may serve before the start settles (the GPU fallback while
            // TensorRT builds): it is set together with `engine_type`.
            changes.wait_for(|s| {
                s.engine_type.is_some()
                    || matches!(
                        s.availability,
                        Availability::Enabled | Availability::Warning(_) | Availability::Error(_)
                    )
            }),
        )
        .await;
        drop(settled);
        self.current().ok_or_else(|| EngineUnavailable {
            status: self.status(),
        })
    }

    /// Starts the engine in the background unless a start is running, an engine exists,
    /// or the last failure is too recent.
    pub fn start_if_allowed(self: &Arc<Self>) {
        let mut attempt = self.attempt.lock().unwrap_or_else(|p| p.into_inner());
        if attempt.running || self.current().is_some() {
            return;
        }
        if attempt
            .last_failure
            .is_some_and(|at| at.elapsed() < self.options.retry_interval)
        {
            return;
        }
        // Entering Downloading before the task runs means no waiter sees the old Error.
        if !self.move_to(Availability::Downloading) {
            return;
        }
        attempt.running = true;
        drop(attempt);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let outcome = this.start().await;
            let mut attempt = this.attempt.lock().unwrap_or_else(|p| p.into_inner());
            attempt.running = false;
            if let Err(failure) = outcome {
                attempt.last_failure = Some(Instant::now());
                drop(attempt);
                let reason = failure.to_string();
                tracing::error!(%reason, "engine start failed");
                this.move_to(Availability::Error(Reason::new(reason)));
            }
        });
    }

    async fn start(self: &Arc<Self>) -> Result<(), StartFailure> {
        if self.gpu.is_some() {
            return self.start_gpu().await;
        }
        if !self.contenders.is_empty() {
            return self.start_fastest().await;
        }
        let name = &self.options.model_name;
        tracing::info!(model = %name, source = %self.source.describe(), "downloading model");
        let artifact = self
            .source
            .load(name)
            .await
            .map_err(|source| StartFailure::Model {
                model: name.clone(),
                source,
            })?;
        self.move_to(Availability::Converting);
        let built = self.build_engine(&self.factory, &artifact).await;
        let (engine, next) = match (built, &self.fallback) {
            (Ok(engine), _) => (engine, Availability::Enabled),
            (Err(reason), None) => return Err(reason.into()),
            (Err(reason), Some(fallback)) => {
                let engine = match self.build_engine(fallback, &artifact).await {
                    Ok(engine) => engine,
                    Err(fallback) => {
                        return Err(StartFailure::FallbackFailed {
                            first: reason,
                            fallback,
                        });
                    }
                };
                let note = format!(
                    "{reason}; serving on {} (engine fallback)",
                    engine.engine_type()
                );
                tracing::warn!(%note, "engine started on its fallback");
                (engine, Availability::Warning(Reason::new(note)))
            }
        };
        let engine_type = self.install_as(engine, next);
        tracing::info!(engine = %engine_type, "engine enabled");
        Ok(())
    }

    /// The model from the source, as the start's first step.
    async fn load_model(&self) -> Result<ports::ModelArtifact, StartFailure> {
        let name = &self.options.model_name;
        tracing::info!(model = %name, source = %self.source.describe(), "downloading model");
        self.source
            .load(name)
            .await
            .map_err(|source| StartFailure::Model {
                model: name.clone(),
                source,
            })
    }

    /// `factory`'s engine for `artifact`, its classes checked and warmed up, off the
    /// async runtime.
    async fn build_engine(
        &self,
        factory: &Arc<dyn EngineFactory>,
        artifact: &ports::ModelArtifact,
    ) -> Result<Arc<dyn InferenceEngine>, BuildFailure> {
        let artifact = artifact.clone();
        self.prepare_with(Arc::clone(factory), move |f| f.build(&artifact))
            .await
    }

    /// Builds an engine on a blocking thread, checks its classes and warms it up.
    async fn prepare_with(
        &self,
        factory: Arc<dyn EngineFactory>,
        make: impl FnOnce(&dyn EngineFactory) -> Result<Arc<dyn InferenceEngine>, EngineError>
        + Send
        + 'static,
    ) -> Result<Arc<dyn InferenceEngine>, BuildFailure> {
        let classes = Arc::clone(&self.classes);
        tokio::task::spawn_blocking(move || {
            let engine = make(factory.as_ref())?;
            classes.check_model_classes(engine.spec().class_count)?;
            warm_up(engine.as_ref())?;
            Ok(engine)
        })
        .await?
    }

    /// Installs `engine` and moves to `next` in one status change, so nobody sees the
    /// engine served while `/health` still shows the state before it.
    fn install_as(&self, engine: Arc<dyn InferenceEngine>, next: Availability) -> EngineKind {
        let engine_type = engine.engine_type();
        let precision = engine.precision();
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) = Some(engine);
        self.status.send_modify(|status| {
            status.engine_type = Some(engine_type);
            status.precision = precision;
            match status.availability.transition(next) {
                Ok(state) => {
                    status.availability = state;
                    let _ = self.transitions.send(status.clone());
                }
                Err(illegal) => tracing::error!(%illegal, "refused availability change"),
            }
        });
        engine_type
    }

    /// Makes `engine` the one new calls get; calls in flight keep theirs.
    fn install(&self, engine: Arc<dyn InferenceEngine>) -> EngineKind {
        let engine_type = engine.engine_type();
        let precision = engine.precision();
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) = Some(engine);
        self.status.send_modify(|s| {
            s.engine_type = Some(engine_type);
            s.precision = precision;
        });
        engine_type
    }

    /// Applies a transition; an illegal one is logged and leaves the state as it was.
    fn move_to(&self, next: Availability) -> bool {
        let mut moved = false;
        self.status.send_if_modified(|status| {
            match status.availability.transition(next.clone()) {
                Ok(state) => {
                    status.availability = state;
                    moved = true;
                    // Sent under the watch's lock, so transitions keep their order.
                    // No receiver is fine: nobody listens yet.
                    let _ = self.transitions.send(status.clone());
                }
                Err(illegal) => tracing::error!(%illegal, "refused availability change"),
            }
            moved
        });
        moved
    }
}

/// A blank input of the engine's shape: one view where the batch is dynamic.
fn blank_input(engine: &dyn InferenceEngine) -> InputTensor {
    let spec = engine.spec();
    let mut input = InputTensor::new(spec.element, spec.input_size, spec.batch.max());
    if let BatchSize::Dynamic { .. } = spec.batch {
        input.set_batch(1);
    }
    input
}

/// One inference on a blank batch so the first request does not pay for lazy set-up.
fn warm_up(engine: &dyn InferenceEngine) -> Result<(), BuildFailure> {
    engine
        .infer(&blank_input(engine))
        .map(drop)
        .map_err(BuildFailure::WarmUp)
}

mod failure;
mod fastest;
mod gpu;

use failure::{BuildFailure, StartFailure};

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod gpu_tests;

#[cfg(test)]
mod fastest_tests;
