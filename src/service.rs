//! The application: implements the driving port over the engine manager and the
//! frame detector.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use domain::classes::ClassTable;
use domain::media::MediaId;
use domain::settings::RecognitionSettings;
use ports::{
    DetectError, DetectRequest, DetectionDto, DetectionService, EventSubscription, Health, JobView,
    MediaJobRequest, SubscribeRequest,
};
use tokio::sync::Semaphore;

use crate::detect::{FrameDetector, FrameError};
use crate::engine::{EngineManager, EngineUnavailable};

/// How much detection work runs and waits at once.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    pub max_running: usize,
    pub queue_capacity: usize,
}

pub struct Application {
    engines: Arc<EngineManager>,
    detector: Arc<FrameDetector>,
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    admission: Admission,
}

impl Application {
    pub fn new(
        engines: Arc<EngineManager>,
        detector: Arc<FrameDetector>,
        admission: Admission,
    ) -> Self {
        Self {
            engines,
            detector,
            running: Arc::new(Semaphore::new(admission.max_running.max(1))),
            waiting: AtomicUsize::new(0),
            admission,
        }
    }

    pub fn engines(&self) -> &Arc<EngineManager> {
        &self.engines
    }

    /// Waits for a turn to run, or refuses at once when the queue is full.
    async fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, DetectError> {
        if let Ok(permit) = Arc::clone(&self.running).try_acquire_owned() {
            return Ok(permit);
        }
        let queued = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _leave = scopeguard(|| {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        });
        if queued >= self.admission.queue_capacity {
            return Err(DetectError::Busy {
                retry_after_secs: 1,
            });
        }
        Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| DetectError::ShuttingDown)
    }
}

#[async_trait]
impl DetectionService for Application {
    fn health(&self) -> Health {
        let status = self.engines.status();
        Health {
            availability: status.availability,
            engine_type: status.engine_type,
        }
    }

    fn classes(&self) -> Arc<ClassTable> {
        self.detector.classes_shared()
    }

    async fn detect(&self, request: DetectRequest) -> Result<Vec<DetectionDto>, DetectError> {
        if request.content.is_empty() {
            return Err(DetectError::BadInput("the file is empty".into()));
        }
        let settings = RecognitionSettings::default().merged(&request.settings);
        let _permit = self.admit().await?;
        // Decode while the engine starts: both take time, neither needs the other.
        let detector = Arc::clone(&self.detector);
        let content = request.content.clone();
        let decoding = tokio::task::spawn_blocking(move || detector.decode(&content));
        let engine = self.engines.ensure().await;
        let frame = decoding
            .await
            .map_err(|e| DetectError::Internal(format!("decoding aborted: {e}")))?
            .map_err(|e| DetectError::BadInput(format!("not a decodable image: {e}")))?;
        let engine = engine.map_err(unavailable)?;
        let detector = Arc::clone(&self.detector);
        tokio::task::spawn_blocking(move || {
            detector
                .detect_frame(engine.as_ref(), &frame, &settings)
                .map(|d| detector.to_dtos(&d))
        })
        .await
        .map_err(|e| DetectError::Internal(format!("detection aborted: {e}")))?
        .map_err(frame_error)
    }

    async fn start_media_job(&self, request: MediaJobRequest) -> Result<MediaId, DetectError> {
        Err(DetectError::NotFound(format!(
            "media {} cannot be processed yet",
            request.media_id
        )))
    }

    fn job(&self, _media_id: &MediaId) -> Option<JobView> {
        None
    }

    fn cancel_job(&self, media_id: &MediaId) -> Result<JobView, DetectError> {
        Err(DetectError::NotFound(format!(
            "no job for media {media_id}"
        )))
    }

    fn subscribe(&self, _request: SubscribeRequest) -> EventSubscription {
        struct Closed;
        #[async_trait]
        impl ports::EventReceiver for Closed {
            async fn next(&mut self) -> Option<ports::StreamItem> {
                None
            }
        }
        EventSubscription::new(Closed)
    }
}

fn unavailable(error: EngineUnavailable) -> DetectError {
    let availability = error.status.availability;
    DetectError::EngineUnavailable {
        availability: availability.name().to_string(),
        reason: availability.reason().map(str::to_string),
    }
}

fn frame_error(error: FrameError) -> DetectError {
    match error {
        FrameError::Decode(e) => DetectError::BadInput(format!("not a decodable image: {e}")),
        FrameError::Output(e) => {
            DetectError::Unprocessable(format!("cannot read the model output: {e}"))
        }
        FrameError::Engine(e) => DetectError::Unprocessable(e.to_string()),
        FrameError::Preprocess(e) => DetectError::Internal(e.to_string()),
    }
}

/// Runs `f` when dropped (also when the future holding it is cancelled).
fn scopeguard<F: FnMut()>(f: F) -> impl Drop {
    struct Guard<F: FnMut()>(F);
    impl<F: FnMut()> Drop for Guard<F> {
        fn drop(&mut self) {
            (self.0)()
        }
    }
    Guard(f)
}

#[cfg(test)]
mod tests;
