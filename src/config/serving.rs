//! How the process serves: the HTTP server (`[server]`), admission and batching of
//! detection work (`[detection]`), and logs (`[logging]`).

use std::net::SocketAddr;
use std::path::PathBuf;

use detections::batcher::BatchingConfig;
use detections::service::Admission;
use domain::tiling::Tiling;
use serde::{Deserialize, Serialize};

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
    /// The console at `/`: a page that shows the engine, tries photos and videos,
    /// follows every media live and the load (adapters/src/http/console/).
    pub console: bool,
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
            console: true,
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
