//! What comes in: classes.json (`[classes]`), the model and where it comes from
//! (`[model]`, `[model_source]`), the media folders (`[media]`) and the video decoder
//! (`[video]`).

use std::path::PathBuf;
use std::time::Duration;

use adapters::model_source::loader::LoaderConfig;
use adapters::video::FfmpegConfig;
use serde::{Deserialize, Serialize};

use super::default_timeout_secs;

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
