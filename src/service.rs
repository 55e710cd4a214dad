//! The application: implements the driving port over the engine manager, the frame
//! detector, the event stream, the media catalogue and store, and the annotation sink.

mod errors;
mod events;
mod finish;
mod lifecycle;
mod media_job;
mod photo;
mod staging;
mod upload;
mod video;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use domain::classes::ClassTable;
use domain::job::{MediaKind, MediaStatus};
use domain::media::{MediaId, sniff_kind, stored_extension};
use domain::settings::RecognitionSettings;
use ports::{
    AnnotationSink, DetectError, DetectRequest, DetectionDto, DetectionService, EventPublisher,
    EventSubscription, Health, JobView, MediaCatalog, MediaEventStatus, MediaJobRequest,
    MediaRecord, MediaStore, RgbFrame, StreamEvent, SubscribeRequest, UploadContent, UploadSink,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::detect::FrameDetector;
use crate::engine::EngineManager;
use crate::job_registry::JobRegistry;
pub(crate) use errors::{frame_error, unavailable};
pub(crate) use events::{publish, publish_at};
use lifecycle::StatusTrail;
pub(crate) use photo::{ActiveInference, detect_photo};

/// How much detection work runs and waits at once. Photos and videos have slots of
/// their own, so videos that run for minutes never hold the slots photos need; at the
/// engine the batcher serves both in turn.
#[derive(Debug, Clone, Copy)]
pub struct Admission {
    /// Photos detected at once.
    pub max_running: usize,
    /// Videos detected at once.
    pub max_videos: usize,
    pub queue_capacity: usize,
}

/// The driven ports the application works against.
#[derive(Clone)]
pub struct Collaborators {
    pub engines: Arc<EngineManager>,
    pub detector: Arc<FrameDetector>,
    pub events: Arc<dyn EventPublisher>,
    pub sink: Arc<dyn AnnotationSink>,
    pub catalog: Arc<dyn MediaCatalog>,
    pub store: Arc<dyn MediaStore>,
    pub video: Arc<dyn ports::VideoDecoder>,
    /// Memory for what requests hold in flight; videos reserve their frames here.
    pub memory: Arc<ports::MemoryBudget>,
}

/// Limits of the application.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub admission: Admission,
    /// Largest stored media file a `/detect/{media_id}` job reads.
    pub max_media_bytes: u64,
}

/// Describes the service's own metrics to the installed recorder and shows them at 0
/// from the start (call once, after installing it).
pub fn describe_metrics() {
    metrics::describe_counter!(
        video::FRAMES_INFERRED_TOTAL,
        "Video frames that went through the engine (every frame_period_recognition-th)"
    );
    metrics::counter!(video::FRAMES_INFERRED_TOTAL).increment(0);
    metrics::describe_histogram!(
        crate::batcher::BATCH_SIZE,
        "Views each engine call carried (dynamic batching across requests)"
    );
}

pub struct Application {
    parts: Collaborators,
    shared: Arc<ServiceState>,
    limits: Limits,
}

/// What the request handlers and the background jobs share.
struct ServiceState {
    running: Arc<Semaphore>,
    videos: Arc<Semaphore>,
    waiting: AtomicUsize,
    jobs: JobRegistry,
    /// Cancelled at shutdown; every job's token is a child of it.
    stopping: CancellationToken,
    /// Background jobs and status trails, waited for at shutdown.
    tasks: TaskTracker,
}

impl ServiceState {
    fn slots(&self, kind: MediaKind) -> &Arc<Semaphore> {
        match kind {
            MediaKind::Video => &self.videos,
            MediaKind::Image => &self.running,
        }
    }
}

impl Application {
    pub fn new(parts: Collaborators, limits: Limits) -> Self {
        Self {
            shared: Arc::new(ServiceState {
                running: Arc::new(Semaphore::new(limits.admission.max_running.max(1))),
                videos: Arc::new(Semaphore::new(limits.admission.max_videos.max(1))),
                waiting: AtomicUsize::new(0),
                jobs: JobRegistry::default(),
                stopping: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
            parts,
            limits,
        }
    }

    pub fn engines(&self) -> &Arc<EngineManager> {
        &self.parts.engines
    }

    /// Publishes every engine transition on the event stream and in metrics. Call once,
    /// inside the runtime.
    pub fn spawn_availability_feed(&self) {
        let mut transitions = self.parts.engines.transitions();
        let events = Arc::clone(&self.parts.events);
        let stopping = self.shared.stopping.clone();
        metrics::gauge!("detections_engine_state")
            .set(f64::from(self.parts.engines.status().availability.code()));
        tokio::spawn(async move {
            loop {
                let status = tokio::select! {
                    () = stopping.cancelled() => return,
                    next = transitions.recv() => match next {
                        Ok(status) => status,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                };
                metrics::gauge!("detections_engine_state")
                    .set(f64::from(status.availability.code()));
                events.publish(StreamEvent::Availability(status));
            }
        });
    }

    /// Graceful shutdown (spec B): new work is refused, background jobs stop at a frame
    /// boundary with a final `Error`, the outbox makes a last pass over its journal
    /// (what is left is sent at the next start), event streams end. Returns within `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.shared.stopping.cancel();
        self.shared.tasks.close();
        if tokio::time::timeout(grace, self.shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("background work did not stop within the grace period");
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.parts.sink.close(left).await;
        self.parts.events.close();
    }

    fn refuse_when_stopping(&self) -> Result<(), DetectError> {
        if self.shared.stopping.is_cancelled() {
            Err(DetectError::ShuttingDown)
        } else {
            Ok(())
        }
    }

    /// Waits for a turn to run, or refuses at once when the queue is full.
    async fn admit(&self, kind: MediaKind) -> Result<OwnedSemaphorePermit, DetectError> {
        let slots = self.shared.slots(kind);
        if let Ok(permit) = Arc::clone(slots).try_acquire_owned() {
            return Ok(permit);
        }
        let queued = self.shared.waiting.fetch_add(1, Ordering::SeqCst);
        let _leave = scopeguard(|| {
            self.shared.waiting.fetch_sub(1, Ordering::SeqCst);
        });
        if queued >= self.limits.admission.queue_capacity {
            return Err(DetectError::Busy {
                retry_after_secs: 1,
            });
        }
        Arc::clone(slots)
            .acquire_owned()
            .await
            .map_err(|_| DetectError::ShuttingDown)
    }

    /// Decodes and detects one photo; returns the frame too (for the annotation image).
    async fn detect_photo(
        &self,
        content: Bytes,
        settings: RecognitionSettings,
    ) -> Result<(Arc<RgbFrame>, Vec<DetectionDto>), DetectError> {
        detect_photo(&self.parts, content, settings).await
    }

    /// Stores an upload (writes it, or moves its staged file) and starts its status
    /// trail (spec A8).
    async fn begin_upload(
        &self,
        id: &MediaId,
        upload: &Upload,
        content: &UploadContent,
        credentials: &domain::auth::Credentials,
        kind: MediaKind,
    ) -> Result<(StatusTrail, domain::auth::BearerToken, std::path::PathBuf), DetectError> {
        let token = lifecycle::fresh_token(self.parts.catalog.as_ref(), credentials).await;
        let store = Arc::clone(&self.parts.store);
        let extension = stored_extension(upload.file_name.as_deref(), kind);
        let stored_id = id.clone();
        let path = match content {
            UploadContent::Memory(bytes) => {
                let content = bytes.clone();
                tokio::task::spawn_blocking(move || {
                    store.store(&stored_id, kind, &extension, &content)
                })
                .await
            }
            UploadContent::Staged(staged) => {
                let from = staged.path.clone();
                tokio::task::spawn_blocking(move || {
                    store.adopt(&from, &stored_id, kind, &extension)
                })
                .await
            }
        }
        .map_err(|e| DetectError::Internal(format!("storing the upload aborted: {e}")))?
        .map_err(|e| DetectError::Internal(e.to_string()))?;
        let record = MediaRecord {
            id: id.clone(),
            name: upload.file_name.clone().unwrap_or_else(|| {
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            }),
            path: path.clone(),
            kind,
            user_id: token.user_id().map(str::to_string),
        };
        let trail = StatusTrail::start(
            &self.shared.tasks,
            Arc::clone(&self.parts.catalog),
            token.clone(),
            id.clone(),
            Some(record),
        );
        trail.report(MediaStatus::AiProcessing);
        Ok((trail, token, path))
    }

    /// A photo in a synchronous `POST /detect`. A staged one (above the in-memory limit)
    /// is read only once it has a detection slot.
    async fn detect_image(
        &self,
        upload: Upload,
        content: UploadContent,
    ) -> Result<Vec<DetectionDto>, DetectError> {
        let settings = RecognitionSettings::default().merged(&upload.settings);
        let permit = self.admit(MediaKind::Image).await?;
        let bytes = match &content {
            UploadContent::Memory(bytes) => bytes.clone(),
            UploadContent::Staged(staged) => {
                tokio::fs::read(&staged.path)
                    .await
                    .map(Bytes::from)
                    .map_err(|e| DetectError::Internal(format!("reading the staged upload: {e}")))?
            }
        };
        let id = MediaId::of_content(&bytes);
        let lifecycle = match &upload.credentials {
            Some(credentials) => Some(
                self.begin_upload(&id, &upload, &content, credentials, MediaKind::Image)
                    .await?,
            ),
            None => None,
        };
        let outcome = self.detect_photo(bytes, settings).await;
        // The detection slot is free while the annotation is journaled (a disk write):
        // a slow disk delays this answer, not the next photo's detection.
        drop(permit);
        match &outcome {
            Ok((frame, dtos)) => {
                if !dtos.is_empty() {
                    self.publish(&id, MediaEventStatus::AiProcessing, dtos.clone(), None);
                    if let Some((_, token, _)) = &lifecycle {
                        let annotation = lifecycle::FrameAnnotation {
                            media_id: id.clone(),
                            at_seconds: 0.0,
                            frame: Arc::clone(frame),
                            detections: dtos.clone(),
                            authorization: Some(token.header().to_string()),
                        };
                        lifecycle::deliver_annotation(
                            self.parts.sink.as_ref(),
                            &self.parts.detector,
                            annotation,
                            None,
                        )
                        .await;
                    }
                }
                self.publish(&id, MediaEventStatus::AiProcessed, vec![], None);
                if let Some((trail, _, _)) = &lifecycle {
                    trail.report(MediaStatus::AiProcessed);
                }
            }
            Err(e) => {
                self.publish(&id, MediaEventStatus::Error, vec![], Some(e.to_string()));
                if let Some((trail, _, _)) = &lifecycle {
                    trail.report(MediaStatus::Error);
                }
            }
        }
        outcome.map(|(_, dtos)| dtos)
    }

    /// A video in a synchronous `POST /detect`: all accepted detections, in order.
    async fn detect_video(
        &self,
        upload: Upload,
        content: UploadContent,
    ) -> Result<Vec<DetectionDto>, DetectError> {
        let settings = RecognitionSettings::default().merged(&upload.settings);
        let _permit = self.admit(MediaKind::Video).await?;
        let id = content_id(&content).await?;
        let lifecycle = match &upload.credentials {
            Some(credentials) => Some(
                self.begin_upload(&id, &upload, &content, credentials, MediaKind::Video)
                    .await?,
            ),
            None => None,
        };
        let source = match (&lifecycle, &content) {
            (Some((_, _, path)), _) => ports::VideoSource::Path(path.clone()),
            (None, UploadContent::Memory(bytes)) => ports::VideoSource::Memory(bytes.clone()),
            (None, UploadContent::Staged(staged)) => ports::VideoSource::Path(staged.path.clone()),
        };
        let run = video::VideoRun {
            parts: &self.parts,
            settings,
            id: video::EventId::known(id.clone()),
            authorization: lifecycle.as_ref().map(|(_, t, _)| t.header().to_string()),
            cancel: self.shared.stopping.child_token(),
            on_progress: &|_| {},
            tracker: &self.shared.tasks,
        };
        let outcome = run.run(source).await;
        let finish = finish::Finish {
            state: &self.shared,
            events: self.parts.events.as_ref(),
            media: &id,
            jobs: &[],
            trail: lifecycle.as_ref().map(|(trail, _, _)| trail),
            what: "video",
        };
        match outcome {
            Ok(done) => {
                finish.report(finish::RunEnd::Processed { note: done.broken });
                Ok(done.detections)
            }
            Err(stop) => {
                let error = match stop {
                    video::VideoStop::Cancelled => DetectError::ShuttingDown,
                    video::VideoStop::Failed(e) => e,
                };
                finish.report(finish::RunEnd::Failed(error.to_string()));
                Err(error)
            }
        }
    }

    fn publish(
        &self,
        id: &MediaId,
        status: MediaEventStatus,
        annotations: Vec<DetectionDto>,
        error: Option<String>,
    ) {
        publish(self.parts.events.as_ref(), id, status, annotations, error);
    }
}

#[async_trait]
impl DetectionService for Application {
    fn health(&self) -> Health {
        self.parts.engines.status()
    }

    fn classes(&self) -> Arc<ClassTable> {
        self.parts.detector.classes_shared()
    }

    async fn detect(&self, request: DetectRequest) -> Result<Vec<DetectionDto>, DetectError> {
        self.refuse_when_stopping()?;
        let DetectRequest {
            content,
            file_name,
            settings,
            credentials,
        } = request;
        let upload = Upload {
            file_name,
            settings,
            credentials,
        };
        let kind = match &content {
            UploadContent::Memory(bytes) if bytes.is_empty() => None,
            UploadContent::Staged(staged) if staged.size == 0 => None,
            UploadContent::Memory(bytes) => Some(sniff_kind(bytes, upload.file_name.as_deref())),
            UploadContent::Staged(staged) => {
                Some(staging::staged_kind(&staged.path, upload.file_name.as_deref()).await)
            }
        };
        match (kind, &content) {
            (None, _) => Err(DetectError::BadInput("the file is empty".into())),
            (Some(Some(MediaKind::Video)), _) => self.detect_video(upload, content).await,
            // A large body that is no photo by its first bytes is not read back at all.
            (Some(None), UploadContent::Staged(_)) => Err(DetectError::BadInput(
                "unsupported or unrecognised image format".into(),
            )),
            (Some(_), _) => self.detect_image(upload, content).await,
        }
    }

    async fn stage_upload(&self) -> Result<Box<dyn UploadSink>, DetectError> {
        self.refuse_when_stopping()?;
        let store = Arc::clone(&self.parts.store);
        // Staged with the videos (what most large uploads are); a photo moves from there.
        let path = tokio::task::spawn_blocking(move || store.stage(MediaKind::Video))
            .await
            .map_err(|e| DetectError::Internal(e.to_string()))?
            .map_err(|e| DetectError::Internal(e.to_string()))?;
        Ok(Box::new(staging::FileSink::create(path).await?))
    }

    async fn start_media_job(&self, request: MediaJobRequest) -> Result<MediaId, DetectError> {
        self.refuse_when_stopping()?;
        let id = request.media_id.clone();
        let cancel = self
            .shared
            .jobs
            .register(&id, &self.shared.stopping)
            .map_err(|e| DetectError::Conflict(e.to_string()))?;
        let work = media_job::MediaJob {
            parts: self.parts.clone(),
            shared: Arc::clone(&self.shared),
            max_media_bytes: self.limits.max_media_bytes,
        };
        self.shared.tasks.spawn(work.run(request, cancel));
        Ok(id)
    }

    async fn start_video_upload(
        &self,
        upload: ports::VideoUpload,
    ) -> Result<ports::UploadStarted, DetectError> {
        upload::start(self, upload).await
    }

    fn job(&self, media_id: &MediaId) -> Option<JobView> {
        self.shared.jobs.view(media_id)
    }

    fn cancel_job(&self, media_id: &MediaId) -> Result<JobView, DetectError> {
        self.shared
            .jobs
            .cancel(media_id)
            .ok_or_else(|| DetectError::NotFound(format!("no detection job for media {media_id}")))
    }

    fn subscribe(&self, request: SubscribeRequest) -> EventSubscription {
        self.parts.events.subscribe(request)
    }
}

/// What came with an upload besides its content.
struct Upload {
    file_name: Option<String>,
    settings: domain::settings::SettingsPatch,
    credentials: Option<domain::auth::Credentials>,
}

/// The content id of spec A8: over the bytes, or over the staged file's samples.
async fn content_id(content: &UploadContent) -> Result<MediaId, DetectError> {
    match content {
        UploadContent::Memory(bytes) => Ok(MediaId::of_content(bytes)),
        UploadContent::Staged(staged) => {
            let (path, size) = (staged.path.clone(), staged.size);
            tokio::task::spawn_blocking(move || upload::hash_file(&path, size))
                .await
                .map_err(|e| DetectError::Internal(e.to_string()))?
                .map_err(|e| DetectError::Internal(format!("reading the staged upload: {e}")))
        }
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
