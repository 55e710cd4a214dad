//! Inference engines.

pub(crate) mod files;
pub(crate) mod model;
pub mod onnx;
pub mod openvino;
pub(crate) mod priority;
