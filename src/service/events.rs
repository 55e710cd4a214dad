//! Detection events on the stream (spec A7), for photos and videos alike.

use domain::media::MediaId;
use ports::{DetectionDto, DetectionEvent, EventPublisher, MediaEventStatus, StreamEvent};

pub(crate) fn publish(
    events: &dyn EventPublisher,
    id: &MediaId,
    status: MediaEventStatus,
    annotations: Vec<DetectionDto>,
    error: Option<String>,
) {
    let percent = if status == MediaEventStatus::Error {
        0
    } else {
        100
    };
    publish_at(events, id, status, percent, annotations, error);
}

/// An event with an explicit percent (video progress).
pub(crate) fn publish_at(
    events: &dyn EventPublisher,
    id: &MediaId,
    status: MediaEventStatus,
    percent: u8,
    annotations: Vec<DetectionDto>,
    error: Option<String>,
) {
    events.publish(StreamEvent::Detection(DetectionEvent {
        annotations,
        media_id: id.clone(),
        media_status: status,
        media_percent: percent,
        error,
    }));
}
