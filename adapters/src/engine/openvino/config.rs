//! Settings of the OpenVINO CPU engine.

use std::path::PathBuf;

/// What the engine computes in (`[engine] precision`, by these names in snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrecisionChoice {
    /// bf16 where the CPU reports BF16 among its optimisation capabilities, else f32.
    #[default]
    Auto,
    F32,
    Bf16,
    F16,
}

/// How the engine loads OpenVINO and runs the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenvinoEngineConfig {
    /// `libopenvino_c.so.<version>`; the CPU plugin, the ONNX frontend and TBB are found
    /// beside it. Loaded once per process.
    pub library: PathBuf,
    pub precision: PrecisionChoice,
    /// Inference threads per request; 0 = available cores ÷ `requests` (at least 1).
    pub threads: usize,
    /// Infer requests in the pool: how many inferences may run at the same time.
    pub requests: usize,
    /// OpenVINO's compiled-model cache (`CACHE_DIR`): a restart loads instead of
    /// compiling. `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    /// Forces the output layout instead of detecting it.
    pub layout: Option<domain::layout::LayoutKind>,
    /// Views per call for a model whose input batch is dynamic (as for ONNX Runtime).
    pub max_batch: Option<usize>,
    /// Nice value of the inference threads (0: as the process).
    pub inference_nice: i32,
}

impl Default for OpenvinoEngineConfig {
    fn default() -> Self {
        Self {
            library: PathBuf::from("libopenvino_c.so"),
            precision: PrecisionChoice::Auto,
            threads: 0,
            requests: 1,
            cache_dir: None,
            layout: None,
            max_batch: None,
            inference_nice: 5,
        }
    }
}

impl OpenvinoEngineConfig {
    pub(crate) fn threads_per_request(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / self.requests.max(1)).max(1)
    }
}
