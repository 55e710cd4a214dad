//! The media lifecycle of spec A8 around a detection: a fresh token, the media record
//! and its status trail, and the annotation of a frame. The Annotations service is
//! never waited on: the trail runs in its own task, annotations go to the sink (an
//! outbox that returns at once).

use std::sync::Arc;

use domain::auth::{BearerToken, Credentials};
use domain::job::MediaStatus;
use domain::media::MediaId;
use ports::{Annotation, AnnotationSink, DetectionDto, MediaCatalog, MediaRecord, RgbFrame};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

use crate::detect::FrameDetector;

/// JPEG quality of annotation images.
const ANNOTATION_JPEG_QUALITY: u8 = 85;

/// The token to act with: refreshed first when it expires within 60 s and a refresh
/// token came with it. A failed refresh keeps the old token (the call may still pass).
pub async fn fresh_token(catalog: &dyn MediaCatalog, credentials: &Credentials) -> BearerToken {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if credentials.refresh_token.is_none() || !credentials.token.needs_refresh(now) {
        return credentials.token.clone();
    }
    match catalog.refresh(credentials).await {
        Ok(token) => token,
        Err(e) => {
            tracing::warn!(error = %e, "token refresh failed; using the old token");
            credentials.token.clone()
        }
    }
}

/// The media's status changes, sent to the catalogue in order by a task of their own.
pub struct StatusTrail {
    sender: mpsc::UnboundedSender<MediaStatus>,
}

impl StatusTrail {
    /// Starts the trail: the record is created first (`New`), then every reported status.
    /// `record` `None` means the media already exists (a `/detect/{media_id}` job).
    pub fn start(
        tracker: &TaskTracker,
        catalog: Arc<dyn MediaCatalog>,
        token: BearerToken,
        id: MediaId,
        record: Option<MediaRecord>,
    ) -> Self {
        let (sender, mut statuses) = mpsc::unbounded_channel::<MediaStatus>();
        tracker.spawn(async move {
            if let Some(record) = record
                && let Err(e) = catalog.create_media(&record, &token).await
            {
                metrics::counter!("detections_media_updates_failed_total").increment(1);
                tracing::warn!(media = %id, error = %e, "media record not created");
            }
            while let Some(status) = statuses.recv().await {
                if let Err(e) = catalog.set_status(&id, status, &token).await {
                    metrics::counter!("detections_media_updates_failed_total").increment(1);
                    tracing::warn!(media = %id, status = status.name(), error = %e, "media status not updated");
                }
            }
        });
        Self { sender }
    }

    pub fn report(&self, status: MediaStatus) {
        // The task only ends once this sender is dropped.
        let _ = self.sender.send(status);
    }
}

/// An accepted annotation on its way to the sink: what it says, and the frame it shows.
pub struct FrameAnnotation {
    pub media_id: MediaId,
    /// Seconds from the start of the video (0 for a photo).
    pub at_seconds: f64,
    pub frame: Arc<RgbFrame>,
    pub detections: Vec<DetectionDto>,
    /// The client's `Authorization` header, passed on to the Annotations service.
    pub authorization: Option<String>,
    /// Its idempotency key, when the work may be done again (`Annotation::key`).
    pub key: Option<String>,
}

impl super::Collaborators {
    /// [`deliver_annotation`] to this application's sink.
    pub async fn deliver(&self, annotation: FrameAnnotation) {
        deliver_annotation(self.sink.as_ref(), &self.detector, annotation, None).await;
    }
}

impl FrameAnnotation {
    /// A photo's annotation (time 0), for the user of `token`.
    pub fn of_photo(
        media_id: &MediaId,
        frame: Arc<RgbFrame>,
        detections: Vec<DetectionDto>,
        token: &domain::auth::BearerToken,
        key: Option<String>,
    ) -> FrameAnnotation {
        FrameAnnotation {
            media_id: media_id.clone(),
            at_seconds: 0.0,
            frame,
            detections,
            authorization: Some(token.header().to_string()),
            key,
        }
    }
}

/// Hands one accepted annotation to the sink, with the frame as JPEG. Encoding
/// runs on a blocking thread; delivery failures are the sink's to count. A video
/// cancelled (`cancel`) while its frame was encoded delivers nothing.
pub async fn deliver_annotation(
    sink: &dyn AnnotationSink,
    detector: &Arc<FrameDetector>,
    annotation: FrameAnnotation,
    cancel: Option<&tokio_util::sync::CancellationToken>,
) {
    let FrameAnnotation {
        media_id,
        at_seconds,
        frame,
        detections,
        authorization,
        key,
    } = annotation;
    let media_id = &media_id;
    let encoder = Arc::clone(detector);
    let jpeg =
        tokio::task::spawn_blocking(move || encoder.encode_jpeg(&frame, ANNOTATION_JPEG_QUALITY))
            .await;
    let jpeg = match jpeg {
        Ok(Ok(jpeg)) => bytes::Bytes::from(jpeg),
        Ok(Err(e)) => {
            tracing::error!(media = %media_id, error = %e, "annotation image not encoded");
            bytes::Bytes::new()
        }
        Err(e) => {
            tracing::error!(media = %media_id, error = %e, "annotation image encoding aborted");
            bytes::Bytes::new()
        }
    };
    // A video cancelled while its frame was encoded: nothing reaches the sink after the
    // cancel's answer.
    if cancel.is_some_and(|c| c.is_cancelled()) {
        return;
    }
    let annotation = Annotation {
        media_id: media_id.clone(),
        video_time: domain::tracking::VideoTime::from_seconds(at_seconds),
        detections,
        jpeg,
        key,
    };
    if let Err(e) = sink.deliver(&annotation, authorization).await {
        tracing::error!(media = %media_id, error = %e, "annotation not delivered");
    }
}
