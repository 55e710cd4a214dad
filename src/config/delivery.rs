//! Where results go: the annotation sink (`[annotations]`), its outbox (`[outbox]`),
//! and the event stream (`[events]`).

use std::path::PathBuf;
use std::time::Duration;

use adapters::annotations::http::AnnotationsClientConfig;
use adapters::annotations::outbox::OutboxConfig as OutboxSettings;
use adapters::annotations::webhook::WebhookSinkConfig;
use adapters::events::EventBusConfig;
use serde::{Deserialize, Serialize};

use super::default_timeout_secs;

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
