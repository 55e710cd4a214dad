//! ONNX Runtime on the CPU, through `ort` with the library loaded at run time.

mod config;
mod engine;
mod factory;
mod gpu;
mod runtime;
mod spec;

pub use crate::engine::model::batch::DEFAULT_MAX_BATCH;
pub use config::OnnxEngineConfig;
pub use engine::OnnxEngine;
pub use factory::OnnxEngineFactory;
pub use gpu::{GpuEngineConfig, GpuEngineFactory};
