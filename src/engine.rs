//! "Ensure engine": the lazy, single-flight start-up that walks the availability state
//! machine (spec A4) against the model source and the engine factory.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use domain::availability::{Availability, Reason};
use domain::classes::ClassTable;
use ports::{BatchSize, EngineFactory, InferenceEngine, InputTensor, ModelSource};
use tokio::sync::{broadcast, watch};

/// The engine's state as `/health` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStatus {
    pub availability: Availability,
    pub engine_type: Option<&'static str>,
}

/// Why no engine could be handed out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "engine not available: {}{}",
    status.availability.name(),
    status.availability.reason().map(|r| format!(" ({r})")).unwrap_or_default()
)]
pub struct EngineUnavailable {
    pub status: EngineStatus,
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

/// Owns the engine and its availability. Cheap to query, safe to share.
pub struct EngineManager {
    source: Arc<dyn ModelSource>,
    factory: Arc<dyn EngineFactory>,
    classes: Arc<ClassTable>,
    options: EngineOptions,
    status: watch::Sender<EngineStatus>,
    /// Every transition, in order (a `watch` coalesces; SSE and tests need each one).
    transitions: broadcast::Sender<EngineStatus>,
    engine: RwLock<Option<Arc<dyn InferenceEngine>>>,
    attempt: Mutex<Attempt>,
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
        let (status, _) = watch::channel(EngineStatus {
            availability: Availability::None,
            engine_type: None,
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
        })
    }

    pub fn status(&self) -> EngineStatus {
        self.status.borrow().clone()
    }

    /// The latest status, for waiters that only care where it settles.
    pub fn watch(&self) -> watch::Receiver<EngineStatus> {
        self.status.subscribe()
    }

    /// Every transition from now on, none skipped (SSE `availability` events, metrics).
    pub fn transitions(&self) -> broadcast::Receiver<EngineStatus> {
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
            changes.wait_for(|s| {
                matches!(
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
            if let Err(reason) = outcome {
                attempt.last_failure = Some(Instant::now());
                drop(attempt);
                tracing::error!(%reason, "engine start failed");
                this.move_to(Availability::Error(Reason::new(reason)));
            }
        });
    }

    async fn start(self: &Arc<Self>) -> Result<(), String> {
        let name = &self.options.model_name;
        tracing::info!(model = %name, source = %self.source.describe(), "downloading model");
        let artifact = self
            .source
            .load(name)
            .await
            .map_err(|e| format!("cannot load {name}: {e}"))?;
        self.move_to(Availability::Converting);
        let factory = Arc::clone(&self.factory);
        let classes = Arc::clone(&self.classes);
        let engine = tokio::task::spawn_blocking(move || {
            let engine = factory.build(&artifact).map_err(|e| e.to_string())?;
            classes
                .check_model_classes(engine.spec().class_count)
                .map_err(|e| e.to_string())?;
            warm_up(engine.as_ref())?;
            Ok::<_, String>(engine)
        })
        .await
        .map_err(|e| format!("engine build aborted: {e}"))??;
        let engine_type = engine.engine_type();
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) = Some(engine);
        self.status
            .send_modify(|s| s.engine_type = Some(engine_type));
        self.move_to(Availability::Enabled);
        tracing::info!(engine = engine_type, "engine enabled");
        Ok(())
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

/// One inference on a blank batch so the first request does not pay for lazy set-up.
fn warm_up(engine: &dyn InferenceEngine) -> Result<(), String> {
    let spec = engine.spec();
    let mut input = InputTensor::new(spec.element, spec.input_size, spec.batch.max());
    if let BatchSize::Dynamic { .. } = spec.batch {
        input.set_batch(1);
    }
    engine
        .infer(&input)
        .map(drop)
        .map_err(|e| format!("warm-up failed: {e}"))
}

#[cfg(test)]
pub(crate) mod tests;
