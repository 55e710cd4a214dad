//! A loaded model: a pool of OpenVINO infer requests, one inference per request at a
//! time.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use openvino::{CompiledModel, ElementType, InferRequest, Shape, Tensor};
use ports::{
    ComputePrecision, EngineError, EngineKind, InferenceEngine, InputTensor, ModelSpec, RawOutput,
};

use crate::engine::model::{check_input, run_error};

/// One infer request and the input tensor it was last given (kept for the next call of
/// the same batch, so a call copies the frames in but allocates nothing).
struct Slot {
    request: InferRequest,
    input: Option<(usize, Tensor)>,
}

/// The OpenVINO CPU engine. `infer` may be called from several threads: each call takes
/// a free request, or waits for one.
pub struct OpenvinoEngine {
    spec: ModelSpec,
    precision: ComputePrecision,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
    nice: i32,
    /// Owns what the requests run; dropped after them.
    _compiled: Mutex<CompiledModel>,
}

impl std::fmt::Debug for OpenvinoEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenvinoEngine")
            .field("spec", &self.spec)
            .field("precision", &self.precision)
            .field("requests", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl OpenvinoEngine {
    pub(crate) fn new(
        spec: ModelSpec,
        precision: ComputePrecision,
        compiled: CompiledModel,
        requests: Vec<InferRequest>,
        nice: i32,
    ) -> Self {
        Self {
            spec,
            precision,
            slots: requests
                .into_iter()
                .map(|request| {
                    Mutex::new(Slot {
                        request,
                        input: None,
                    })
                })
                .collect(),
            next: AtomicUsize::new(0),
            nice,
            _compiled: Mutex::new(compiled),
        }
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        for slot in &self.slots {
            match slot.try_lock() {
                Ok(guard) => return guard,
                // A panic is caught inside the lock, so poison carries no broken state.
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        self.slots[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn failed(what: &str) -> impl Fn(openvino::InferenceError) -> EngineError + '_ {
    move |e| EngineError::Inference(format!("{what}: {e}"))
}

fn run(slot: &mut Slot, input: &InputTensor) -> Result<RawOutput, EngineError> {
    let shape = input.shape();
    let batch = shape[0];
    if slot.input.as_ref().is_none_or(|(b, _)| *b != batch) {
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let element = match input.element() {
            ports::ElementType::F32 => ElementType::F32,
            ports::ElementType::F16 => ElementType::F16,
        };
        let tensor = Shape::new(&dims)
            .and_then(|s| Tensor::new(element, &s))
            .map_err(failed("input tensor"))?;
        slot.input = Some((batch, tensor));
    }
    let Some((_, tensor)) = slot.input.as_mut() else {
        return Err(EngineError::Inference("no input tensor".into()));
    };
    match (input.as_f32(), input.as_f16()) {
        (Some(data), _) => tensor
            .get_data_mut::<f32>()
            .map_err(failed("input tensor"))?
            .copy_from_slice(data),
        (None, Some(data)) => tensor
            .get_data_mut::<half::f16>()
            .map_err(failed("input tensor"))?
            .copy_from_slice(data),
        (None, None) => return Err(EngineError::Inference("input tensor has no data".into())),
    }
    slot.request
        .set_input_tensor(tensor)
        .map_err(failed("setting the input"))?;
    slot.request
        .infer()
        .map_err(|e| run_error(&e.to_string(), batch))?;
    let output = slot
        .request
        .get_output_tensor_by_index(0)
        .map_err(failed("reading the output"))?;
    let dims = output
        .get_shape()
        .map_err(failed("reading the output"))?
        .get_dimensions()
        .iter()
        .map(|&d| d.max(0) as usize)
        .collect();
    let data = match output
        .get_element_type()
        .map_err(failed("reading the output"))?
    {
        ElementType::F32 => output
            .get_data::<f32>()
            .map_err(failed("reading the output"))?
            .to_vec(),
        ElementType::F16 => output
            .get_data::<half::f16>()
            .map_err(failed("reading the output"))?
            .iter()
            .map(|v| v.to_f32())
            .collect(),
        other => {
            return Err(EngineError::Inference(format!(
                "output element type {other} is not float32 or float16"
            )));
        }
    };
    Ok(RawOutput { dims, data })
}

impl InferenceEngine for OpenvinoEngine {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn engine_type(&self) -> EngineKind {
        EngineKind::Openvino
    }

    fn precision(&self) -> Option<ComputePrecision> {
        Some(self.precision)
    }

    fn infer(&self, input: &InputTensor) -> Result<RawOutput, EngineError> {
        check_input(&self.spec, input)?;
        crate::engine::priority::lower_current_thread(self.nice);
        let mut slot = self.slot();
        catch_unwind(AssertUnwindSafe(|| run(&mut slot, input)))
            .unwrap_or_else(|_| Err(EngineError::Inference("OpenVINO panicked".into())))
    }
}
