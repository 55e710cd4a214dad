//! The `[engine]` section: how inference runs, one variant per engine adapter.
//!
//! The keys every engine reads are one struct ([`ModelRunSettings`]), the keys both GPU
//! engines read another ([`GpuEngineSettings`]); each variant flattens the ones it uses,
//! so the TOML stays flat (`[engine] kind = "tensorrt"`, `device_id = 1`) and the
//! adapter settings are built from each struct in one place (`From` impls below).

use std::path::PathBuf;

use adapters::engine::onnx::{GpuEngineConfig, OnnxEngineConfig};
use adapters::engine::openvino::{OpenvinoEngineConfig, PrecisionChoice};
use domain::geometry::Preprocess;
use domain::layout::LayoutKind;
use serde::{Deserialize, Serialize};

/// How inference runs. One variant per engine adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EngineConfig {
    /// The fastest exact CPU engine on this machine: ONNX Runtime and OpenVINO (f32)
    /// are both built and timed on the model at start; the faster serves.
    Auto(AutoEngineSettings),
    /// ONNX Runtime on the CPU.
    Onnx(OnnxEngineSettings),
    /// TensorRT through ONNX Runtime's TensorRT execution provider (spec A4, GPU): a
    /// pre-built engine for this GPU from the Loader, else a CUDA session serves while the
    /// engine is built, uploaded and switched to.
    Tensorrt(TensorrtEngineSettings),
    /// ONNX Runtime's CUDA execution provider, without TensorRT.
    Cuda(CudaEngineSettings),
    /// OpenVINO on the CPU (bf16 where the CPU has it).
    Openvino(OpenvinoEngineSettings),
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self::Auto(AutoEngineSettings::default())
    }
}

impl EngineConfig {
    /// The keys every engine reads.
    pub fn model_run(&self) -> &ModelRunSettings {
        match self {
            Self::Auto(auto) => &auto.model_run,
            Self::Onnx(onnx) => &onnx.model_run,
            Self::Tensorrt(tensorrt) => &tensorrt.model_run,
            Self::Cuda(cuda) => &cuda.model_run,
            Self::Openvino(openvino) => &openvino.model_run,
        }
    }

    pub fn nms_iou(&self) -> f32 {
        self.model_run().nms_iou
    }

    pub fn preprocess(&self) -> Preprocess {
        self.model_run().preprocess
    }
}

/// How a model is fed and read, whatever runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelRunSettings {
    /// Output layout: `auto` (from shapes and metadata), `end2end`, `ultralytics`, `yolov5`.
    pub layout: LayoutChoice,
    /// How a view reaches the model input: `letterbox` (Ultralytics, what YOLO models
    /// are trained with) or `stretch` (the original service's `blobFromImage`).
    pub preprocess: Preprocess,
    /// IoU above which NMS drops the weaker box of a class.
    pub nms_iou: f32,
    /// Views per engine call for a model whose input batch is dynamic. Unset: derived
    /// from the model's shapes, at most 8 (docs/pipeline.md §7); set: used as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_batch: Option<usize>,
}

impl Default for ModelRunSettings {
    fn default() -> Self {
        Self {
            layout: LayoutChoice::Auto,
            preprocess: Preprocess::default(),
            nms_iou: 0.7,
            max_batch: None,
        }
    }
}

/// `kind = "onnx"`: ONNX Runtime on the CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnnxEngineSettings {
    /// The ONNX Runtime shared library, loaded at run time.
    pub library: PathBuf,
    /// Threads per session for one operator; 0 = the machine's cores ÷ sessions.
    pub intra_threads: usize,
    /// Sessions run side by side (ONNX Runtime runs one call per session at a time).
    pub sessions: usize,
    /// Idle intra-op threads spin. Off: measured slower here (adapters bench, engine).
    pub intra_spinning: bool,
    /// Nice value of the inference threads (0 = as the process): above the async
    /// runtime's, so `/health` and streams answer at once while every core infers.
    pub inference_nice: i32,
    #[serde(flatten)]
    pub model_run: ModelRunSettings,
}

impl Default for OnnxEngineSettings {
    fn default() -> Self {
        Self {
            library: PathBuf::from("assets/onnxruntime/libonnxruntime.so.1.32.0"),
            intra_threads: 0,
            sessions: 1,
            intra_spinning: false,
            inference_nice: 5,
            model_run: ModelRunSettings::default(),
        }
    }
}

/// `kind = "auto"`: the libraries of both CPU engines; each runs with its own
/// defaults (threads: the machine's cores; OpenVINO's precision `auto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoEngineSettings {
    /// The ONNX Runtime shared library (the reference engine).
    pub library: PathBuf,
    /// `libopenvino_c.so.<version>`; without it ONNX Runtime serves, as `Warning`.
    pub openvino_library: PathBuf,
    /// OpenVINO's precision. `f32` (the default) gives ONNX Runtime's answers, so speed
    /// alone decides; `auto` lets bf16 compete where the CPU has it, for whoever accepts
    /// its small differences (it can tip a borderline tile merge: docs/engines.md).
    pub precision: PrecisionChoice,
    /// OpenVINO's compiled-model cache. Empty: off.
    pub cache_dir: PathBuf,
    /// Inference threads of either engine; 0 = the machine's cores.
    pub threads: usize,
    #[serde(flatten)]
    pub model_run: ModelRunSettings,
}

impl Default for AutoEngineSettings {
    fn default() -> Self {
        let openvino = OpenvinoEngineSettings::default();
        Self {
            library: OnnxEngineSettings::default().library,
            openvino_library: openvino.library,
            precision: PrecisionChoice::F32,
            cache_dir: openvino.cache_dir,
            threads: 0,
            model_run: ModelRunSettings::default(),
        }
    }
}

impl AutoEngineSettings {
    /// The ONNX Runtime contender's settings.
    pub fn onnx(&self) -> OnnxEngineConfig {
        (&OnnxEngineSettings {
            library: self.library.clone(),
            intra_threads: self.threads,
            model_run: self.model_run.clone(),
            ..OnnxEngineSettings::default()
        })
            .into()
    }

    /// The OpenVINO contender's settings.
    pub fn openvino(&self) -> OpenvinoEngineConfig {
        (&OpenvinoEngineSettings {
            library: self.openvino_library.clone(),
            precision: self.precision,
            cache_dir: self.cache_dir.clone(),
            threads: self.threads,
            model_run: self.model_run.clone(),
            ..OpenvinoEngineSettings::default()
        })
            .into()
    }
}

/// `kind = "openvino"`: OpenVINO on the CPU.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenvinoEngineSettings {
    /// `libopenvino_c.so.<version>` from the `openvino` wheel; its CPU plugin, ONNX
    /// frontend and TBB sit beside it.
    pub library: PathBuf,
    /// `auto` (bf16 where the CPU reports BF16, else f32), `f32`, `bf16` or `f16`.
    pub precision: PrecisionChoice,
    /// Inference threads per request; 0 = the machine's cores ÷ requests.
    pub threads: usize,
    /// Infer requests run side by side.
    pub requests: usize,
    /// OpenVINO's compiled-model cache: a restart loads instead of compiling. Empty: off.
    pub cache_dir: PathBuf,
    /// Nice value of the inference threads (0 = as the process).
    pub inference_nice: i32,
    /// Serve on ONNX Runtime when OpenVINO cannot start (its library missing or
    /// broken, a precision the CPU lacks): `Warning` with the reason. Off: `Error`.
    pub allow_onnx_fallback: bool,
    /// The ONNX Runtime library that fallback loads.
    pub onnx_library: PathBuf,
    #[serde(flatten)]
    pub model_run: ModelRunSettings,
}

impl OpenvinoEngineSettings {
    /// The fallback's ONNX Runtime settings, when one is allowed.
    pub fn onnx_fallback(&self) -> Option<OnnxEngineConfig> {
        self.allow_onnx_fallback.then(|| OnnxEngineConfig {
            library: self.onnx_library.clone(),
            layout: self.model_run.layout.fixed(),
            max_batch: self.model_run.max_batch,
            ..OnnxEngineConfig::default()
        })
    }
}

impl Default for OpenvinoEngineSettings {
    fn default() -> Self {
        Self {
            library: PathBuf::from("assets/openvino/libopenvino_c.so.2641"),
            precision: PrecisionChoice::Auto,
            threads: 0,
            requests: 1,
            cache_dir: PathBuf::from("cache/openvino"),
            inference_nice: 5,
            allow_onnx_fallback: false,
            onnx_library: OnnxEngineSettings::default().library,
            model_run: ModelRunSettings::default(),
        }
    }
}

impl From<&OpenvinoEngineSettings> for OpenvinoEngineConfig {
    fn from(openvino: &OpenvinoEngineSettings) -> Self {
        Self {
            library: openvino.library.clone(),
            precision: openvino.precision,
            threads: openvino.threads,
            requests: openvino.requests,
            cache_dir: (!openvino.cache_dir.as_os_str().is_empty())
                .then(|| openvino.cache_dir.clone()),
            layout: openvino.model_run.layout.fixed(),
            max_batch: openvino.model_run.max_batch,
            inference_nice: openvino.inference_nice,
        }
    }
}

/// The keys both GPU engines read, flattened into each of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuDeviceSettings {
    /// The GPU build of ONNX Runtime (from the `onnxruntime-gpu` wheel), loaded at run time.
    pub library: PathBuf,
    /// The CUDA driver library the GPU probe loads.
    pub cuda_driver: PathBuf,
    /// CUDA device ordinal.
    pub device_id: u32,
    /// With no usable GPU or GPU libraries, serve on the CPU (reported as `Warning`)
    /// instead of `Error`. Off: a GPU deployment that lost its GPU should be noticed.
    pub allow_cpu_fallback: bool,
}

impl Default for GpuDeviceSettings {
    fn default() -> Self {
        Self {
            library: PathBuf::from("/opt/onnxruntime/libonnxruntime.so"),
            cuda_driver: PathBuf::from("libcuda.so.1"),
            device_id: 0,
            allow_cpu_fallback: false,
        }
    }
}

/// `kind = "cuda"`: ONNX Runtime's CUDA execution provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CudaEngineSettings {
    #[serde(flatten)]
    pub gpu: GpuDeviceSettings,
    #[serde(flatten)]
    pub model_run: ModelRunSettings,
}

/// `kind = "tensorrt"`: the GPU keys and TensorRT's build settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TensorrtEngineSettings {
    #[serde(flatten)]
    pub gpu: GpuDeviceSettings,
    #[serde(flatten)]
    pub model_run: ModelRunSettings,
    /// Build in float16 where the GPU has fast float16.
    pub fp16: bool,
    /// Build in INT8 where the GPU can and `<model stem>.int8_calib.cache` is on the Loader.
    pub int8: bool,
    /// TensorRT's builder workspace limit, bytes.
    pub workspace_bytes: u64,
    /// Built engines and TensorRT's timing caches: keep it on a volume, so a restart
    /// on the same GPU does not rebuild.
    pub cache_dir: PathBuf,
}

impl Default for TensorrtEngineSettings {
    fn default() -> Self {
        Self {
            gpu: GpuDeviceSettings::default(),
            model_run: ModelRunSettings::default(),
            fp16: true,
            int8: false,
            workspace_bytes: 4 << 30,
            cache_dir: PathBuf::from("cache/engines"),
        }
    }
}

/// The `layout` key: detect the output layout, or fix it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LayoutChoice {
    #[default]
    Auto,
    End2end,
    Ultralytics,
    Yolov5,
}

impl LayoutChoice {
    /// The layout to use regardless of the model's shapes (`None`: detect it).
    pub fn fixed(self) -> Option<LayoutKind> {
        match self {
            Self::Auto => None,
            Self::End2end => Some(LayoutKind::EndToEnd),
            Self::Ultralytics => Some(LayoutKind::UltralyticsV8),
            Self::Yolov5 => Some(LayoutKind::YoloV5),
        }
    }
}

impl From<&OnnxEngineSettings> for OnnxEngineConfig {
    fn from(onnx: &OnnxEngineSettings) -> Self {
        Self {
            library: onnx.library.clone(),
            intra_threads: onnx.intra_threads,
            sessions: onnx.sessions,
            layout: onnx.model_run.layout.fixed(),
            max_batch: onnx.model_run.max_batch,
            intra_spinning: onnx.intra_spinning,
            inference_nice: onnx.inference_nice,
        }
    }
}

impl EngineConfig {
    /// The GPU device keys (`None` for the CPU engine).
    pub fn gpu(&self) -> Option<&GpuDeviceSettings> {
        match self {
            Self::Auto(_) | Self::Onnx(_) | Self::Openvino(_) => None,
            Self::Tensorrt(tensorrt) => Some(&tensorrt.gpu),
            Self::Cuda(cuda) => Some(&cuda.gpu),
        }
    }

    /// The ONNX Runtime settings of this engine's CPU sessions: the configured ones for
    /// `onnx`; for a GPU engine, one session on its library (the GPU runs one call at a
    /// time, and its CPU fallback uses the same library).
    pub fn onnx_runtime(&self) -> OnnxEngineConfig {
        match (self, self.gpu()) {
            (Self::Onnx(onnx), _) => onnx.into(),
            (Self::Auto(auto), _) => auto.onnx(),
            (_, Some(gpu)) => OnnxEngineConfig {
                library: gpu.library.clone(),
                layout: self.model_run().layout.fixed(),
                max_batch: self.model_run().max_batch,
                ..OnnxEngineConfig::default()
            },
            (_, None) => OnnxEngineConfig::default(),
        }
    }

    /// The GPU engine adapter's settings (`None` for the CPU engine). `cuda` builds no
    /// TensorRT engine, so it has no workspace or engine cache.
    pub fn gpu_runtime(&self) -> Option<GpuEngineConfig> {
        let gpu = self.gpu()?;
        let (workspace_bytes, cache_dir) = match self {
            Self::Tensorrt(tensorrt) => (tensorrt.workspace_bytes, tensorrt.cache_dir.clone()),
            Self::Auto(_) | Self::Onnx(_) | Self::Cuda(_) | Self::Openvino(_) => {
                (0, PathBuf::new())
            }
        };
        Some(GpuEngineConfig {
            onnx: self.onnx_runtime(),
            device_id: gpu.device_id,
            workspace_bytes,
            cache_dir,
        })
    }
}
