//! OpenVINO on the CPU, through Intel's `openvino` crate with `libopenvino_c` loaded at
//! run time (from the PyPI `openvino` wheel, which `cargo xtask fetch` unpacks). It
//! reads the same ONNX models as the ONNX Runtime engine, with the same rules
//! (`engine::model`), and may compute in bfloat16 where the CPU has it.

mod config;
mod engine;
mod factory;
mod library;

pub use config::{OpenvinoEngineConfig, PrecisionChoice};
pub use engine::OpenvinoEngine;
pub use factory::OpenvinoEngineFactory;
