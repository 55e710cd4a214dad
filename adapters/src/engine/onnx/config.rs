//! Settings of the ONNX Runtime CPU engine.

use std::path::PathBuf;

/// How the CPU engine loads ONNX Runtime and runs the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxEngineConfig {
    /// The ONNX Runtime shared library (`libonnxruntime.so.1.x`), loaded once per process.
    pub library: PathBuf,
    /// Intra-op threads per session; 0 = available cores ÷ `sessions` (at least 1).
    pub intra_threads: usize,
    /// Sessions in the pool: how many inferences may run at the same time.
    pub sessions: usize,
    /// Forces the output layout instead of detecting it.
    pub layout: Option<domain::layout::LayoutKind>,
    /// Views per call for a model whose input batch is dynamic. `None`: derived from the
    /// model's shapes (`batch::derive_batch`); set: used even where an output says
    /// otherwise (the core falls back to one view per call if the model refuses).
    pub max_batch: Option<usize>,
    /// Whether idle intra-op threads spin between operators. Off by default: measured on the
    /// 2-core target (azaion.onnx 640×640, two intra-op threads), spinning was never faster —
    /// 175–184 ms vs 161–175 ms at load ≈1.6, 465–528 ms vs 388–422 ms at load ≈3.7 —
    /// because spinning threads steal the cores that decoding and other requests need.
    /// (`BENCH_INTRA_SPINNING=0|1 cargo bench -p adapters --bench preprocess -- engine`.)
    pub intra_spinning: bool,
    /// Nice value of the inference threads (0: as the process). Above the async
    /// runtime's, so `/health` and streams answer at once while every core infers.
    pub inference_nice: i32,
}

impl Default for OnnxEngineConfig {
    fn default() -> Self {
        Self {
            library: PathBuf::from("libonnxruntime.so"),
            intra_threads: 0,
            sessions: 1,
            layout: None,
            max_batch: None,
            intra_spinning: false,
            inference_nice: 5,
        }
    }
}

impl OnnxEngineConfig {
    /// Intra-op threads each session gets.
    pub(crate) fn threads_per_session(&self) -> usize {
        if self.intra_threads > 0 {
            return self.intra_threads;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / self.sessions.max(1)).max(1)
    }
}
