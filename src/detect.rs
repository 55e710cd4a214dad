//! "Detect frames": plan views → the batcher (preprocess → infer → decode) → merge and
//! filter per frame. Everything here blocks; callers run it on blocking threads.

use std::sync::Arc;

use domain::classes::ClassTable;
use domain::detection::Detection;
use domain::layout::LayoutError;
use domain::settings::RecognitionSettings;
use domain::tiling::{ViewRules, plan_views};
use ports::{
    BatchSize, DecodeError, DetectionDto, EngineError, FrameCodec, InferenceEngine, InputTensor,
    ModelSpec, PreprocessError, Preprocessor, RgbFrame,
};

use crate::batcher::{Batcher, BatchingConfig, Submission};

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

/// Runs frames through an engine, by way of the [`Batcher`] (whose workers own the
/// reusable input tensors).
pub struct FrameDetector {
    codec: Arc<dyn FrameCodec>,
    preprocessor: Arc<dyn Preprocessor>,
    classes: Arc<ClassTable>,
    nms_iou: f32,
    view_rules: ViewRules,
    batcher: Batcher,
}

impl FrameDetector {
    /// A detector whose batch workers follow `batching` (they start here).
    pub fn new(
        codec: Arc<dyn FrameCodec>,
        preprocessor: Arc<dyn Preprocessor>,
        classes: Arc<ClassTable>,
        nms_iou: f32,
        batching: BatchingConfig,
    ) -> Self {
        let batcher = Batcher::new(Arc::clone(&preprocessor), batching);
        Self {
            codec,
            preprocessor,
            classes,
            nms_iou,
            view_rules: ViewRules::default(),
            batcher,
        }
    }

    /// The same detector with other rules for turning frames into views (preprocess
    /// mode, tiling), from the configuration.
    pub fn with_view_rules(mut self, rules: ViewRules) -> Self {
        self.view_rules = rules;
        self
    }

    pub fn view_rules(&self) -> ViewRules {
        self.view_rules
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

    /// Detections of one frame: views planned (whole or tiles), inferred by the batcher
    /// (with views of other requests, up to what the settings and the engine allow),
    /// then post-processed as one frame.
    pub fn detect_frame(
        &self,
        engine: &Arc<dyn InferenceEngine>,
        frame: &Arc<RgbFrame>,
        settings: &RecognitionSettings,
    ) -> Result<Vec<Detection>, FrameError> {
        self.detect_frame_reporting(engine, frame, settings, &mut |_, _| {})
    }

    /// [`Self::detect_frame`] telling `on_views(done, total)` as its views come back
    /// (a tiled photo's progress), first with `done` 0.
    pub fn detect_frame_reporting(
        &self,
        engine: &Arc<dyn InferenceEngine>,
        frame: &Arc<RgbFrame>,
        settings: &RecognitionSettings,
        on_views: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Detection>, FrameError> {
        Ok(self
            .detect_frames_reporting(engine, std::slice::from_ref(frame), settings, on_views)?
            .pop()
            .unwrap_or_default())
    }

    /// Detections of several frames (video): every frame's views, in order, go to the
    /// batcher as one submission, so `model_batch_size` frames (or their tiles) can share
    /// a call.
    pub fn detect_frames(
        &self,
        engine: &Arc<dyn InferenceEngine>,
        frames: &[Arc<RgbFrame>],
        settings: &RecognitionSettings,
    ) -> Result<Vec<Vec<Detection>>, FrameError> {
        self.detect_frames_reporting(engine, frames, settings, &mut |_, _| {})
    }

    /// [`Self::detect_frames`] telling `on_views(done, total)` as views come back.
    fn detect_frames_reporting(
        &self,
        engine: &Arc<dyn InferenceEngine>,
        frames: &[Arc<RgbFrame>],
        settings: &RecognitionSettings,
        on_views: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Vec<Detection>>, FrameError> {
        let spec = engine.spec();
        let plans: Vec<_> = frames
            .iter()
            .map(|f| plan_views(f.size(), spec.input_size, settings, self.view_rules))
            .collect();
        let views: Vec<_> = plans
            .iter()
            .zip(frames)
            .flat_map(|(plan, frame)| plan.views().iter().map(|v| (Arc::clone(frame), *v)))
            .collect();
        let total = views.len();
        on_views(0, total);
        let per_view = self.batcher.run_reporting(
            Submission {
                engine: Arc::clone(engine),
                cap: per_call(spec, settings),
                threshold: settings.probability_threshold(),
                views,
            },
            &mut |done| on_views(done, total),
        )?;
        let mut per_view = per_view.into_iter();
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
        let plan = plan_views(frame.size(), spec.input_size, settings, self.view_rules);
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
