//! The `[engine]` section: how inference runs, one variant per engine adapter.

use std::path::PathBuf;

use domain::geometry::Preprocess;
use serde::{Deserialize, Serialize};

fn default_ort_library() -> PathBuf {
    PathBuf::from("assets/onnxruntime/libonnxruntime.so.1.32.0")
}
fn default_nms_iou() -> f32 {
    0.7
}
fn default_sessions() -> usize {
    1
}

/// How inference runs. One variant per engine adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EngineConfig {
    /// ONNX Runtime on the CPU.
    Onnx {
        /// The ONNX Runtime shared library, loaded at run time.
        #[serde(default = "default_ort_library")]
        library: PathBuf,
        /// Threads per session for one operator; 0 = the machine's cores ÷ sessions.
        #[serde(default)]
        intra_threads: usize,
        /// Sessions run side by side (ONNX Runtime runs one call per session at a time).
        #[serde(default = "default_sessions")]
        sessions: usize,
        /// Output layout: `auto` (from shapes and metadata), `end2end`, `ultralytics`, `yolov5`.
        #[serde(default)]
        layout: LayoutChoice,
        /// How a view reaches the model input: `letterbox` (Ultralytics, what YOLO models
        /// are trained with) or `stretch` (the original service's `blobFromImage`).
        #[serde(default)]
        preprocess: Preprocess,
        /// IoU above which NMS drops the weaker box of a class.
        #[serde(default = "default_nms_iou")]
        nms_iou: f32,
        /// Views per engine call for a model whose input batch is dynamic. Unset: derived
        /// from the model's shapes, at most 8 (docs/pipeline.md §7); set: used as given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_batch: Option<usize>,
        /// Idle intra-op threads spin. Off: measured slower here (adapters bench, engine).
        #[serde(default)]
        intra_spinning: bool,
        /// Nice value of the inference threads (0 = as the process): above the async
        /// runtime's, so `/health` and streams answer at once while every core infers.
        #[serde(default = "default_inference_nice")]
        inference_nice: i32,
    },
    /// TensorRT through ONNX Runtime's TensorRT execution provider (spec A4, GPU): a
    /// pre-built engine for this GPU from the Loader, else a CUDA session serves while the
    /// engine is built, uploaded and switched to.
    Tensorrt {
        /// The GPU build of ONNX Runtime (from the `onnxruntime-gpu` wheel), loaded at run time.
        #[serde(default = "default_gpu_ort_library")]
        library: PathBuf,
        /// The CUDA driver library the GPU probe loads.
        #[serde(default = "default_cuda_driver")]
        cuda_driver: PathBuf,
        /// CUDA device ordinal.
        #[serde(default)]
        device_id: u32,
        /// With no usable GPU or GPU libraries, serve on the CPU (reported as `Warning`)
        /// instead of `Error`. Off: a GPU deployment that lost its GPU should be noticed.
        #[serde(default)]
        allow_cpu_fallback: bool,
        #[serde(default)]
        layout: LayoutChoice,
        #[serde(default)]
        preprocess: Preprocess,
        #[serde(default = "default_nms_iou")]
        nms_iou: f32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_batch: Option<usize>,
        /// Build in float16 where the GPU has fast float16.
        #[serde(default = "default_true")]
        fp16: bool,
        /// Build in INT8 where the GPU can and `<model stem>.int8_calib.cache` is on the Loader.
        #[serde(default)]
        int8: bool,
        /// TensorRT's builder workspace limit, bytes.
        #[serde(default = "default_workspace_bytes")]
        workspace_bytes: u64,
        /// Built engines and TensorRT's timing caches: keep it on a volume, so a restart
        /// on the same GPU does not rebuild.
        #[serde(default = "default_engine_cache")]
        cache_dir: PathBuf,
    },
    /// ONNX Runtime's CUDA execution provider, without TensorRT.
    Cuda {
        /// The GPU build of ONNX Runtime (from the `onnxruntime-gpu` wheel), loaded at run time.
        #[serde(default = "default_gpu_ort_library")]
        library: PathBuf,
        /// The CUDA driver library the GPU probe loads.
        #[serde(default = "default_cuda_driver")]
        cuda_driver: PathBuf,
        /// CUDA device ordinal.
        #[serde(default)]
        device_id: u32,
        /// With no usable GPU or GPU libraries, serve on the CPU (reported as `Warning`)
        /// instead of `Error`. Off: a GPU deployment that lost its GPU should be noticed.
        #[serde(default)]
        allow_cpu_fallback: bool,
        #[serde(default)]
        layout: LayoutChoice,
        #[serde(default)]
        preprocess: Preprocess,
        #[serde(default = "default_nms_iou")]
        nms_iou: f32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_batch: Option<usize>,
    },
}

fn default_gpu_ort_library() -> PathBuf {
    PathBuf::from("/opt/onnxruntime/libonnxruntime.so")
}
fn default_cuda_driver() -> PathBuf {
    PathBuf::from("libcuda.so.1")
}
fn default_true() -> bool {
    true
}
fn default_workspace_bytes() -> u64 {
    4 << 30
}
fn default_engine_cache() -> PathBuf {
    PathBuf::from("cache/engines")
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self::Onnx {
            library: default_ort_library(),
            intra_threads: 0,
            sessions: default_sessions(),
            layout: LayoutChoice::Auto,
            preprocess: Preprocess::default(),
            nms_iou: default_nms_iou(),
            max_batch: None,
            intra_spinning: false,
            inference_nice: default_inference_nice(),
        }
    }
}

fn default_inference_nice() -> i32 {
    5
}

impl EngineConfig {
    pub fn nms_iou(&self) -> f32 {
        match self {
            Self::Onnx { nms_iou, .. }
            | Self::Tensorrt { nms_iou, .. }
            | Self::Cuda { nms_iou, .. } => *nms_iou,
        }
    }

    pub fn preprocess(&self) -> Preprocess {
        match self {
            Self::Onnx { preprocess, .. }
            | Self::Tensorrt { preprocess, .. }
            | Self::Cuda { preprocess, .. } => *preprocess,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LayoutChoice {
    #[default]
    Auto,
    End2end,
    Ultralytics,
    Yolov5,
}
