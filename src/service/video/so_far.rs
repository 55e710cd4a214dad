//! What a video's run has found so far, and how far along it is.

use domain::settings::RecognitionSettings;
use domain::tracking::AnnotationGate;
use ports::{DetectError, DetectionDto, VideoError};

use super::{SharedFrame, VideoOutcome, VideoStop, video_error};

/// What a run has found so far.
pub(super) struct SoFar {
    pub(super) gate: AnnotationGate,
    /// Every accepted frame's detections, in order.
    pub(super) accepted: Vec<DetectionDto>,
    /// The percent last published.
    pub(super) reported: u8,
    /// The percent last written to the job's record.
    pub(super) recorded: u8,
    /// Frames inferred.
    pub(super) processed: u64,
    info: ports::VideoInfo,
}

impl SoFar {
    pub(super) fn new(settings: &RecognitionSettings, info: ports::VideoInfo) -> SoFar {
        SoFar {
            gate: AnnotationGate::new(settings),
            accepted: Vec::new(),
            reported: 0,
            recorded: 0,
            processed: 0,
            info,
        }
    }

    /// Never below what was already published.
    pub(super) fn percent_at(&self, frame: &SharedFrame) -> u8 {
        percent_of(frame, self.info.duration_secs, self.info.frames()).max(self.reported)
    }

    /// The run's outcome once every frame is published: a decoder failure after some
    /// frames is a note (a truncated file), before any it is the error.
    pub(super) fn outcome(self, failure: Option<VideoError>) -> Result<VideoOutcome, VideoStop> {
        let broken = match failure {
            None => None,
            Some(VideoError::Broken(reason)) if self.processed > 0 => Some(format!(
                "decoding stopped after {} inferred frames: {reason}",
                self.processed
            )),
            Some(other) => return Err(VideoStop::Failed(video_error(other))),
        };
        if self.processed == 0 && broken.is_none() {
            return Err(VideoStop::Failed(DetectError::BadInput(
                "not a decodable video: it has no frames".into(),
            )));
        }
        Ok(VideoOutcome {
            detections: self.accepted,
            broken,
        })
    }
}

/// Percent done by the frame's time (or index), below 100 until the end.
fn percent_of(frame: &SharedFrame, duration: Option<f64>, frames: Option<u64>) -> u8 {
    let fraction = match (duration, frames) {
        (Some(d), _) if d > 0.0 => frame.timestamp / d,
        (_, Some(n)) if n > 0 => frame.index as f64 / n as f64,
        _ => 0.0,
    };
    (fraction * 100.0).clamp(0.0, 99.0) as u8
}
