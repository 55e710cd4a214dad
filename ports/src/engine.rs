//! The inference engine: a loaded model that turns a batch of tensors into raw outputs.

use std::sync::Arc;

use domain::geometry::Size;
use domain::layout::OutputLayout;

use crate::gpu::Precision;
use crate::model_source::ModelArtifact;

/// Element type of the model's input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    F32,
    F16,
}

/// What the loaded model expects and produces, read from the model itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSpec {
    /// Input tensor name.
    pub input_name: String,
    /// Width × height the frames are letterboxed to.
    pub input_size: Size,
    pub element: ElementType,
    pub batch: BatchSize,
    pub layout: OutputLayout,
    /// Number of classes the model scores.
    pub class_count: usize,
}

/// How many items one engine call takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    /// The model's batch dimension is fixed: every call carries exactly this many.
    Fixed(usize),
    /// The model accepts any batch up to this many (a configured cap).
    Dynamic { max: usize },
}

impl BatchSize {
    /// The most items one call can carry.
    pub fn max(self) -> usize {
        match self {
            Self::Fixed(n) | Self::Dynamic { max: n } => n.max(1),
        }
    }
}

/// The engine's input buffer: NCHW, RGB, values 0..1. Owned by the caller and reused
/// between calls so no frame allocates a new tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct InputTensor {
    batch: usize,
    size: Size,
    data: TensorData,
}

#[derive(Debug, Clone, PartialEq)]
enum TensorData {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
}

/// One batch item of an [`InputTensor`], `3 × height × width` values.
#[derive(Debug)]
pub enum TensorSlot<'a> {
    F32(&'a mut [f32]),
    F16(&'a mut [half::f16]),
}

impl InputTensor {
    /// A zeroed tensor for up to `capacity` items of `size`.
    pub fn new(element: ElementType, size: Size, capacity: usize) -> Self {
        let len = capacity.max(1) * Self::item_len(size);
        let data = match element {
            ElementType::F32 => TensorData::F32(vec![0.0; len]),
            ElementType::F16 => TensorData::F16(vec![half::f16::ZERO; len]),
        };
        Self {
            batch: capacity.max(1),
            size,
            data,
        }
    }

    fn item_len(size: Size) -> usize {
        3 * size.width() as usize * size.height() as usize
    }

    pub fn element(&self) -> ElementType {
        match self.data {
            TensorData::F32(_) => ElementType::F32,
            TensorData::F16(_) => ElementType::F16,
        }
    }

    pub fn size(&self) -> Size {
        self.size
    }

    /// How many items the buffer holds.
    pub fn capacity(&self) -> usize {
        match &self.data {
            TensorData::F32(v) => v.len() / Self::item_len(self.size),
            TensorData::F16(v) => v.len() / Self::item_len(self.size),
        }
    }

    /// Number of items the next engine call will read (≤ capacity).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Sets how many items the next call reads; clamped to `1..=capacity`.
    pub fn set_batch(&mut self, batch: usize) {
        self.batch = batch.clamp(1, self.capacity());
    }

    /// `[batch, 3, height, width]`.
    pub fn shape(&self) -> [usize; 4] {
        [
            self.batch,
            3,
            self.size.height() as usize,
            self.size.width() as usize,
        ]
    }

    /// Item `index` for a preprocessor to write; `None` past the capacity.
    pub fn slot(&mut self, index: usize) -> Option<TensorSlot<'_>> {
        let len = Self::item_len(self.size);
        let range = index * len..(index + 1) * len;
        match &mut self.data {
            TensorData::F32(v) => v.get_mut(range).map(TensorSlot::F32),
            TensorData::F16(v) => v.get_mut(range).map(TensorSlot::F16),
        }
    }

    /// The first `batch` items as float32, if that is the element type.
    pub fn as_f32(&self) -> Option<&[f32]> {
        let len = self.batch * Self::item_len(self.size);
        match &self.data {
            TensorData::F32(v) => v.get(..len),
            TensorData::F16(_) => None,
        }
    }

    /// The first `batch` items as float16, if that is the element type.
    pub fn as_f16(&self) -> Option<&[half::f16]> {
        let len = self.batch * Self::item_len(self.size);
        match &self.data {
            TensorData::F16(v) => v.get(..len),
            TensorData::F32(_) => None,
        }
    }
}

/// The model's first output, as float32, with its concrete dimensions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawOutput {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The runtime library could not be loaded (missing file, wrong version).
    #[error("inference runtime unavailable: {0}")]
    Runtime(String),
    /// The model cannot be used: unreadable, unsupported input or output, class mismatch.
    #[error("model unusable: {0}")]
    Model(String),
    /// A run failed; the engine itself may still work.
    #[error("inference failed: {0}")]
    Inference(String),
    /// The model refused a call of `batch` items with a shape error: its graph does not
    /// run at that batch, though its input said it would. The same items fit in calls of
    /// one (the core falls back to that; nothing is wrong with the items).
    #[error("the model does not run at batch {batch}: {reason}")]
    BatchRejected { batch: usize, reason: String },
    /// The requested hardware or backend is not there (no GPU, no TensorRT).
    #[error("backend unavailable: {0}")]
    Backend(String),
}

/// What runs a loaded model. The wire name ([`EngineKind::as_str`]) is `/health`'s and
/// the availability event's `engineType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// ONNX Runtime on the CPU.
    Onnx,
    /// ONNX Runtime's CUDA execution provider.
    Cuda,
    /// A TensorRT engine (through ONNX Runtime's TensorRT execution provider).
    Tensorrt,
    /// OpenVINO on the CPU.
    Openvino,
}

impl EngineKind {
    /// Back from [`EngineKind::as_str`].
    pub fn from_name(name: &str) -> Option<EngineKind> {
        [Self::Onnx, Self::Cuda, Self::Tensorrt, Self::Openvino]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Onnx => "onnx",
            Self::Cuda => "cuda",
            Self::Tensorrt => "tensorrt",
            Self::Openvino => "openvino",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The arithmetic an engine computes in (`/health`'s `precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComputePrecision {
    F32,
    F16,
    /// bfloat16: float32's range with 8 bits of mantissa (CPUs with AVX-512 BF16 or AMX).
    Bf16,
}

impl ComputePrecision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        }
    }

    /// Back from [`ComputePrecision::as_str`].
    pub fn from_name(name: &str) -> Option<ComputePrecision> {
        [Self::F32, Self::F16, Self::Bf16]
            .into_iter()
            .find(|p| p.as_str() == name)
    }
}

/// A loaded model. `infer` blocks while the model runs: call it from a blocking thread,
/// never on the async runtime.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait InferenceEngine: Send + Sync {
    fn spec(&self) -> &ModelSpec;
    /// What runs the model (`/health`'s `engineType`).
    fn engine_type(&self) -> EngineKind;
    /// What the engine computes in, where it chose (OpenVINO's precision hint); `None`
    /// where the model's own types decide.
    fn precision(&self) -> Option<ComputePrecision> {
        None
    }
    fn infer(&self, input: &InputTensor) -> Result<RawOutput, EngineError>;
}

/// What a TensorRT conversion should produce (spec A4 `Converting`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// The engine's file name, `<stem>.cc_<maj>.<min>_sm_<n>[.int8].engine`.
    pub engine_name: String,
    pub precision: Precision,
    /// The INT8 calibration cache, downloaded; required for [`Precision::Int8`].
    pub calibration: Option<std::path::PathBuf>,
}

/// Builds engines. Every method blocks: call it from a blocking thread.
///
/// The CPU adapter implements [`EngineFactory::build`] only. A GPU adapter also loads
/// pre-built engines and converts ONNX models into them; the core decides when.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait EngineFactory: Send + Sync {
    /// An engine straight from an ONNX model: the CPU engine, or on a GPU the fallback
    /// session that serves while the TensorRT engine is built. It never falls back to
    /// another device on its own: a backend that cannot be used is an error.
    fn build(&self, model: &ModelArtifact) -> Result<Arc<dyn InferenceEngine>, EngineError>;

    /// Loads a pre-built engine file (from the Loader or the local cache).
    fn load_engine(&self, engine: &ModelArtifact) -> Result<Arc<dyn InferenceEngine>, EngineError> {
        Err(EngineError::Backend(format!(
            "this engine loads no pre-built engines ({})",
            engine.name
        )))
    }

    /// Builds the engine for this GPU from an ONNX model into a local file (kept on the
    /// local cache volume) and returns it, named `conversion.engine_name`.
    fn convert(
        &self,
        model: &ModelArtifact,
        conversion: &Conversion,
    ) -> Result<ModelArtifact, EngineError> {
        let _ = model;
        Err(EngineError::Backend(format!(
            "this engine cannot build {}",
            conversion.engine_name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size() -> Size {
        Size::new(4, 2).unwrap()
    }

    #[test]
    fn slots_are_disjoint_items_of_the_nchw_buffer() {
        let mut tensor = InputTensor::new(ElementType::F32, size(), 3);
        assert_eq!(tensor.capacity(), 3);
        assert_eq!(tensor.shape(), [3, 3, 2, 4]);
        for index in 0..3 {
            match tensor.slot(index).unwrap() {
                TensorSlot::F32(values) => {
                    assert_eq!(values.len(), 3 * 2 * 4);
                    values.fill(index as f32);
                }
                TensorSlot::F16(_) => panic!("an f32 tensor"),
            }
        }
        assert!(tensor.slot(3).is_none());
        let data = tensor.as_f32().unwrap();
        assert_eq!(data[0], 0.0);
        assert_eq!(data[24], 1.0);
        assert_eq!(data[71], 2.0);
    }

    #[test]
    fn the_batch_limits_what_the_engine_reads() {
        let mut tensor = InputTensor::new(ElementType::F16, size(), 4);
        tensor.set_batch(2);
        assert_eq!(tensor.shape()[0], 2);
        assert_eq!(tensor.as_f16().unwrap().len(), 2 * 24);
        assert!(tensor.as_f32().is_none());
        tensor.set_batch(0);
        assert_eq!(tensor.batch(), 1, "clamped to at least one");
        tensor.set_batch(9);
        assert_eq!(tensor.batch(), 4, "clamped to the capacity");
    }

    #[test]
    fn batch_size_caps() {
        assert_eq!(BatchSize::Fixed(0).max(), 1);
        assert_eq!(BatchSize::Dynamic { max: 8 }.max(), 8);
    }
}
