//! Inference engines.

pub mod onnx;
