//! Detections in the whole original frame, and raw model candidates.

use crate::geometry::{NormBox, PixelBox};

/// The model's class index, weather offset included (spec A10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(u32);

impl ClassId {
    pub fn new(value: u32) -> ClassId {
        ClassId(value)
    }

    pub fn value(self) -> u32 {
        self.0
    }
}

/// A confidence in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Confidence(f64);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("confidence must be a number between 0 and 1, got {0}")]
pub struct ConfidenceError(pub f64);

impl Confidence {
    pub fn new(value: f64) -> Result<Confidence, ConfidenceError> {
        if (0.0..=1.0).contains(&value) {
            Ok(Confidence(value))
        } else {
            Err(ConfidenceError(value))
        }
    }

    pub fn value(self) -> f64 {
        self.0
    }
}

/// One detection: a normalised box of the whole frame, its class and
/// confidence (spec A5, without the label which comes from classes.json).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    bbox: NormBox,
    class: ClassId,
    confidence: Confidence,
}

impl Detection {
    pub fn new(bbox: NormBox, class: ClassId, confidence: Confidence) -> Detection {
        Detection {
            bbox,
            class,
            confidence,
        }
    }

    pub fn bbox(&self) -> &NormBox {
        &self.bbox
    }

    pub fn class(&self) -> ClassId {
        self.class
    }

    pub fn confidence(&self) -> Confidence {
        self.confidence
    }
}

/// A decoded model output in model-input pixels, before NMS and mapping
/// back to the frame (docs/pipeline.md §3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub bbox: PixelBox,
    pub score: f32,
    pub class: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_range() {
        assert!(Confidence::new(0.0).is_ok());
        assert!(Confidence::new(1.0).is_ok());
        assert_eq!(
            Confidence::new(1.5).unwrap_err().to_string(),
            "confidence must be a number between 0 and 1, got 1.5"
        );
        assert!(Confidence::new(f64::NAN).is_err());
    }

    #[test]
    fn getters() {
        let b = NormBox::new(0.5, 0.5, 0.1, 0.2).unwrap();
        let d = Detection::new(b, ClassId::new(21), Confidence::new(0.9).unwrap());
        assert_eq!(d.class().value(), 21);
        assert_eq!(d.confidence().value(), 0.9);
        assert_eq!(d.bbox().h(), 0.2);
    }
}
