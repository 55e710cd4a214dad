//! The GPU the service runs on (spec A4): what it is, and how its TensorRT engine is named.

use std::path::Path;

/// What start-up learns about the GPU. The engine file name follows from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GpuInfo {
    /// Marketing name, e.g. `NVIDIA H200`.
    pub name: String,
    /// Compute capability, e.g. 9.0 for Hopper, 8.9 for Ada.
    pub cc_major: u32,
    pub cc_minor: u32,
    /// Streaming multiprocessors: the same model differs from a cut-down chip of one family.
    pub sm_count: u32,
}

/// The precision a TensorRT engine is built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Float32 layers only (a GPU without fast float16).
    Fp32,
    Fp16,
    /// INT8 with a calibration cache (float16 where INT8 is not possible).
    Int8,
}

impl GpuInfo {
    /// Fast float16 (TensorRT's `platformHasFastFp16`): compute capability 5.3 and later.
    pub fn supports_fp16(&self) -> bool {
        (self.cc_major, self.cc_minor) >= (5, 3)
    }

    /// INT8 tensor math (`platformHasFastInt8`): compute capability 6.1 and later.
    pub fn supports_int8(&self) -> bool {
        (self.cc_major, self.cc_minor) >= (6, 1)
    }

    /// `<model stem>.cc_<major>.<minor>_sm_<count>.engine`, `.int8.engine` for INT8
    /// (spec A4), e.g. `azaion.cc_8.9_sm_132.engine`.
    pub fn engine_name(&self, model_name: &str, precision: Precision) -> String {
        let int8 = if precision == Precision::Int8 {
            ".int8"
        } else {
            ""
        };
        format!(
            "{}.cc_{}.{}_sm_{}{int8}.engine",
            model_stem(model_name),
            self.cc_major,
            self.cc_minor,
            self.sm_count
        )
    }
}

/// `<model stem>.int8_calib.cache`: the INT8 calibration cache on the Loader (spec A4).
pub fn calibration_cache_name(model_name: &str) -> String {
    format!("{}.int8_calib.cache", model_stem(model_name))
}

/// `azaion.onnx` → `azaion`; a name without an extension stays as it is.
pub fn model_stem(model_name: &str) -> &str {
    Path::new(model_name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(model_name)
}

/// No usable GPU: no driver, no device, or the driver refused. The reason says what a
/// person can do about it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("no usable GPU: {0}")]
pub struct GpuUnavailable(pub String);

/// Asks the GPU what it is. Blocking (loads the driver library on first use).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait GpuProbe: Send + Sync {
    fn probe(&self) -> Result<GpuInfo, GpuUnavailable>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> GpuInfo {
        GpuInfo {
            name: "NVIDIA GeForce RTX 4090".into(),
            cc_major: 8,
            cc_minor: 9,
            sm_count: 132,
        }
    }

    #[test]
    fn engine_names_follow_the_spec() {
        let gpu = ada();
        assert_eq!(
            gpu.engine_name("azaion.onnx", Precision::Fp16),
            "azaion.cc_8.9_sm_132.engine"
        );
        assert_eq!(
            gpu.engine_name("azaion.onnx", Precision::Fp32),
            "azaion.cc_8.9_sm_132.engine"
        );
        assert_eq!(
            gpu.engine_name("azaion.onnx", Precision::Int8),
            "azaion.cc_8.9_sm_132.int8.engine"
        );
        assert_eq!(
            gpu.engine_name("models.v2/yolo.onnx", Precision::Fp16),
            "yolo.cc_8.9_sm_132.engine"
        );
        assert_eq!(
            calibration_cache_name("azaion.onnx"),
            "azaion.int8_calib.cache"
        );
        assert_eq!(model_stem("plain"), "plain");
    }

    #[test]
    fn precisions_follow_the_compute_capability() {
        let old = GpuInfo {
            cc_major: 5,
            cc_minor: 2,
            ..ada()
        };
        assert!(!old.supports_fp16() && !old.supports_int8());
        let pascal = GpuInfo {
            cc_major: 6,
            cc_minor: 1,
            ..ada()
        };
        assert!(pascal.supports_fp16() && pascal.supports_int8());
        let jetson_nano = GpuInfo {
            cc_major: 5,
            cc_minor: 3,
            ..ada()
        };
        assert!(jetson_nano.supports_fp16() && !jetson_nano.supports_int8());
    }
}
