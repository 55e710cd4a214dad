//! One engine call of a gathered batch: letterbox into the worker's tensor, infer, hand
//! each view its candidates. A model that refuses the batch (`EngineError::BatchRejected`)
//! gets the same views one per call, now and from then on (spec A11: no request fails
//! because views were batched).

use std::sync::Arc;

use domain::layout::decode_candidates;
use ports::{BatchSize, EngineError, InferenceEngine, InputTensor, PreprocessError, RawOutput};

use super::{BATCH_SIZE, Batch, BatchQueue, Taken};
use crate::detect::FrameError;

impl BatchQueue {
    pub(super) fn run(&self, batch: Batch, tensor: &mut Option<InputTensor>) {
        let spec = batch.engine.spec();
        let capacity = spec.batch.max();
        let reusable = tensor.as_ref().is_some_and(|t| {
            t.element() == spec.element && t.size() == spec.input_size && t.capacity() >= capacity
        });
        if !reusable {
            *tensor = Some(InputTensor::new(spec.element, spec.input_size, capacity));
        }
        let Some(tensor) = tensor.as_mut() else {
            return;
        };
        let filled = self.fill(tensor, batch.items);
        if filled.is_empty() {
            return;
        }
        match call(&batch.engine, tensor, filled.len()) {
            Ok(output) => reply(&batch.engine, &output, filled),
            Err(EngineError::BatchRejected {
                batch: size,
                reason,
            }) => {
                if self.single_view.insert(&batch.engine) {
                    tracing::warn!(
                        engine = %batch.engine.engine_type(),
                        batch = size,
                        %reason,
                        "the model refused a batch of {size}: its views go one per call from now on"
                    );
                }
                self.one_by_one(&batch.engine, tensor, filled);
            }
            Err(e) => fail(filled, &e),
        }
    }

    /// Letterboxes the views into the tensor's first slots; a view that cannot be
    /// letterboxed gets its error at once.
    fn fill(&self, tensor: &mut InputTensor, items: Vec<Taken>) -> Vec<Taken> {
        let mut filled = Vec::with_capacity(items.len());
        for taken in items {
            let outcome = match tensor.slot(filled.len()) {
                Some(slot) => self
                    .preprocessor
                    .fill(&taken.item.frame, &taken.item.view, slot),
                None => Err(PreprocessError(format!("no batch slot {}", filled.len()))),
            };
            match outcome {
                Ok(()) => filled.push(taken),
                Err(e) => {
                    let _ = taken.reply.send((taken.item.index, Err(e.into())));
                }
            }
        }
        filled
    }

    /// The views of a refused batch, each in a call of its own (letterboxed again into
    /// the first slot; this happens once per engine).
    fn one_by_one(
        &self,
        engine: &Arc<dyn InferenceEngine>,
        tensor: &mut InputTensor,
        views: Vec<Taken>,
    ) {
        for taken in views {
            let filled = self.fill(tensor, vec![taken]);
            if filled.is_empty() {
                continue;
            }
            match call(engine, tensor, 1) {
                Ok(output) => reply(engine, &output, filled),
                Err(e) => fail(filled, &e),
            }
        }
    }
}

/// Runs `views` filled items: a dynamic batch carries exactly those, a fixed one keeps
/// its size.
fn call(
    engine: &Arc<dyn InferenceEngine>,
    tensor: &mut InputTensor,
    views: usize,
) -> Result<RawOutput, EngineError> {
    tensor.set_batch(match engine.spec().batch {
        BatchSize::Dynamic { .. } => views,
        BatchSize::Fixed(n) => n,
    });
    metrics::histogram!(BATCH_SIZE).record(views as f64);
    engine.infer(tensor)
}

fn reply(engine: &Arc<dyn InferenceEngine>, output: &RawOutput, views: Vec<Taken>) {
    for (position, taken) in views.into_iter().enumerate() {
        let candidates = decode_candidates(
            engine.spec().layout,
            &output.data,
            &output.dims,
            position,
            taken.threshold,
        )
        .map_err(FrameError::from);
        let _ = taken.reply.send((taken.item.index, candidates));
    }
}

fn fail(views: Vec<Taken>, error: &EngineError) {
    for taken in views {
        let _ = taken
            .reply
            .send((taken.item.index, Err(FrameError::Engine(error.clone()))));
    }
}
