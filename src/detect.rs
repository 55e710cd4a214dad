//! "Detect frames": preprocess → infer → decode → filter, for one frame at a time.
//! Everything here blocks; callers run it on blocking threads.

use std::sync::{Arc, Mutex};

use domain::classes::ClassTable;
use domain::detection::Detection;
use domain::layout::{LayoutError, decode_candidates};
use domain::settings::RecognitionSettings;
use domain::tiling::plan_views;
use ports::{
    BatchSize, DecodeError, DetectionDto, EngineError, FrameCodec, InferenceEngine, InputTensor,
    ModelSpec, PreprocessError, Preprocessor, RgbFrame,
};

/// Why a frame produced no detections.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum FrameError {
    /// The bytes are not a usable image: the client's input.
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// The model's output cannot be read as its layout says.
    #[error("cannot read the model output: {0}")]
    Output(#[from] LayoutError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
}

/// Runs frames through an engine. Holds the reusable tensors so frames do not allocate
/// a new input buffer each time.
pub struct FrameDetector {
    codec: Arc<dyn FrameCodec>,
    preprocessor: Arc<dyn Preprocessor>,
    classes: Arc<ClassTable>,
    nms_iou: f32,
    tensors: Mutex<Vec<InputTensor>>,
}

impl FrameDetector {
    pub fn new(
        codec: Arc<dyn FrameCodec>,
        preprocessor: Arc<dyn Preprocessor>,
        classes: Arc<ClassTable>,
        nms_iou: f32,
    ) -> Self {
        Self {
            codec,
            preprocessor,
            classes,
            nms_iou,
            tensors: Mutex::new(Vec::new()),
        }
    }

    pub fn classes(&self) -> &ClassTable {
        &self.classes
    }

    pub fn classes_shared(&self) -> Arc<ClassTable> {
        Arc::clone(&self.classes)
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<RgbFrame, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        self.codec.decode(bytes)
    }

    /// The frame as JPEG (the image sent with an annotation).
    pub fn encode_jpeg(&self, frame: &RgbFrame, quality: u8) -> Result<Vec<u8>, DecodeError> {
        self.codec.encode_jpeg(frame, quality)
    }

    /// Detections of one frame: views planned (whole or tiles), batched up to what both
    /// the settings and the engine allow, then post-processed as one frame.
    pub fn detect_frame(
        &self,
        engine: &dyn InferenceEngine,
        frame: &RgbFrame,
        settings: &RecognitionSettings,
    ) -> Result<Vec<Detection>, FrameError> {
        let spec = engine.spec();
        let plan = plan_views(frame.size(), spec.input_size, settings);
        let per_call = per_call(spec, settings);
        let mut tensor = self.take_tensor(spec, per_call);
        let outcome = self.run_views(engine, frame, &plan, &mut tensor, per_call, settings);
        self.return_tensor(tensor);
        let per_view = outcome?;
        Ok(plan.finish(
            per_view,
            spec.layout.needs_nms(),
            self.nms_iou,
            settings,
            &self.classes,
        ))
    }

    /// Detections of several frames (video): every frame's views, in order, share the
    /// engine calls, so `model_batch_size` frames (or their tiles) go in one call.
    pub fn detect_frames(
        &self,
        engine: &dyn InferenceEngine,
        frames: &[&RgbFrame],
        settings: &RecognitionSettings,
    ) -> Result<Vec<Vec<Detection>>, FrameError> {
        let spec = engine.spec();
        let plans: Vec<_> = frames
            .iter()
            .map(|f| plan_views(f.size(), spec.input_size, settings))
            .collect();
        let views: Vec<(usize, &domain::tiling::View)> = plans
            .iter()
            .enumerate()
            .flat_map(|(i, plan)| plan.views().iter().map(move |v| (i, v)))
            .collect();
        let per_call = per_call(spec, settings);
        let threshold = settings.probability_threshold();
        let mut tensor = self.take_tensor(spec, per_call);
        let mut run = || -> Result<Vec<Vec<domain::detection::Candidate>>, FrameError> {
            let mut per_view = Vec::with_capacity(views.len());
            for chunk in views.chunks(per_call) {
                for (slot_index, (frame, view)) in chunk.iter().enumerate() {
                    let slot = tensor
                        .slot(slot_index)
                        .ok_or_else(|| PreprocessError(format!("no batch slot {slot_index}")))?;
                    self.preprocessor.fill(frames[*frame], view, slot)?;
                }
                if let BatchSize::Dynamic { .. } = spec.batch {
                    tensor.set_batch(chunk.len());
                }
                let output = engine.infer(&tensor)?;
                for index in 0..chunk.len() {
                    per_view.push(decode_candidates(
                        spec.layout,
                        &output.data,
                        &output.dims,
                        index,
                        threshold,
                    )?);
                }
            }
            Ok(per_view)
        };
        let outcome = run();
        self.return_tensor(tensor);
        let mut per_view = outcome?.into_iter();
        Ok(plans
            .iter()
            .map(|plan| {
                let mine: Vec<_> = per_view.by_ref().take(plan.views().len()).collect();
                plan.finish(
                    mine,
                    spec.layout.needs_nms(),
                    self.nms_iou,
                    settings,
                    &self.classes,
                )
            })
            .collect())
    }

    fn run_views(
        &self,
        engine: &dyn InferenceEngine,
        frame: &RgbFrame,
        plan: &domain::tiling::FramePlan,
        tensor: &mut InputTensor,
        per_call: usize,
        settings: &RecognitionSettings,
    ) -> Result<Vec<Vec<domain::detection::Candidate>>, FrameError> {
        let spec = engine.spec();
        let threshold = settings.probability_threshold();
        let mut per_view = Vec::with_capacity(plan.views().len());
        for chunk in plan.views().chunks(per_call) {
            self.fill_chunk(spec, frame, chunk, tensor)?;
            let output = engine.infer(tensor)?;
            for index in 0..chunk.len() {
                per_view.push(decode_candidates(
                    spec.layout,
                    &output.data,
                    &output.dims,
                    index,
                    threshold,
                )?);
            }
        }
        Ok(per_view)
    }

    /// Only the preprocessing of [`Self::detect_frame`]: every view letterboxed into
    /// `tensors`, one tensor per engine call (reused between calls). Returns the number
    /// of views. For benchmarks, which time the engine on the filled tensors apart.
    pub fn preprocess_frame(
        &self,
        spec: &ModelSpec,
        frame: &RgbFrame,
        settings: &RecognitionSettings,
        tensors: &mut Vec<InputTensor>,
    ) -> Result<usize, FrameError> {
        let plan = plan_views(frame.size(), spec.input_size, settings);
        let per_call = per_call(spec, settings);
        let chunks = plan.views().chunks(per_call);
        tensors.truncate(chunks.len());
        for (call, chunk) in chunks.enumerate() {
            if tensors.len() <= call {
                tensors.push(InputTensor::new(spec.element, spec.input_size, per_call));
            }
            let tensor = &mut tensors[call];
            tensor.set_batch(per_call);
            self.fill_chunk(spec, frame, chunk, tensor)?;
        }
        Ok(plan.views().len())
    }

    /// Letterboxes one engine call's views into `tensor`; a dynamic batch then carries
    /// exactly that many items, a fixed one keeps its size.
    fn fill_chunk(
        &self,
        spec: &ModelSpec,
        frame: &RgbFrame,
        chunk: &[domain::tiling::View],
        tensor: &mut InputTensor,
    ) -> Result<(), FrameError> {
        for (index, view) in chunk.iter().enumerate() {
            let slot = tensor
                .slot(index)
                .ok_or_else(|| PreprocessError(format!("no batch slot {index}")))?;
            self.preprocessor.fill(frame, view, slot)?;
        }
        if let BatchSize::Dynamic { .. } = spec.batch {
            tensor.set_batch(chunk.len());
        }
        Ok(())
    }

    fn take_tensor(&self, spec: &ModelSpec, capacity: usize) -> InputTensor {
        let mut pool = self.tensors.lock().unwrap_or_else(|p| p.into_inner());
        let reusable = pool.iter().position(|t| {
            t.element() == spec.element && t.size() == spec.input_size && t.capacity() >= capacity
        });
        let mut tensor = match reusable {
            Some(index) => pool.swap_remove(index),
            None => InputTensor::new(spec.element, spec.input_size, capacity),
        };
        tensor.set_batch(capacity);
        tensor
    }

    fn return_tensor(&self, tensor: InputTensor) {
        let mut pool = self.tensors.lock().unwrap_or_else(|p| p.into_inner());
        // A few buffers cover the concurrent detections; more would only hold memory.
        if pool.len() < 8 {
            pool.push(tensor);
        }
    }

    /// Wire form of detections, with labels from classes.json.
    pub fn to_dtos(&self, detections: &[Detection]) -> Vec<DetectionDto> {
        detections
            .iter()
            .filter_map(|d| {
                let class = self.classes.get(d.class().value())?;
                let bbox = d.bbox();
                Some(DetectionDto {
                    center_x: bbox.cx(),
                    center_y: bbox.cy(),
                    width: bbox.w(),
                    height: bbox.h(),
                    class_num: d.class().value(),
                    label: class.label().to_string(),
                    confidence: d.confidence().value(),
                })
            })
            .collect()
    }
}

/// Views per engine call: what both the settings and the engine allow.
fn per_call(spec: &ModelSpec, settings: &RecognitionSettings) -> usize {
    match spec.batch {
        BatchSize::Fixed(n) => n.max(1),
        BatchSize::Dynamic { max } => (settings.model_batch_size() as usize).clamp(1, max.max(1)),
    }
}

#[cfg(test)]
mod tests;
