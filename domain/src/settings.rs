//! Recognition settings (spec A6): defaults, lenient parsing of request and
//! stored JSON, and merging defaults ← stored ← request.

use serde::Serialize;
use serde_json::Value;

use crate::classes::json_kind;

/// The settings used for one detection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecognitionSettings {
    frame_period_recognition: u32,
    frame_recognition_seconds: f64,
    probability_threshold: f64,
    tracking_distance_confidence: f64,
    tracking_probability_increase: f64,
    tracking_intersection_threshold: f64,
    model_batch_size: u32,
    big_image_tile_overlap_percent: u32,
    altitude: f64,
    focal_length: f64,
    sensor_width: f64,
    tile_merge: bool,
    tile_merge_threshold: f64,
    tile_full_frame_pass: bool,
}

impl Default for RecognitionSettings {
    fn default() -> Self {
        RecognitionSettings {
            frame_period_recognition: 4,
            frame_recognition_seconds: 2.0,
            probability_threshold: 0.25,
            tracking_distance_confidence: 0.0,
            tracking_probability_increase: 0.0,
            tracking_intersection_threshold: 0.6,
            model_batch_size: 1,
            big_image_tile_overlap_percent: 20,
            altitude: 400.0,
            focal_length: 24.0,
            sensor_width: 23.5,
            tile_merge: true,
            // SAHI's default match threshold for its greedy merging.
            tile_merge_threshold: 0.5,
            tile_full_frame_pass: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    #[error("settings are not valid JSON: {0}")]
    InvalidJson(String),
    #[error("settings must be a JSON object, got {got}")]
    NotAnObject { got: &'static str },
    #[error("{key} must be a number, got {got}")]
    WrongType { key: &'static str, got: String },
    #[error("{key} must be true or false, got {got}")]
    NotABool { key: &'static str, got: String },
    #[error("{key} must be an integer, got {value}")]
    NotAnInteger { key: &'static str, value: f64 },
    #[error("{key} must be {range}, got {value}")]
    OutOfRange {
        key: &'static str,
        range: &'static str,
        value: f64,
    },
}

/// Allowed range of one setting.
#[derive(Clone, Copy)]
enum Rule {
    /// Integer in min..=max.
    Int {
        min: u32,
        max: u32,
        text: &'static str,
    },
    /// Float in min..=max.
    Float {
        min: f64,
        max: f64,
        text: &'static str,
    },
    /// Float strictly above 0.
    Positive,
    /// true or false.
    Bool,
}

const UNIT: Rule = Rule::Float {
    min: 0.0,
    max: 1.0,
    text: "between 0 and 1",
};

/// One setting: its snake_case key, what it accepts, and where a checked value goes.
struct Key {
    name: &'static str,
    rule: Rule,
    apply: fn(&mut RecognitionSettings, Setting),
}

/// The setting named after its field: checked by `rule`, stored as a value of `kind`
/// (`check` gives each rule its kind, so the value always is of it).
macro_rules! key {
    ($field:ident, $rule:expr, $kind:ident) => {
        Key {
            name: stringify!($field),
            rule: $rule,
            apply: |s: &mut RecognitionSettings, v: Setting| {
                if let Setting::$kind(x) = v {
                    s.$field = x;
                }
            },
        }
    };
}

/// Every setting, in declaration order.
const KEYS: [Key; 14] = [
    key!(
        frame_period_recognition,
        Rule::Int {
            min: 1,
            max: u32::MAX,
            text: "at least 1",
        },
        Int
    ),
    key!(
        frame_recognition_seconds,
        Rule::Float {
            min: 0.0,
            max: f64::MAX,
            text: "at least 0",
        },
        Float
    ),
    key!(probability_threshold, UNIT, Float),
    key!(tracking_distance_confidence, UNIT, Float),
    key!(tracking_probability_increase, UNIT, Float),
    key!(tracking_intersection_threshold, UNIT, Float),
    key!(
        model_batch_size,
        Rule::Int {
            min: 1,
            max: 64,
            text: "between 1 and 64",
        },
        Int
    ),
    key!(
        big_image_tile_overlap_percent,
        Rule::Int {
            min: 0,
            max: 99,
            text: "between 0 and 99",
        },
        Int
    ),
    key!(altitude, Rule::Positive, Float),
    key!(focal_length, Rule::Positive, Float),
    key!(sensor_width, Rule::Positive, Float),
    key!(tile_merge, Rule::Bool, Bool),
    key!(tile_merge_threshold, UNIT, Float),
    key!(tile_full_frame_pass, Rule::Bool, Bool),
];

/// A checked value of one setting.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Setting {
    Int(u32),
    Float(f64),
    Bool(bool),
}

/// Settings present in one JSON object, each already validated. Absent keys
/// leave the base value alone when merged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SettingsPatch {
    values: [Option<Setting>; KEYS.len()],
}

/// snake_case, camelCase and PascalCase all fold to the same string.
fn fold(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Numbers, or strings holding a number (pydantic lax mode).
fn as_number(key: &'static str, value: &Value) -> Result<f64, SettingsError> {
    let n = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        other => {
            return Err(SettingsError::WrongType {
                key,
                got: json_kind(other).to_owned(),
            });
        }
    };
    n.filter(|v| v.is_finite())
        .ok_or_else(|| SettingsError::WrongType {
            key,
            got: value.to_string(),
        })
}

/// Booleans, and what pydantic's lax mode reads as one: 0 and 1, and the strings
/// true/false, yes/no, on/off, t/f, y/n, 1/0 (any case).
fn as_bool(key: &'static str, value: &Value) -> Result<bool, SettingsError> {
    let parsed = match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "on" | "1" => Some(true),
            "false" | "f" | "no" | "n" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| SettingsError::NotABool {
        key,
        got: match value {
            Value::Number(_) | Value::String(_) => value.to_string(),
            other => json_kind(other).to_owned(),
        },
    })
}

fn check(key: &'static str, rule: Rule, raw: &Value) -> Result<Setting, SettingsError> {
    if let Rule::Bool = rule {
        return Ok(Setting::Bool(as_bool(key, raw)?));
    }
    let v = as_number(key, raw)?;
    let out_of_range = |text| SettingsError::OutOfRange {
        key,
        range: text,
        value: v,
    };
    match rule {
        Rule::Int { min, max, text } => {
            if v.fract() != 0.0 {
                return Err(SettingsError::NotAnInteger { key, value: v });
            }
            if v < f64::from(min) || v > f64::from(max) {
                return Err(out_of_range(text));
            }
            // Integral and within u32 bounds, so the cast is exact.
            Ok(Setting::Int(v as u32))
        }
        Rule::Float { min, max, text } if v < min || v > max => Err(out_of_range(text)),
        Rule::Float { .. } => Ok(Setting::Float(v)),
        Rule::Positive if v <= 0.0 => Err(out_of_range("greater than 0")),
        Rule::Positive => Ok(Setting::Float(v)),
        Rule::Bool => Ok(Setting::Bool(as_bool(key, raw)?)),
    }
}

impl SettingsPatch {
    pub fn from_json(value: &Value) -> Result<SettingsPatch, SettingsError> {
        let obj = value.as_object().ok_or(SettingsError::NotAnObject {
            got: json_kind(value),
        })?;
        let mut patch = SettingsPatch::default();
        for (raw_key, raw) in obj {
            let folded = fold(raw_key);
            let Some(i) = KEYS.iter().position(|k| fold(k.name) == folded) else {
                continue; // unknown keys are ignored (A6)
            };
            if raw.is_null() {
                continue;
            }
            let key = &KEYS[i];
            patch.values[i] = Some(check(key.name, key.rule, raw)?);
        }
        Ok(patch)
    }

    pub fn from_json_str(text: &str) -> Result<SettingsPatch, SettingsError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| SettingsError::InvalidJson(e.to_string()))?;
        SettingsPatch::from_json(&value)
    }

    pub fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }

    /// The patch with `probability_threshold` set (checked as in JSON).
    pub fn with_probability_threshold(self, value: f64) -> Result<SettingsPatch, SettingsError> {
        self.with_number("probability_threshold", value)
    }

    /// The patch with `model_batch_size` set (checked as in JSON).
    pub fn with_model_batch_size(self, value: u32) -> Result<SettingsPatch, SettingsError> {
        self.with_number("model_batch_size", f64::from(value))
    }

    fn with_number(mut self, name: &str, value: f64) -> Result<SettingsPatch, SettingsError> {
        if let Some(i) = KEYS.iter().position(|k| k.name == name) {
            let key = &KEYS[i];
            self.values[i] = Some(check(key.name, key.rule, &Value::from(value))?);
        }
        Ok(self)
    }

    /// The patch as the JSON object [`from_json`](Self::from_json) reads back to it
    /// (snake_case keys), for a job stored to run again on another replica.
    pub fn to_json(&self) -> Value {
        let present = KEYS.iter().zip(&self.values).filter_map(|(key, value)| {
            let value = match (*value)? {
                Setting::Int(n) => Value::from(n),
                Setting::Float(x) => Value::from(x),
                Setting::Bool(b) => Value::from(b),
            };
            Some((key.name.to_string(), value))
        });
        Value::Object(present.collect())
    }

    /// snake_case keys present in this patch.
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        KEYS.iter()
            .zip(&self.values)
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.name)
    }
}

impl RecognitionSettings {
    /// `self` with every key present in `patch` replaced.
    pub fn merged(&self, patch: &SettingsPatch) -> RecognitionSettings {
        let mut s = self.clone();
        for (key, value) in KEYS.iter().zip(&patch.values) {
            if let Some(value) = *value {
                (key.apply)(&mut s, value);
            }
        }
        s
    }

    /// Defaults with `value` applied.
    pub fn from_json(value: &Value) -> Result<RecognitionSettings, SettingsError> {
        Ok(RecognitionSettings::default().merged(&SettingsPatch::from_json(value)?))
    }

    /// Ground sampling distance in metres per pixel (spec A11).
    pub fn ground_sampling_distance(&self, frame_width: u32) -> f64 {
        self.sensor_width * self.altitude / (self.focal_length * f64::from(frame_width.max(1)))
    }

    pub fn frame_period_recognition(&self) -> u32 {
        self.frame_period_recognition
    }
    pub fn frame_recognition_seconds(&self) -> f64 {
        self.frame_recognition_seconds
    }
    pub fn probability_threshold(&self) -> f64 {
        self.probability_threshold
    }
    pub fn tracking_distance_confidence(&self) -> f64 {
        self.tracking_distance_confidence
    }
    pub fn tracking_probability_increase(&self) -> f64 {
        self.tracking_probability_increase
    }
    pub fn tracking_intersection_threshold(&self) -> f64 {
        self.tracking_intersection_threshold
    }
    pub fn model_batch_size(&self) -> u32 {
        self.model_batch_size
    }
    pub fn big_image_tile_overlap_percent(&self) -> u32 {
        self.big_image_tile_overlap_percent
    }
    pub fn altitude(&self) -> f64 {
        self.altitude
    }
    pub fn focal_length(&self) -> f64 {
        self.focal_length
    }
    pub fn sensor_width(&self) -> f64 {
        self.sensor_width
    }
    /// Whether tiles' detections of one object become one detection and a tiled frame
    /// gets a full-frame pass (docs/pipeline.md §5.2); false gives the original's
    /// tiled results exactly.
    pub fn tile_merge(&self) -> bool {
        self.tile_merge
    }
    /// The overlap above which detections from different views are one object.
    pub fn tile_merge_threshold(&self) -> f64 {
        self.tile_merge_threshold
    }
    /// Whether a tiled frame is also seen whole, as one more view (only with
    /// `tile_merge`).
    pub fn tile_full_frame_pass(&self) -> bool {
        self.tile_merge && self.tile_full_frame_pass
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
