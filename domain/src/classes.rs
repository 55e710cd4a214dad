//! classes.json (spec A10): parsing with errors that say what and where,
//! and the weather-expanded lookup by model class index.

use serde::Serialize;
use serde_json::{Map, Value};

/// Ids must leave room for the weather offsets (+20 Winter, +40 Night).
pub const WEATHER_STRIDE: u32 = 20;
const MODES: [Weather; 3] = [Weather::Norm, Weather::Winter, Weather::Night];

/// Weather mode of an expanded class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weather {
    Norm,
    Winter,
    Night,
}

impl Weather {
    pub fn offset(self) -> u32 {
        match self {
            Weather::Norm => 0,
            Weather::Winter => WEATHER_STRIDE,
            Weather::Night => 2 * WEATHER_STRIDE,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Weather::Norm => "",
            Weather::Winter => "(Wint)",
            Weather::Night => "(Night)",
        }
    }
}

/// One entry of classes.json, serialised back in the same shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassEntry {
    #[serde(rename = "Id")]
    id: u32,
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "ShortName", skip_serializing_if = "Option::is_none")]
    short_name: Option<String>,
    #[serde(rename = "Color")]
    color_hex: String,
    #[serde(rename = "MaxSizeM")]
    max_size_m: f64,
    #[serde(skip)]
    color: [u8; 3],
    /// Labels for Norm, Winter, Night, computed once.
    #[serde(skip)]
    labels: [String; 3],
}

impl ClassEntry {
    pub fn id(&self) -> u32 {
        self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn short_name(&self) -> Option<&str> {
        self.short_name.as_deref()
    }
    pub fn color_hex(&self) -> &str {
        &self.color_hex
    }
    pub fn color(&self) -> [u8; 3] {
        self.color
    }
    pub fn max_size_m(&self) -> f64 {
        self.max_size_m
    }
}

/// A class as seen through a model class index (weather offset applied).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassView<'a> {
    entry: &'a ClassEntry,
    weather: Weather,
}

impl<'a> ClassView<'a> {
    /// Name with the weather suffix, e.g. "Car(Wint)".
    pub fn label(&self) -> &'a str {
        &self.entry.labels[self.weather as usize]
    }
    pub fn max_size_m(&self) -> f64 {
        self.entry.max_size_m
    }
    pub fn color(&self) -> [u8; 3] {
        self.entry.color
    }
    pub fn base_id(&self) -> u32 {
        self.entry.id
    }
    pub fn class_num(&self) -> u32 {
        self.entry.id + self.weather.offset()
    }
    pub fn weather(&self) -> Weather {
        self.weather
    }
    pub fn entry(&self) -> &'a ClassEntry {
        self.entry
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClassesError {
    #[error("classes.json is not valid JSON at line {line}, column {column}: {message}")]
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("classes.json must be a JSON array of classes, got {got}")]
    NotArray { got: &'static str },
    #[error("classes.json has no classes")]
    Empty,
    #[error("classes.json entry {index}: must be an object, got {got}")]
    EntryNotObject { index: usize, got: &'static str },
    #[error("classes.json entry {index}{}: missing field {field}", id_note(*.id))]
    MissingField {
        index: usize,
        id: Option<u32>,
        field: &'static str,
    },
    #[error("classes.json entry {index}{}: field {field} must be {expected}, got {got}", id_note(*.id))]
    WrongType {
        index: usize,
        id: Option<u32>,
        field: &'static str,
        expected: &'static str,
        got: String,
    },
    #[error(
        "classes.json entry {index}: Id must be between 0 and 19 (weather variants use +20 and +40), got {got}"
    )]
    IdOutOfRange { index: usize, got: String },
    #[error(
        "classes.json entry {index} (Id {id}): duplicate Id, already used by entry {first_index}"
    )]
    DuplicateId {
        index: usize,
        id: u32,
        first_index: usize,
    },
    #[error("classes.json entry {index} (Id {id}): Color must be #rrggbb hex, got {got:?}")]
    BadColor { index: usize, id: u32, got: String },
    #[error(
        "classes.json entry {index} (Id {id}): MaxSizeM must be a positive finite number, got {got}"
    )]
    BadMaxSize { index: usize, id: u32, got: String },
}

fn id_note(id: Option<u32>) -> String {
    id.map(|id| format!(" (Id {id})")).unwrap_or_default()
}

/// The model's class count does not fit classes.json.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model has {model} classes but classes.json describes {described} (or {} with weather variants)", .described + 2 * WEATHER_STRIDE as usize)]
pub struct ClassCountMismatch {
    pub model: usize,
    pub described: usize,
}

/// classes.json, expanded to the three weather modes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ClassTable {
    entries: Vec<ClassEntry>,
    /// Entry index per base Id (0..20).
    #[serde(skip)]
    by_id: [Option<usize>; WEATHER_STRIDE as usize],
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_color(text: &str) -> Option<[u8; 3]> {
    let hex = text.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

fn parse_entry(index: usize, value: &Value) -> Result<ClassEntry, ClassesError> {
    let obj: &Map<String, Value> = value.as_object().ok_or(ClassesError::EntryNotObject {
        index,
        got: json_kind(value),
    })?;
    let mut id = None;
    let field = |id: Option<u32>, name: &'static str| {
        obj.get(name)
            .filter(|v| !v.is_null())
            .ok_or(ClassesError::MissingField {
                index,
                id,
                field: name,
            })
    };
    let wrong = |id: Option<u32>, name: &'static str, expected: &'static str, v: &Value| {
        ClassesError::WrongType {
            index,
            id,
            field: name,
            expected,
            got: json_kind(v).to_owned(),
        }
    };

    let raw_id = field(id, "Id")?;
    let n = raw_id
        .as_number()
        .ok_or_else(|| wrong(None, "Id", "an integer", raw_id))?;
    let parsed = n.as_u64().filter(|v| *v < u64::from(WEATHER_STRIDE));
    let Some(parsed) = parsed else {
        return Err(ClassesError::IdOutOfRange {
            index,
            got: n.to_string(),
        });
    };
    // parsed < 20, so the cast is lossless.
    let this_id = parsed as u32;
    id = Some(this_id);

    let raw_name = field(id, "Name")?;
    let name = raw_name
        .as_str()
        .ok_or_else(|| wrong(id, "Name", "a string", raw_name))?
        .to_owned();
    let short_name = match obj.get("ShortName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(wrong(id, "ShortName", "a string", other)),
    };
    let raw_color = field(id, "Color")?;
    let color_hex = raw_color
        .as_str()
        .ok_or_else(|| wrong(id, "Color", "a string", raw_color))?
        .to_owned();
    let color = parse_color(&color_hex).ok_or_else(|| ClassesError::BadColor {
        index,
        id: this_id,
        got: color_hex.clone(),
    })?;
    let raw_max = field(id, "MaxSizeM")?;
    let max_size_m = raw_max
        .as_f64()
        .ok_or_else(|| wrong(id, "MaxSizeM", "a number", raw_max))?;
    if !(max_size_m.is_finite() && max_size_m > 0.0) {
        return Err(ClassesError::BadMaxSize {
            index,
            id: this_id,
            got: raw_max.to_string(),
        });
    }
    let labels = MODES.map(|w| format!("{name}{}", w.suffix()));
    Ok(ClassEntry {
        id: this_id,
        name,
        short_name,
        color_hex,
        max_size_m,
        color,
        labels,
    })
}

impl ClassTable {
    pub fn from_json(text: &str) -> Result<ClassTable, ClassesError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ClassesError::InvalidJson {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let items = value.as_array().ok_or(ClassesError::NotArray {
            got: json_kind(&value),
        })?;
        if items.is_empty() {
            return Err(ClassesError::Empty);
        }
        let mut entries = Vec::with_capacity(items.len());
        let mut by_id = [None; WEATHER_STRIDE as usize];
        for (index, item) in items.iter().enumerate() {
            let entry = parse_entry(index, item)?;
            let slot = &mut by_id[entry.id as usize];
            if let Some(first_index) = *slot {
                return Err(ClassesError::DuplicateId {
                    index,
                    id: entry.id,
                    first_index,
                });
            }
            *slot = Some(index);
            entries.push(entry);
        }
        Ok(ClassTable { entries, by_id })
    }

    /// Looks a model class index up: Id, Id + 20 (Winter) or Id + 40 (Night).
    pub fn get(&self, class_num: u32) -> Option<ClassView<'_>> {
        let weather = *MODES.get((class_num / WEATHER_STRIDE) as usize)?;
        let index = (*self.by_id.get((class_num % WEATHER_STRIDE) as usize)?)?;
        Some(ClassView {
            entry: &self.entries[index],
            weather,
        })
    }

    /// Entries in file order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &ClassEntry> {
        self.entries.iter()
    }

    /// Largest base Id (the table is never empty).
    pub fn max_id(&self) -> u32 {
        self.entries.iter().map(|e| e.id).max().unwrap_or(0)
    }

    /// Accepts a plain model (max_id + 1 classes) or a weather-aware one
    /// (max_id + 41 classes).
    pub fn check_model_classes(&self, model_classes: usize) -> Result<(), ClassCountMismatch> {
        let described = self.max_id() as usize + 1;
        if model_classes == described || model_classes == described + 2 * WEATHER_STRIDE as usize {
            Ok(())
        } else {
            Err(ClassCountMismatch {
                model: model_classes,
                described,
            })
        }
    }
}

#[cfg(test)]
#[path = "classes_tests.rs"]
mod tests;
