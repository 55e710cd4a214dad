//! `detections gpu-info`: what the GPU probe sees and the engine file this host would
//! use, as JSON; exit code 1 without a usable GPU.

use std::process::ExitCode;

use adapters::gpu::CudaDriverProbe;
use ports::{GpuProbe, Precision};

use crate::config::{Config, EngineConfig};

pub fn gpu_info(config: &Config) -> ExitCode {
    let gpu_settings = config.engine.gpu().cloned().unwrap_or_default();
    let int8 = matches!(&config.engine, EngineConfig::Tensorrt(tensorrt) if tensorrt.int8);
    match CudaDriverProbe::new(&gpu_settings.cuda_driver, gpu_settings.device_id).probe() {
        Ok(gpu) => {
            let precision = if int8 && gpu.supports_int8() {
                Precision::Int8
            } else {
                Precision::Fp16
            };
            let info = serde_json::json!({
                "name": gpu.name,
                "compute_capability": format!("{}.{}", gpu.cc_major, gpu.cc_minor),
                "multiprocessors": gpu.sm_count,
                "fp16": gpu.supports_fp16(),
                "int8": gpu.supports_int8(),
                "engine_file": gpu.engine_name(&config.model.name, precision),
            });
            println!("{info}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("detections: {e}");
            ExitCode::FAILURE
        }
    }
}
