//! Reading what a model expects and produces from an ONNX Runtime session.

use domain::geometry::Size;
use domain::layout::{LayoutError, ModelMetadata, OutputLayout, detect_layout};
use ort::session::Session;
use ort::value::{TensorElementType, ValueType};
use ports::{ElementType, EngineError, ModelSpec};

use super::OnnxEngineConfig;
use super::batch::derive_batch;

/// Spec A4: the input size of a model whose input is dynamic and whose metadata is silent.
const FALLBACK_INPUT: u32 = 1280;

/// The spec, plus the output's name (the engine reads that output after a run).
pub(crate) struct ReadSpec {
    pub spec: ModelSpec,
    pub output_name: String,
    /// Why the batch is what it is (logged when the engine starts).
    pub batch_reason: String,
}

pub(crate) fn read_spec(
    session: &Session,
    config: &OnnxEngineConfig,
) -> Result<ReadSpec, EngineError> {
    let [input] = session.inputs() else {
        return Err(model(format!(
            "it has {} inputs; one image input is supported",
            session.inputs().len()
        )));
    };
    let (input_type, input_dims) = tensor(input.dtype(), "input")?;
    let element = match input_type {
        TensorElementType::Float32 => ElementType::F32,
        TensorElementType::Float16 => ElementType::F16,
        other => {
            return Err(model(format!(
                "input element type {other:?} is not float32 or float16"
            )));
        }
    };
    let &[_, channels, height, width] = input_dims.as_slice() else {
        return Err(model(format!("input shape {input_dims:?} is not NCHW")));
    };
    if channels > 0 && channels != 3 {
        return Err(model(format!("input has {channels} channels, not 3 (RGB)")));
    }

    let Some(output) = session.outputs().first() else {
        return Err(model("it has no outputs".into()));
    };
    let (output_type, output_dims) = tensor(output.dtype(), "output")?;
    if !matches!(
        output_type,
        TensorElementType::Float32 | TensorElementType::Float16
    ) {
        return Err(model(format!(
            "output element type {output_type:?} is not float32 or float16"
        )));
    }

    let metadata = metadata(session)?;
    let input_size = input_size(height, width, &metadata)?;
    let layout = layout(&output_dims, &metadata, config)?;
    let class_count = match layout {
        OutputLayout::UltralyticsV8 { classes } | OutputLayout::YoloV5 { classes } => classes,
        OutputLayout::EndToEnd => metadata.names_count().unwrap_or(0),
    };
    // Every tensor output counts: one fixed at batch 1 is enough to pin the batch.
    let outputs: Vec<(&str, Vec<i64>)> = session
        .outputs()
        .iter()
        .filter_map(|o| match o.dtype() {
            ValueType::Tensor { shape, .. } => Some((o.name(), shape.to_vec())),
            _ => None,
        })
        .collect();
    let outputs: Vec<(&str, &[i64])> = outputs.iter().map(|(n, d)| (*n, d.as_slice())).collect();
    let derived = derive_batch(&input_dims, &outputs, config.max_batch);
    Ok(ReadSpec {
        spec: ModelSpec {
            input_name: input.name().to_owned(),
            input_size,
            element,
            batch: derived.batch,
            layout,
            class_count,
        },
        output_name: output.name().to_owned(),
        batch_reason: derived.reason,
    })
}

fn tensor(dtype: &ValueType, what: &str) -> Result<(TensorElementType, Vec<i64>), EngineError> {
    match dtype {
        ValueType::Tensor { ty, shape, .. } => Ok((*ty, shape.to_vec())),
        other => Err(model(format!("its {what} is not a tensor but {other:?}"))),
    }
}

fn metadata(session: &Session) -> Result<ModelMetadata, EngineError> {
    let raw = session
        .metadata()
        .map_err(|e| model(format!("metadata unreadable: {e}")))?;
    let keys = raw
        .custom_keys()
        .map_err(|e| model(format!("metadata unreadable: {e}")))?;
    let pairs: Vec<(String, String)> = keys
        .into_iter()
        .filter_map(|key| raw.custom(&key).map(|value| (key, value)))
        .collect();
    Ok(ModelMetadata::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

/// Static dimensions win; a dynamic one comes from the metadata's `imgsz`, else 1280.
fn input_size(height: i64, width: i64, metadata: &ModelMetadata) -> Result<Size, EngineError> {
    let (meta_w, meta_h) = metadata
        .imgsz()
        .map_or((FALLBACK_INPUT, FALLBACK_INPUT), |s| {
            (s.width(), s.height())
        });
    let pick = |dim: i64, fallback: u32| {
        if dim > 0 {
            u32::try_from(dim).ok()
        } else {
            Some(fallback)
        }
    };
    let (Some(w), Some(h)) = (pick(width, meta_w), pick(height, meta_h)) else {
        return Err(model(format!(
            "input size {width}×{height} is out of range"
        )));
    };
    Size::new(w, h).map_err(|e| model(format!("input size {w}×{h}: {e}")))
}

fn layout(
    dims: &[i64],
    metadata: &ModelMetadata,
    config: &OnnxEngineConfig,
) -> Result<OutputLayout, EngineError> {
    let Some(forced) = config.layout else {
        return detect_layout(dims, metadata)
            .map_err(|e| model(format!("output {dims:?} has no known layout: {e}")));
    };
    // The class count comes from the shape; where that dimension is dynamic, from the names.
    match OutputLayout::for_shape(forced, dims) {
        Err(LayoutError::ShapeMismatch { .. }) if metadata.names_count().is_some() => {
            Ok(forced.with_classes(metadata.names_count().unwrap_or(0)))
        }
        other => other,
    }
    .map_err(|e| {
        model(format!(
            "layout override {} for output {dims:?}: {e}",
            forced.with_classes(0).name()
        ))
    })
}

fn model(reason: String) -> EngineError {
    EngineError::Model(reason)
}
