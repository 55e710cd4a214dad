//! The [`ModelSpec`] of a model from its declared tensors: input size (spec A4), element
//! type, output layout, class count and batch.

use domain::geometry::Size;
use domain::layout::{LayoutError, LayoutKind, ModelMetadata, OutputLayout, detect_layout};
use ports::{BatchSize, ElementType, EngineError, InputTensor, ModelSpec};

use super::batch::derive_batch;

/// Spec A4: the input size of a model whose input is dynamic and whose metadata is silent.
const FALLBACK_INPUT: u32 = 1280;

/// A tensor's element type as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TensorElement {
    F32,
    F16,
    /// Anything else, by the engine's name for it (refused, with that name).
    Other(String),
}

/// A tensor the model declares; a dimension ≤ 0 is dynamic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeclaredTensor {
    pub name: String,
    pub element: TensorElement,
    pub dims: Vec<i64>,
}

/// What the operator decided over the model's own word.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SpecRules {
    /// Forces the output layout instead of detecting it.
    pub layout: Option<LayoutKind>,
    /// Views per call for a dynamic batch (`batch::derive_batch`).
    pub max_batch: Option<usize>,
}

/// The spec, plus the output's name (the engine reads that output after a run).
pub(crate) struct ReadSpec {
    pub spec: ModelSpec,
    pub output_name: String,
    /// Why the batch is what it is (logged when the engine starts).
    pub batch_reason: String,
}

/// `outputs` in the model's order: the first is the detections; every one counts for
/// the batch (one fixed at batch 1 is enough to pin it).
pub(crate) fn read_spec(
    inputs: &[DeclaredTensor],
    outputs: &[DeclaredTensor],
    metadata: &ModelMetadata,
    rules: SpecRules,
) -> Result<ReadSpec, EngineError> {
    let [input] = inputs else {
        return Err(model(format!(
            "it has {} inputs; one image input is supported",
            inputs.len()
        )));
    };
    let element = match &input.element {
        TensorElement::F32 => ElementType::F32,
        TensorElement::F16 => ElementType::F16,
        TensorElement::Other(other) => {
            return Err(model(format!(
                "input element type {other} is not float32 or float16"
            )));
        }
    };
    let &[_, channels, height, width] = input.dims.as_slice() else {
        return Err(model(format!("input shape {:?} is not NCHW", input.dims)));
    };
    if channels > 0 && channels != 3 {
        return Err(model(format!("input has {channels} channels, not 3 (RGB)")));
    }
    let Some(output) = outputs.first() else {
        return Err(model("it has no outputs".into()));
    };
    if let TensorElement::Other(other) = &output.element {
        return Err(model(format!(
            "output element type {other} is not float32 or float16"
        )));
    }
    let input_size = input_size(height, width, metadata)?;
    let layout = layout(&output.dims, metadata, rules.layout)?;
    let class_count = match layout {
        OutputLayout::UltralyticsV8 { classes } | OutputLayout::YoloV5 { classes } => classes,
        OutputLayout::EndToEnd => metadata.names_count().unwrap_or(0),
    };
    let shapes: Vec<(&str, &[i64])> = outputs
        .iter()
        .map(|o| (o.name.as_str(), o.dims.as_slice()))
        .collect();
    let derived = derive_batch(&input.dims, &shapes, rules.max_batch);
    Ok(ReadSpec {
        spec: ModelSpec {
            input_name: input.name.clone(),
            input_size,
            element,
            batch: derived.batch,
            layout,
            class_count,
        },
        output_name: output.name.clone(),
        batch_reason: derived.reason,
    })
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
    forced: Option<LayoutKind>,
) -> Result<OutputLayout, EngineError> {
    let Some(forced) = forced else {
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

/// The reason inside an [`EngineError::Model`], without its prefix.
pub(crate) fn model_reason(error: &EngineError) -> String {
    match error {
        EngineError::Model(reason) => reason.clone(),
        other => other.to_string(),
    }
}

fn model(reason: String) -> EngineError {
    EngineError::Model(reason)
}

/// A call the loaded model can take: a batch its spec allows, its element type.
pub(crate) fn check_input(spec: &ModelSpec, input: &InputTensor) -> Result<(), EngineError> {
    let batch = input.batch();
    let batch_ok = match spec.batch {
        BatchSize::Fixed(n) => batch == n,
        BatchSize::Dynamic { max } => batch <= max,
    };
    if !batch_ok {
        return Err(EngineError::Inference(format!(
            "batch of {batch} does not fit the model's {:?}",
            spec.batch
        )));
    }
    if input.element() != spec.element {
        return Err(EngineError::Inference(format!(
            "input is {:?}, the model takes {:?}",
            input.element(),
            spec.element
        )));
    }
    Ok(())
}

/// A failed run. At a batch above one, a runtime's shape and dimension errors (a
/// Squeeze or Reshape of the batch axis: ONNX Runtime's "Dimension of input 0 must be 1
/// instead of 2", "cannot be reshaped"; OpenVINO's "conflicts with the reshape
/// pattern") mean the graph does not run at that batch: the core then sends one view
/// per call. This is the one place that reads the runtimes' messages.
pub(crate) fn run_error(message: &str, batch: usize) -> EngineError {
    const SHAPE_WORDS: [&str; 4] = ["shape", "dimension", "broadcast", "invalid dims"];
    let lower = message.to_ascii_lowercase();
    if batch > 1 && SHAPE_WORDS.iter().any(|w| lower.contains(w)) {
        EngineError::BatchRejected {
            batch,
            reason: message.to_owned(),
        }
    } else {
        EngineError::Inference(message.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQUEEZE: &str = "Non-zero status code returned while running Squeeze node. \
        Status Message: input_shape[i] == 1 was false. Dimension of input 0 must be 1 instead of 2.";

    #[test]
    fn a_shape_error_at_a_batch_above_one_is_a_rejected_batch() {
        assert_eq!(
            run_error(SQUEEZE, 2),
            EngineError::BatchRejected {
                batch: 2,
                reason: SQUEEZE.into()
            }
        );
        let reshape = "Reshape node: The input tensor cannot be reshaped to the requested \
            shape. Input shape:{2,6}, requested shape:{1,6}";
        assert!(matches!(
            run_error(reshape, 4),
            EngineError::BatchRejected { batch: 4, .. }
        ));
        let openvino = "[CPU] Reshape node with name '/model.22/dfl/Reshape' Check \
            'input data (1.64.16800) conflicts with the reshape pattern (1.4.16.8400)'";
        assert!(matches!(
            run_error(openvino, 2),
            EngineError::BatchRejected { batch: 2, .. }
        ));
    }

    #[test]
    fn other_errors_and_batch_one_stay_inference_errors() {
        assert!(matches!(run_error(SQUEEZE, 1), EngineError::Inference(_)));
        assert!(matches!(
            run_error("bad allocation", 4),
            EngineError::Inference(_)
        ));
    }
}
