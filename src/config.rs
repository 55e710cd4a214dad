//! Configuration: built-in defaults ← optional TOML file ← environment.
//!
//! Defaults live in the `Default` impls and `#[serde(default)]`, so a provider only
//! carries what someone actually set; that keeps a tagged adapter choice (`kind`)
//! from inheriting another variant's keys. Unknown keys are errors everywhere.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use adapters::annotations::http::AnnotationsClientConfig;
use adapters::annotations::outbox::OutboxConfig as OutboxSettings;
use adapters::annotations::webhook::WebhookSinkConfig;
use adapters::events::EventBusConfig;
use adapters::model_source::loader::LoaderConfig;
use adapters::video::FfmpegConfig;
use detections::batcher::BatchingConfig;
use detections::service::Admission;
use domain::tiling::Tiling;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::time::Duration;

mod engine;
pub use engine::EngineConfig;

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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Events kept for `Last-Event-ID` replay.
    pub replay_capacity: usize,
    /// Events a subscriber may fall behind before it loses some (`event: lagged`).
    pub subscriber_queue: usize,
    /// Seconds between keep-alive comments.
    pub keep_alive_secs: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            replay_capacity: 1000,
            subscriber_queue: 100,
            keep_alive_secs: 15,
        }
    }
}

impl From<&EventsConfig> for EventBusConfig {
    fn from(events: &EventsConfig) -> Self {
        Self {
            replay_capacity: events.replay_capacity,
            subscriber_queue: events.subscriber_queue,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// The journal: every annotation waits here (synced) until delivered, also across
    /// a crash or restart; refused ones go to `rejected/` inside it.
    pub spool_dir: PathBuf,
    /// No longer used (annotations wait on disk, not in a memory queue); still
    /// accepted so that existing configuration files load.
    pub queue_capacity: usize,
    /// Tries per annotation before the sink is taken to be down.
    pub max_attempts: u32,
    pub first_delay_ms: u64,
    pub max_delay_ms: u64,
    /// How long to wait after finding the sink down before trying again.
    pub spool_retry_secs: u64,
}

impl From<&OutboxConfig> for OutboxSettings {
    fn from(outbox: &OutboxConfig) -> Self {
        Self {
            spool_dir: outbox.spool_dir.clone(),
            max_attempts: outbox.max_attempts,
            first_delay: Duration::from_millis(outbox.first_delay_ms),
            max_delay: Duration::from_millis(outbox.max_delay_ms),
            spool_retry_interval: Duration::from_secs(outbox.spool_retry_secs),
        }
    }
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            spool_dir: PathBuf::from("data/spool"),
            queue_capacity: 1000,
            max_attempts: 5,
            first_delay_ms: 200,
            max_delay_ms: 10_000,
            spool_retry_secs: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// Largest request body accepted; larger ones get 413 while still streaming.
    pub max_body_bytes: u64,
    /// Time allowed until response headers (SSE streams are not cut).
    pub request_timeout_secs: u64,
    /// How long shutdown may take before the process exits regardless.
    pub shutdown_grace_secs: u64,
    /// Memory for all request bodies in flight together; a body that does not fit is
    /// answered 503 with Retry-After at once. Unset: a quarter of the machine's memory,
    /// at most 2 GiB (ARCHITECTURE.md "Memory plan").
    pub body_memory_budget_bytes: Option<u64>,
    /// The most one `POST /detect` body holds in memory; a larger one, or a video, is
    /// written to a staged file as it arrives.
    pub in_memory_body_max_bytes: u64,
}

impl ServerConfig {
    /// The body memory budget: configured, else a quarter of `machine_memory` (when
    /// known, else 4 GiB) capped at 2 GiB.
    pub fn body_memory_budget(&self, machine_memory: Option<u64>) -> u64 {
        self.body_memory_budget_bytes
            .unwrap_or_else(|| (machine_memory.unwrap_or(4 << 30) / 4).min(2 << 30))
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 8080)),
            max_body_bytes: 512 * 1024 * 1024,
            request_timeout_secs: 600,
            shutdown_grace_secs: 25,
            body_memory_budget_bytes: None,
            in_memory_body_max_bytes: 32 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassesConfig {
    pub path: PathBuf,
}

impl Default for ClassesConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("classes.json"),
        }
    }
}

/// Which model to run and how its start-up behaves (spec A4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// File name at the model source.
    pub name: String,
    /// How long the first detection waits for the engine before answering 503.
    pub start_wait_secs: u64,
    /// After a failed start, the next request retries no sooner than this.
    pub retry_interval_secs: u64,
    /// Start the engine at boot instead of on the first detection.
    pub start_at_boot: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            name: "azaion.onnx".into(),
            start_wait_secs: 120,
            retry_interval_secs: 5,
            start_at_boot: false,
        }
    }
}

/// Where models come from. One variant per adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSourceConfig {
    /// A folder on local disk (the embedded default).
    Local {
        #[serde(default = "default_model_dir")]
        dir: PathBuf,
    },
    /// The Loader service (spec A9).
    Loader(LoaderSettings),
}

impl Default for ModelSourceConfig {
    fn default() -> Self {
        Self::Local {
            dir: default_model_dir(),
        }
    }
}

fn default_model_dir() -> PathBuf {
    PathBuf::from("assets/models")
}

/// `[model_source] kind = "loader"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderSettings {
    pub url: String,
    pub folder: String,
    /// Where downloads are cached while in use.
    pub download_dir: PathBuf,
    pub timeout_secs: u64,
    pub retries: u32,
}

impl Default for LoaderSettings {
    fn default() -> Self {
        Self {
            url: "http://loader:8080".into(),
            folder: "models".into(),
            download_dir: PathBuf::from("cache/models"),
            timeout_secs: default_timeout_secs(),
            retries: 3,
        }
    }
}

impl From<&LoaderSettings> for LoaderConfig {
    fn from(loader: &LoaderSettings) -> Self {
        Self {
            url: loader.url.clone(),
            folder: loader.folder.clone(),
            download_dir: loader.download_dir.clone(),
            timeout: Duration::from_secs(loader.timeout_secs),
            retries: loader.retries,
        }
    }
}

fn default_timeout_secs() -> u64 {
    30
}

/// Where accepted annotations go. One variant per adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AnnotationsConfig {
    /// A local JSON-lines file (the embedded default).
    File {
        #[serde(default = "default_annotation_file")]
        path: PathBuf,
    },
    /// The Annotations service (spec A9).
    Http(AnnotationsHttpSettings),
    /// Any webhook: each annotation posted as `{"event":"annotation","annotation":…}`.
    /// Media records stay local (as with `file`).
    Webhook(WebhookSettings),
}

fn default_annotation_file() -> PathBuf {
    PathBuf::from("data/annotations.jsonl")
}

impl Default for AnnotationsConfig {
    fn default() -> Self {
        Self::File {
            path: default_annotation_file(),
        }
    }
}

/// `[annotations] kind = "http"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnnotationsHttpSettings {
    pub url: String,
    pub timeout_secs: u64,
}

impl Default for AnnotationsHttpSettings {
    fn default() -> Self {
        Self {
            url: "http://annotations:8080".into(),
            timeout_secs: default_timeout_secs(),
        }
    }
}

impl From<&AnnotationsHttpSettings> for AnnotationsClientConfig {
    fn from(http: &AnnotationsHttpSettings) -> Self {
        Self {
            url: http.url.clone(),
            timeout: Duration::from_secs(http.timeout_secs),
        }
    }
}

/// `[annotations] kind = "webhook"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub url: String,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// A header sent with every call, e.g. `secret_header = ["x-hook-secret", "…"]`.
    #[serde(default)]
    pub secret_header: Option<(String, String)>,
}

impl From<&WebhookSettings> for WebhookSinkConfig {
    fn from(webhook: &WebhookSettings) -> Self {
        Self {
            url: webhook.url.clone(),
            timeout: Duration::from_secs(webhook.timeout_secs),
            secret_header: webhook.secret_header.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    pub videos_dir: PathBuf,
    pub images_dir: PathBuf,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            videos_dir: PathBuf::from("data/videos"),
            images_dir: PathBuf::from("data/images"),
        }
    }
}

/// How videos are decoded. One variant per adapter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VideoConfig {
    /// The `ffmpeg` program as a child process.
    Ffmpeg(FfmpegSettings),
}

impl Default for VideoConfig {
    fn default() -> Self {
        Self::Ffmpeg(FfmpegSettings::default())
    }
}

/// `[video] kind = "ffmpeg"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FfmpegSettings {
    pub program: PathBuf,
    /// Longest wait for the header or the next frame before the decoder is killed.
    pub stall_timeout_secs: u64,
    /// Address-space limit of the decoder process, MiB.
    pub memory_limit_mib: u64,
    pub threads: u32,
    /// Largest frame (width × height).
    pub max_pixels: u64,
}

impl Default for FfmpegSettings {
    fn default() -> Self {
        Self {
            program: PathBuf::from("ffmpeg"),
            stall_timeout_secs: 60,
            memory_limit_mib: 4096,
            threads: 2,
            max_pixels: 7680 * 4320,
        }
    }
}

impl From<&FfmpegSettings> for FfmpegConfig {
    fn from(ffmpeg: &FfmpegSettings) -> Self {
        Self {
            program: ffmpeg.program.clone(),
            stall_timeout: Duration::from_secs(ffmpeg.stall_timeout_secs.max(1)),
            memory_limit_bytes: ffmpeg.memory_limit_mib.saturating_mul(1 << 20),
            threads: ffmpeg.threads.max(1),
            max_pixels: ffmpeg.max_pixels,
        }
    }
}

/// Admission of detection work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectionConfig {
    /// Photos detected at once.
    pub max_running: usize,
    /// Videos detected at once (slots of their own: a long video never holds a
    /// photo's slot).
    pub max_videos: usize,
    /// Detections waiting for a turn; one more answers 503 with Retry-After.
    pub queue_capacity: usize,
    /// Threads that gather views into engine calls and letterbox them (two: one
    /// prepares a batch while the other's is in the engine). See docs/performance.md.
    pub batch_workers: usize,
    /// Longest wait, in milliseconds, for a batch that is not full to fill (0: batches
    /// are what is queued when the engine is free).
    pub batch_delay_ms: u64,
    /// Worker threads of the async runtime (HTTP, SSE, outbound calls); 0: one per core.
    pub runtime_threads: usize,
    /// `auto`: frames larger than 1.5 × the model input are cut into tiles (spec A11);
    /// `off`: every frame is one view.
    pub tiling: Tiling,
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self {
            max_running: 2,
            max_videos: 2,
            queue_capacity: 32,
            batch_workers: 2,
            batch_delay_ms: 0,
            runtime_threads: 0,
            tiling: Tiling::Auto,
        }
    }
}

impl DetectionConfig {
    /// How many detections run and wait.
    pub fn admission(&self) -> Admission {
        Admission {
            max_running: self.max_running,
            max_videos: self.max_videos,
            queue_capacity: self.queue_capacity,
        }
    }

    pub fn batching(&self) -> BatchingConfig {
        BatchingConfig {
            workers: self.batch_workers.max(1),
            max_delay: std::time::Duration::from_millis(self.batch_delay_ms),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    pub format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `detections=debug,info`.
    pub level: String,
    /// When set, logs also go to daily files in this folder, kept 30 days.
    pub dir: Option<PathBuf>,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info,ort=warn".into(),
            dir: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
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
const TAGGED_SECTIONS: [&str; 4] = ["model_source", "engine", "annotations", "video"];

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
    figment.merge(
        Env::raw()
            .only(&[
                "LOADER_URL",
                "ANNOTATIONS_URL",
                "VIDEOS_DIR",
                "IMAGES_DIR",
                "LOG_FORMAT",
            ])
            .map(|key| {
                match key.as_str().to_ascii_uppercase().as_str() {
                    "LOADER_URL" => "model_source.url",
                    "ANNOTATIONS_URL" => "annotations.url",
                    "VIDEOS_DIR" => "media.videos_dir",
                    "IMAGES_DIR" => "media.images_dir",
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
