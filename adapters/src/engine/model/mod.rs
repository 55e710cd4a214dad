//! What a model expects and produces, from the tensors it declares and its metadata:
//! the same rules for every engine that reads ONNX models (ONNX Runtime, OpenVINO), so
//! both see one model the same way.

pub(crate) mod batch;
pub(crate) mod metadata;
mod spec;

pub(crate) use spec::{
    DeclaredTensor, ReadSpec, SpecRules, TensorElement, check_input, model_reason, read_spec,
    run_error,
};
