//! Configuration: built-in defaults ← optional TOML file ← environment.
//!
//! Defaults live in the `Default` impls and `#[serde(default)]`, so a provider only
//! carries what someone actually set; that keeps a tagged adapter choice (`kind`)
//! from inheriting another variant's keys. Unknown keys are errors everywhere.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod cluster;
mod delivery;
mod engine;
mod serving;
mod sources;
pub use cluster::{ClusterConfig, NatsSettings};
pub use delivery::{AnnotationsConfig, EventsConfig, OutboxConfig};
pub use engine::EngineConfig;
pub use serving::{DetectionConfig, LogFormat, LoggingConfig, ServerConfig};
pub use sources::{ClassesConfig, MediaConfig, ModelConfig, ModelSourceConfig, VideoConfig};

/// The whole effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    /// Path of classes.json (spec A10).
    pub classes: ClassesConfig,
    pub model: ModelConfig,
    pub model_source: ModelSourceConfig,
    pub engine: EngineConfig,
    pub annotations: AnnotationsConfig,
    pub media: MediaConfig,
    /// The video decoder.
    pub video: VideoConfig,
    pub detection: DetectionConfig,
    /// The SSE stream (spec A7, B).
    pub events: EventsConfig,
    /// Delivery of annotations: the on-disk journal and retries (spec B).
    pub outbox: OutboxConfig,
    pub logging: LoggingConfig,
    /// Where the state replicas share lives (`local`: in this process).
    pub cluster: ClusterConfig,
}

fn default_timeout_secs() -> u64 {
    30
}

/// A configuration that cannot be used; the message names the key and its origin.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

/// The environment variable that names the TOML file when `--config` is not given.
pub const CONFIG_FILE_VAR: &str = "DETECTIONS_CONFIG";

impl Config {
    /// How frames become views: the engine's preprocess mode and the tiling switch.
    pub fn view_rules(&self) -> domain::tiling::ViewRules {
        domain::tiling::ViewRules {
            preprocess: self.engine.preprocess(),
            tiling: self.detection.tiling,
        }
    }

    /// Loads defaults ← `file` (or `$DETECTIONS_CONFIG`) ← environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from));
        let mut figment = Figment::new();
        if let Some(file) = file {
            // `Toml::file` would silently skip a missing file; a named one must exist.
            if !file.is_file() {
                return Err(ConfigError(format!(
                    "the configuration file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let figment = figment
            .merge(compatible_env())
            .merge(Env::prefixed("DETECTIONS_").split("__").ignore(&["config"]));
        with_default_kinds(figment)
            .extract()
            .map_err(|e| ConfigError(describe(e)))
    }

    /// The effective configuration as TOML (`--print-config`).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// The sections that pick their adapter with a `kind` tag.
const TAGGED_SECTIONS: [&str; 5] = ["model_source", "engine", "annotations", "video", "cluster"];

/// A tagged section given without its `kind` keeps the default adapter, so that one key
/// of the adapter in use (`DETECTIONS_ENGINE__LIBRARY=…`) can be set alone; naming
/// another adapter still takes its `kind`.
fn with_default_kinds(mut figment: Figment) -> Figment {
    let defaults = Figment::from(Serialized::defaults(Config::default()));
    for section in TAGGED_SECTIONS {
        let kind = format!("{section}.kind");
        if figment.find_value(section).is_ok()
            && figment.find_value(&kind).is_err()
            && let Ok(default_kind) = defaults.find_value(&kind)
        {
            figment = figment.merge(Serialized::default(&kind, default_kind));
        }
    }
    figment
}

/// The variable names of the original service (spec A12). Setting a service's URL also
/// selects that adapter, as the original always used them.
fn compatible_env() -> Figment {
    let mut figment = Figment::new();
    if std::env::var_os("LOADER_URL").is_some() {
        figment = figment.merge(Serialized::default("model_source.kind", "loader"));
    }
    if std::env::var_os("ANNOTATIONS_URL").is_some() {
        figment = figment.merge(Serialized::default("annotations.kind", "http"));
    }
    if std::env::var_os("NATS_URL").is_some() {
        figment = figment.merge(Serialized::default("cluster.kind", "nats"));
    }
    figment.merge(
        Env::raw()
            .only(&[
                "LOADER_URL",
                "ANNOTATIONS_URL",
                "VIDEOS_DIR",
                "IMAGES_DIR",
                "LOG_FORMAT",
                "NATS_URL",
            ])
            .map(|key| {
                match key.as_str().to_ascii_uppercase().as_str() {
                    "LOADER_URL" => "model_source.url",
                    "ANNOTATIONS_URL" => "annotations.url",
                    "VIDEOS_DIR" => "media.videos_dir",
                    "IMAGES_DIR" => "media.images_dir",
                    "NATS_URL" => "cluster.url",
                    _ => "logging.format",
                }
                .into()
            }),
    )
}

fn describe(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let from_prefixed_env = e
                .metadata
                .as_ref()
                .is_some_and(|m| m.name.contains("DETECTIONS_"));
            if from_prefixed_env && !e.path.is_empty() {
                // Figment names only the prefix; say which variable it was.
                let variable = format!("DETECTIONS_{}", e.path.join("__")).to_ascii_uppercase();
                format!("{e} (variable {variable})")
            } else {
                e.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
// Jail's closures must return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests;
