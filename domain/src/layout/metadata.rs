//! The Ultralytics keys of an ONNX model's custom metadata.

use std::collections::BTreeMap;

use super::literal::{Literal, LiteralError, parse_literal};
use crate::geometry::{Size, SizeError};

/// A metadata value that could not be read; the model may still load when
/// the shape alone decides the layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model metadata {key}: {problem}")]
pub struct MetadataIssue {
    pub key: String,
    pub problem: MetadataProblem,
}

/// What is wrong with one metadata value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataProblem {
    #[error("{0}")]
    Unparsable(#[from] LiteralError),
    #[error("expected a dict of class index to name")]
    NotANameTable,
    #[error("expected integer keys and string names")]
    BadNameEntry,
    #[error("expected [height, width] of positive integers")]
    NotASize,
    #[error("{0}")]
    EmptySize(#[from] SizeError),
    #[error("expected True or False, got {0:?}")]
    NotABool(String),
    #[error("expected an integer, got {0:?}")]
    NotAnInteger(String),
}

/// What the model's metadata says about itself. Unknown keys are ignored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelMetadata {
    names: Option<BTreeMap<u32, String>>,
    imgsz: Option<Size>,
    stride: Option<u32>,
    end2end: Option<bool>,
    task: Option<String>,
    author: Option<String>,
    issues: Vec<MetadataIssue>,
}

fn as_u32(v: &Literal) -> Option<u32> {
    match v {
        Literal::Int(i) => u32::try_from(*i).ok(),
        _ => None,
    }
}

fn parse_names(text: &str) -> Result<BTreeMap<u32, String>, MetadataProblem> {
    let lit = parse_literal(text)?;
    let pairs: Vec<(Literal, Literal)> = match lit {
        Literal::Dict(items) => items,
        // Some exporters write a plain list of names.
        Literal::List(items) => (0i64..).map(Literal::Int).zip(items).collect(),
        _ => return Err(MetadataProblem::NotANameTable),
    };
    let mut names = BTreeMap::new();
    for (k, v) in pairs {
        let (Some(id), Literal::Str(name)) = (as_u32(&k), v) else {
            return Err(MetadataProblem::BadNameEntry);
        };
        names.insert(id, name);
    }
    Ok(names)
}

fn parse_imgsz(text: &str) -> Result<Size, MetadataProblem> {
    let lit = parse_literal(text)?;
    // Ultralytics writes [height, width]; a single number means square.
    let (h, w) = match &lit {
        Literal::List(v) if v.len() == 2 => (as_u32(&v[0]), as_u32(&v[1])),
        Literal::List(v) if v.len() == 1 => (as_u32(&v[0]), as_u32(&v[0])),
        single => (as_u32(single), as_u32(single)),
    };
    match (w, h) {
        (Some(w), Some(h)) => Ok(Size::new(w, h)?),
        _ => Err(MetadataProblem::NotASize),
    }
}

fn parse_bool(text: &str) -> Result<bool, MetadataProblem> {
    match parse_literal(text) {
        Ok(Literal::Bool(b)) => Ok(b),
        Ok(Literal::Int(0)) => Ok(false),
        Ok(Literal::Int(1)) => Ok(true),
        _ => Err(MetadataProblem::NotABool(text.to_owned())),
    }
}

fn parse_string(text: &str) -> String {
    // Plain strings are usually written bare; quoted ones are unwrapped.
    match parse_literal(text) {
        Ok(Literal::Str(s)) => s,
        _ => text.trim().to_owned(),
    }
}

impl ModelMetadata {
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> ModelMetadata {
        let mut m = ModelMetadata::default();
        for (key, value) in pairs {
            let result = match key {
                "names" => parse_names(value).map(|n| m.names = Some(n)),
                "imgsz" => parse_imgsz(value).map(|s| m.imgsz = Some(s)),
                "stride" => match parse_literal(value).ok().as_ref().and_then(as_u32) {
                    Some(s) => {
                        m.stride = Some(s);
                        Ok(())
                    }
                    None => Err(MetadataProblem::NotAnInteger(value.to_owned())),
                },
                "end2end" => parse_bool(value).map(|b| m.end2end = Some(b)),
                "task" => {
                    m.task = Some(parse_string(value));
                    Ok(())
                }
                "author" => {
                    m.author = Some(parse_string(value));
                    Ok(())
                }
                _ => Ok(()),
            };
            if let Err(problem) = result {
                m.issues.push(MetadataIssue {
                    key: key.to_owned(),
                    problem,
                });
            }
        }
        m
    }

    /// Class index → name, when the model names its classes.
    pub fn names(&self) -> Option<&BTreeMap<u32, String>> {
        self.names.as_ref()
    }

    pub fn names_count(&self) -> Option<usize> {
        self.names.as_ref().map(BTreeMap::len)
    }

    /// Training input size (width × height) for dynamic-input models.
    pub fn imgsz(&self) -> Option<Size> {
        self.imgsz
    }

    pub fn stride(&self) -> Option<u32> {
        self.stride
    }

    pub fn end2end(&self) -> Option<bool> {
        self.end2end
    }

    pub fn task(&self) -> Option<&str> {
        self.task.as_deref()
    }

    /// Values present but unreadable, for logging.
    pub fn issues(&self) -> &[MetadataIssue] {
        &self.issues
    }

    /// Keys only the Ultralytics (v8 and later) exporter writes; YOLOv5
    /// writes just `stride` and `names`.
    pub fn is_ultralytics(&self) -> bool {
        self.task.is_some()
            || self.imgsz.is_some()
            || self.end2end.is_some()
            || self
                .author
                .as_deref()
                .is_some_and(|a| a.to_ascii_lowercase().contains("ultralytics"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ultralytics_metadata() {
        let m = ModelMetadata::from_pairs([
            ("author", "Ultralytics"),
            ("task", "detect"),
            ("stride", "32"),
            ("imgsz", "[480, 640]"),
            ("names", "{0: 'Normal', 1: 'Fall'}"),
            ("end2end", "False"),
            ("args", "{'batch': 1, 'half': False}"),
        ]);
        assert_eq!(m.names_count(), Some(2));
        assert_eq!(m.names().unwrap()[&1], "Fall");
        assert_eq!(m.imgsz(), Some(Size::new(640, 480).unwrap()));
        assert_eq!(m.stride(), Some(32));
        assert_eq!(m.end2end(), Some(false));
        assert_eq!(m.task(), Some("detect"));
        assert!(m.is_ultralytics());
        assert!(m.issues().is_empty());
    }

    #[test]
    fn yolov5_metadata_is_not_ultralytics_like() {
        let m = ModelMetadata::from_pairs([("stride", "32"), ("names", "['a', 'b', 'c']")]);
        assert_eq!(m.names_count(), Some(3));
        assert!(!m.is_ultralytics());
    }

    #[test]
    fn garbage_is_reported_not_fatal() {
        let m = ModelMetadata::from_pairs([
            ("names", "{0: 'a'"),
            ("imgsz", "[0, 640]"),
            ("stride", "x"),
            ("end2end", "maybe"),
        ]);
        assert_eq!(m.names(), None);
        let keys: Vec<&str> = m.issues().iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["names", "imgsz", "stride", "end2end"]);
        assert_eq!(
            m.issues()[0].to_string(),
            "model metadata names: expected ',' or '}' at character 7"
        );
    }
}
