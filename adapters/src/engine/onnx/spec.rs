//! Reading what a model expects and produces from an ONNX Runtime session; the rules
//! are the engines' shared ones (`engine::model`).

use domain::layout::ModelMetadata;
use ort::session::Session;
use ort::value::{TensorElementType, ValueType};
use ports::EngineError;

use super::OnnxEngineConfig;
use crate::engine::model::{DeclaredTensor, ReadSpec, SpecRules, TensorElement};

pub(crate) fn read_spec(
    session: &Session,
    config: &OnnxEngineConfig,
) -> Result<ReadSpec, EngineError> {
    let inputs = session
        .inputs()
        .iter()
        .map(|input| declared(input.name(), input.dtype(), "input"))
        .collect::<Result<Vec<_>, _>>()?;
    // The first output must be a tensor (the detections); other non-tensor outputs are
    // not the engine's business.
    let mut outputs = Vec::new();
    for (index, output) in session.outputs().iter().enumerate() {
        match declared(output.name(), output.dtype(), "output") {
            Ok(tensor) => outputs.push(tensor),
            Err(e) if index == 0 => return Err(e),
            Err(_) => {}
        }
    }
    let rules = SpecRules {
        layout: config.layout,
        max_batch: config.max_batch,
    };
    crate::engine::model::read_spec(&inputs, &outputs, &metadata(session)?, rules)
}

fn declared(name: &str, dtype: &ValueType, what: &str) -> Result<DeclaredTensor, EngineError> {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => Ok(DeclaredTensor {
            name: name.to_owned(),
            element: match ty {
                TensorElementType::Float32 => TensorElement::F32,
                TensorElementType::Float16 => TensorElement::F16,
                other => TensorElement::Other(format!("{other:?}")),
            },
            dims: shape.to_vec(),
        }),
        other => Err(EngineError::Model(format!(
            "its {what} is not a tensor but {other:?}"
        ))),
    }
}

fn metadata(session: &Session) -> Result<ModelMetadata, EngineError> {
    let unreadable = |e: ort::Error| EngineError::Model(format!("metadata unreadable: {e}"));
    let raw = session.metadata().map_err(unreadable)?;
    let keys = raw.custom_keys().map_err(unreadable)?;
    let pairs: Vec<(String, String)> = keys
        .into_iter()
        .filter_map(|key| raw.custom(&key).map(|value| (key, value)))
        .collect();
    Ok(ModelMetadata::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}
