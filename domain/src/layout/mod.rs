//! Model output layouts: detection from shape and metadata, configuration
//! override, and decoding into candidates (docs/pipeline.md §3).

mod decode;
mod literal;
mod metadata;

pub use decode::decode_candidates;
pub use literal::{Literal, LiteralError, parse_literal};
pub use metadata::{MetadataIssue, MetadataProblem, ModelMetadata};

/// How the raw output tensor is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLayout {
    /// `[B, N, 6]`: x1, y1, x2, y2, conf, cls; already NMS'd.
    EndToEnd,
    /// `[B, 4 + classes, N]`.
    UltralyticsV8 { classes: usize },
    /// `[B, N, 5 + classes]`.
    YoloV5 { classes: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("model output shape {shape} is not [batch, a, b]")]
    Rank { shape: String },
    #[error(
        "cannot tell the layout of model output shape {shape}: {reason}; set the layout override (end2end, ultralytics or yolov5)"
    )]
    Ambiguous { shape: String, reason: &'static str },
    #[error(
        "model output shape {shape} reads as {layout} with {from_shape} classes but the model metadata names {names} classes"
    )]
    ClassCountMismatch {
        shape: String,
        layout: &'static str,
        from_shape: usize,
        names: usize,
    },
    #[error("output layout {layout} does not fit output shape {shape}")]
    ShapeMismatch { layout: &'static str, shape: String },
    #[error("output buffer has {got} values but shape {shape} needs {expected}")]
    BufferLength {
        shape: String,
        expected: usize,
        got: usize,
    },
    #[error("batch index {index} is outside the output batch of {batch}")]
    BatchIndex { index: usize, batch: usize },
}

pub(crate) fn shape_text<T: std::fmt::Display>(dims: &[T]) -> String {
    let parts: Vec<String> = dims.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

impl OutputLayout {
    pub fn needs_nms(&self) -> bool {
        !matches!(self, OutputLayout::EndToEnd)
    }

    pub fn name(&self) -> &'static str {
        match self {
            OutputLayout::EndToEnd => "end2end",
            OutputLayout::UltralyticsV8 { .. } => "ultralytics",
            OutputLayout::YoloV5 { .. } => "yolov5",
        }
    }

    /// Class count where the layout carries one.
    pub fn classes(&self) -> Option<usize> {
        match self {
            OutputLayout::EndToEnd => None,
            OutputLayout::UltralyticsV8 { classes } | OutputLayout::YoloV5 { classes } => {
                Some(*classes)
            }
        }
    }

    /// The configuration's override, with the class count read off the output shape.
    pub fn for_shape(kind: LayoutKind, output_dims: &[i64]) -> Result<OutputLayout, LayoutError> {
        let layout = kind.with_classes(0);
        let shape = || shape_text(output_dims);
        let dim = |i: usize| output_dims.get(i).and_then(|d| usize::try_from(*d).ok());
        if output_dims.len() != 3 {
            return Err(LayoutError::Rank { shape: shape() });
        }
        let mismatch = || LayoutError::ShapeMismatch {
            layout: layout.name(),
            shape: shape(),
        };
        match layout {
            OutputLayout::EndToEnd => Ok(layout),
            OutputLayout::UltralyticsV8 { .. } => dim(1)
                .filter(|a| *a > 4)
                .map(|a| OutputLayout::UltralyticsV8 { classes: a - 4 })
                .ok_or_else(mismatch),
            OutputLayout::YoloV5 { .. } => dim(2)
                .filter(|b| *b > 5)
                .map(|b| OutputLayout::YoloV5 { classes: b - 5 })
                .ok_or_else(mismatch),
        }
    }
}

/// An output layout named without its class count: the configuration's override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    EndToEnd,
    UltralyticsV8,
    YoloV5,
}

impl LayoutKind {
    pub fn with_classes(self, classes: usize) -> OutputLayout {
        match self {
            LayoutKind::EndToEnd => OutputLayout::EndToEnd,
            LayoutKind::UltralyticsV8 => OutputLayout::UltralyticsV8 { classes },
            LayoutKind::YoloV5 => OutputLayout::YoloV5 { classes },
        }
    }
}

/// Reads the layout off the output shape (`-1` = dynamic) and metadata.
///
/// Order: `end2end: True` → end-to-end; with class names, `[B, 4+nc, N]` →
/// v8, else (non-Ultralytics metadata) `[B, N, 5+nc]` → v5 or `[B, N, 6]` →
/// end-to-end, else an Ultralytics model is v8 with a class-count mismatch;
/// without names, `[B, N, 6]` → end-to-end, then v8 when the last dimension
/// is clearly the anchor count (at least twice the first), else v5. Small
/// nameless shapes read as v5, like the reference implementation.
pub fn detect_layout(
    output_dims: &[i64],
    metadata: &ModelMetadata,
) -> Result<OutputLayout, LayoutError> {
    let shape = || shape_text(output_dims);
    if output_dims.len() != 3 || output_dims.iter().any(|d| *d == 0 || *d < -1) {
        return Err(LayoutError::Rank { shape: shape() });
    }
    let known = |d: i64| usize::try_from(d).ok();
    let (a, b) = (known(output_dims[1]), known(output_dims[2]));
    let ambiguous = |reason| LayoutError::Ambiguous {
        shape: shape(),
        reason,
    };

    if metadata.end2end() == Some(true) {
        return match b {
            Some(6) | None => Ok(OutputLayout::EndToEnd),
            Some(_) => Err(ambiguous(
                "the metadata says end2end but rows are not 6 wide",
            )),
        };
    }
    let e2e_allowed = metadata.end2end() != Some(false);

    if let Some(n) = metadata.names_count() {
        if a == Some(4 + n) {
            return Ok(OutputLayout::UltralyticsV8 { classes: n });
        }
        if !metadata.is_ultralytics() {
            if b == Some(5 + n) {
                return Ok(OutputLayout::YoloV5 { classes: n });
            }
            if b == Some(6) && e2e_allowed {
                return Ok(OutputLayout::EndToEnd);
            }
            return Err(ambiguous(
                "the metadata class names fit neither [B, 4+nc, N] nor [B, N, 5+nc]",
            ));
        }
        return match a {
            Some(a) if a > 4 => Err(LayoutError::ClassCountMismatch {
                shape: shape(),
                layout: "ultralytics",
                from_shape: a - 4,
                names: n,
            }),
            _ => Err(ambiguous("the class dimension is dynamic or too small")),
        };
    }

    if b == Some(6) && e2e_allowed {
        return Ok(OutputLayout::EndToEnd);
    }
    match (a, b) {
        (Some(a), Some(b)) if a > 4 && (metadata.is_ultralytics() || b >= 2 * a) => {
            Ok(OutputLayout::UltralyticsV8 { classes: a - 4 })
        }
        (Some(a), None) if a > 4 => Ok(OutputLayout::UltralyticsV8 { classes: a - 4 }),
        (_, Some(b)) if b > 5 && !metadata.is_ultralytics() => {
            Ok(OutputLayout::YoloV5 { classes: b - 5 })
        }
        _ => Err(ambiguous("no known layout fits")),
    }
}

#[cfg(test)]
#[path = "detect_tests.rs"]
mod tests;
