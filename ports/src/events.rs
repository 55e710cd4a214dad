//! What subscribers see: detections as the wire names them, and the events of a media.

use serde::{Deserialize, Serialize};

/// One detection on the wire (spec A5). Box centre and size are normalised to the
/// whole original frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectionDto {
    pub center_x: f64,
    pub center_y: f64,
    pub width: f64,
    pub height: f64,
    pub class_num: u32,
    pub label: String,
    pub confidence: f64,
}

/// Status of a media as events and the Annotations service name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaEventStatus {
    #[serde(rename = "AIProcessing")]
    AiProcessing,
    #[serde(rename = "AIProcessed")]
    AiProcessed,
    Error,
}

/// One event of the SSE stream (spec A7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectionEvent {
    pub annotations: Vec<DetectionDto>,
    pub media_id: String,
    pub media_status: MediaEventStatus,
    pub media_percent: u8,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Broadcasts events to subscribers. Never blocks and never waits on a subscriber.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait EventPublisher: Send + Sync {
    fn publish(&self, event: DetectionEvent);
}
