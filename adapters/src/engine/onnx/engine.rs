//! A loaded model: a pool of ONNX Runtime sessions, one inference per session at a time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, TensorElementType, TensorRef};
use ports::{EngineError, EngineKind, InferenceEngine, InputTensor, ModelSpec, RawOutput};

use super::runtime::panic_message;
use crate::engine::model::{check_input, run_error};

/// The CPU engine. `infer` may be called from several threads: each call takes a free
/// session, or waits for one.
pub struct OnnxEngine {
    spec: ModelSpec,
    output_name: String,
    // ort's `run` takes `&mut self` (ONNX Runtime's allocators are not all thread-safe).
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
    engine_type: EngineKind,
    /// Nice value for the threads that call `infer` (see `priority`).
    nice: i32,
}

impl std::fmt::Debug for OnnxEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxEngine")
            .field("spec", &self.spec)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl OnnxEngine {
    pub(crate) fn new(spec: ModelSpec, output_name: String, sessions: Vec<Session>) -> Self {
        Self {
            spec,
            output_name,
            sessions: sessions.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
            engine_type: EngineKind::Onnx,
            nice: 0,
        }
    }

    pub(crate) fn with_nice(mut self, nice: i32) -> Self {
        self.nice = nice;
        self
    }

    /// What `/health` reports: `onnx` (CPU), `cuda`, `tensorrt`.
    pub(crate) fn with_type(mut self, engine_type: EngineKind) -> Self {
        self.engine_type = engine_type;
        self
    }

    /// A free session if there is one, else wait on the sessions in turn.
    fn session(&self) -> MutexGuard<'_, Session> {
        for session in &self.sessions {
            match session.try_lock() {
                Ok(guard) => return guard,
                // A panic is caught inside the lock, so poison carries no broken state.
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        self.sessions[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, session: &mut Session, input: &InputTensor) -> Result<RawOutput, EngineError> {
        let shape = input.shape();
        // Zero-copy: ONNX Runtime reads the caller's buffer in place.
        let value: SessionInputValue<'_> = match (input.as_f32(), input.as_f16()) {
            (Some(data), _) => TensorRef::from_array_view((shape, data)).map(Into::into),
            (None, Some(data)) => TensorRef::from_array_view((shape, data)).map(Into::into),
            (None, None) => return Err(EngineError::Inference("input tensor has no data".into())),
        }
        .map_err(|e| EngineError::Inference(format!("input tensor {shape:?}: {e}")))?;
        let outputs = session
            .run(ort::inputs![self.spec.input_name.as_str() => value])
            .map_err(|e| run_error(&e.to_string(), shape[0]))?;
        let output = outputs.get(&self.output_name).ok_or_else(|| {
            EngineError::Inference(format!("output {} missing", self.output_name))
        })?;
        extract(output)
    }
}

fn extract(output: &DynValue) -> Result<RawOutput, EngineError> {
    let failed = |e: ort::Error| EngineError::Inference(format!("reading the output: {e}"));
    let (shape, data) = match output.dtype().tensor_type() {
        Some(TensorElementType::Float16) => {
            let (shape, data) = output.try_extract_tensor::<half::f16>().map_err(failed)?;
            (shape, data.iter().map(|v| v.to_f32()).collect())
        }
        _ => {
            let (shape, data) = output.try_extract_tensor::<f32>().map_err(failed)?;
            (shape, data.to_vec())
        }
    };
    Ok(RawOutput {
        dims: shape.iter().map(|&d| d.max(0) as usize).collect(),
        data,
    })
}

impl InferenceEngine for OnnxEngine {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn engine_type(&self) -> EngineKind {
        self.engine_type
    }

    fn infer(&self, input: &InputTensor) -> Result<RawOutput, EngineError> {
        check_input(&self.spec, input)?;
        // The calling thread computes too: it yields to the request path like the pool.
        crate::engine::priority::lower_current_thread(self.nice);
        let mut session = self.session();
        catch_unwind(AssertUnwindSafe(|| self.run(&mut session, input))).unwrap_or_else(|panic| {
            Err(EngineError::Inference(format!(
                "ONNX Runtime panicked: {}",
                panic_message(panic.as_ref())
            )))
        })
    }
}
