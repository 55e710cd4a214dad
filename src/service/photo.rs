//! The photo path shared by the synchronous request and the background job: decode
//! while the engine starts, then detect on a blocking thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use domain::settings::RecognitionSettings;
use ports::{DetectError, DetectionDto, RgbFrame};

use super::Collaborators;
use super::errors::{frame_error, unavailable};

/// Decode (while the engine starts: both take time, neither needs the other), then
/// detect on a blocking thread.
pub(crate) async fn detect_photo(
    parts: &Collaborators,
    content: Bytes,
    settings: RecognitionSettings,
) -> Result<(Arc<RgbFrame>, Vec<DetectionDto>), DetectError> {
    let detector = Arc::clone(&parts.detector);
    let decoding = tokio::task::spawn_blocking(move || detector.decode(&content));
    let engine = parts.engines.ensure().await;
    let frame = decoding
        .await
        .map_err(|e| DetectError::Internal(format!("decoding aborted: {e}")))?
        .map_err(|e| DetectError::BadInput(format!("not a decodable image: {e}")))?;
    let engine = engine.map_err(unavailable)?;
    let detector = Arc::clone(&parts.detector);
    let frame = Arc::new(frame);
    let shared_frame = Arc::clone(&frame);
    let _active = ActiveInference::enter();
    let started = Instant::now();
    let dtos = tokio::task::spawn_blocking(move || {
        detector
            .detect_frame(&engine, &shared_frame, &settings)
            .map(|d| detector.to_dtos(&d))
    })
    .await
    .map_err(|e| DetectError::Internal(format!("detection aborted: {e}")))?
    .map_err(frame_error)?;
    metrics::histogram!("detections_frame_seconds").record(started.elapsed().as_secs_f64());
    Ok((frame, dtos))
}

/// Counts running inferences in the `detections_active_inferences` gauge.
pub(crate) struct ActiveInference;

static ACTIVE: AtomicUsize = AtomicUsize::new(0);

impl ActiveInference {
    pub(crate) fn enter() -> Self {
        let now = ACTIVE.fetch_add(1, Ordering::SeqCst) + 1;
        metrics::gauge!("detections_active_inferences").set(now as f64);
        Self
    }
}

impl Drop for ActiveInference {
    fn drop(&mut self) {
        let now = ACTIVE.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("detections_active_inferences").set(now as f64);
    }
}
