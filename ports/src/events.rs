//! What subscribers see: detections as the wire names them, and the events of a media.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::driving::Health;

/// One detection on the wire (spec A5). Box centre and size are normalised to the
/// whole original frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MediaEventStatus {
    #[serde(rename = "AIProcessing")]
    AiProcessing,
    #[serde(rename = "AIProcessed")]
    AiProcessed,
    Error,
}

/// One event of the SSE stream (spec A7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct DetectionEvent {
    pub annotations: Vec<DetectionDto>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub media_id: domain::media::MediaId,
    pub media_status: MediaEventStatus,
    pub media_percent: u8,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Everything the SSE stream carries.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A media's progress or result (spec A7): the unnamed `data:` frames.
    Detection(DetectionEvent),
    /// An engine transition (spec B): `event: availability`.
    Availability {
        health: Health,
        /// In a cluster, the replica whose engine it is (every replica has its own).
        replica: Option<String>,
    },
}

impl StreamEvent {
    /// The media an event is about; availability events concern every media.
    pub fn media_id(&self) -> Option<&str> {
        match self {
            StreamEvent::Detection(event) => Some(event.media_id.as_str()),
            StreamEvent::Availability { .. } => None,
        }
    }
}

/// An event with its position in the stream: the SSE `id:`, increasing from 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequenced {
    pub id: u64,
    pub event: StreamEvent,
}

/// What a subscriber receives next.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamItem {
    Event(Arc<Sequenced>),
    /// The subscriber fell behind its bounded queue and lost this many events.
    Lagged {
        missed: u64,
    },
}

/// Which events a subscriber wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// `Last-Event-ID`: replay the buffered events after this id first.
    pub after: Option<u64>,
    /// `?mediaId=`: only this media's detection events (availability events still come).
    pub media_id: Option<String>,
}

/// One subscriber's end of the stream.
#[async_trait]
pub trait EventReceiver: Send {
    /// The next item; `None` once the stream is closed (shutdown).
    async fn next(&mut self) -> Option<StreamItem>;
}

/// A subscription, whatever publisher made it.
pub struct EventSubscription(Box<dyn EventReceiver>);

impl EventSubscription {
    pub fn new(receiver: impl EventReceiver + 'static) -> Self {
        Self(Box::new(receiver))
    }

    pub async fn next(&mut self) -> Option<StreamItem> {
        self.0.next().await
    }
}

impl std::fmt::Debug for EventSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSubscription")
    }
}

/// Broadcasts events to subscribers. `publish` never blocks and never waits on a
/// subscriber: a slow one loses events (and is told how many), others are unaffected.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait EventPublisher: Send + Sync {
    /// Numbers the event (the number may be assigned later, by a broker), keeps it for
    /// replay, and hands it to every subscriber.
    fn publish(&self, event: StreamEvent);
    fn subscribe(&self, request: SubscribeRequest) -> EventSubscription;
    /// Ends every subscription once its queued items are read (shutdown).
    fn close(&self);
    /// How many subscribers are connected (metrics).
    fn subscribers(&self) -> usize;
}
