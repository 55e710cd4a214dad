//! The application: implements the driving port over the engine manager, the frame
//! detector, the event stream, the media catalogue and store, and the annotation sink.

mod errors;
mod events;
mod finish;
mod lifecycle;
mod media_job;
mod photo;
mod request;
mod staging;
mod upload;
mod video;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain::classes::ClassTable;
use domain::job::MediaKind;
use domain::media::{MediaId, sniff_kind};
use ports::{
    AnnotationSink, DetectError, DetectRequest, DetectionDto, DetectionService, EventPublisher,
    EventSubscription, Health, JobRegistry, JobView, MediaCatalog, MediaEventStatus,
    MediaJobRequest, MediaStore, StreamEvent, SubscribeRequest, UploadContent, UploadSink,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::detect::FrameDetector;
use crate::engine::EngineManager;
pub(crate) use errors::{claim_error, frame_error, unavailable};
pub(crate) use events::{publish, publish_at};
pub(crate) use photo::{ActiveInference, detect_photo};
use request::Upload;

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
    /// Background jobs by media (the 409 of spec A3).
    pub jobs: Arc<dyn JobRegistry>,
    /// The broker the replicas share (`None`: one process on its own).
    pub cluster: Option<Arc<dyn ports::Membership>>,
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
    metrics::describe_gauge!(
        crate::batcher::QUEUED_VIEWS,
        "Views waiting for an engine call (the batcher's queue depth)"
    );
    metrics::gauge!(crate::batcher::QUEUED_VIEWS).set(0.0);
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
        let replica = self.parts.cluster.as_ref().map(|c| c.status().replica);
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
                events.publish(StreamEvent::Availability {
                    health: status,
                    replica: replica.clone(),
                });
            }
        });
    }

    /// Runs the jobs that replicas which stopped left unfinished, as they are found
    /// (from the start; a cluster only). Call once, inside the runtime.
    pub fn spawn_takeovers(&self) {
        let jobs = Arc::clone(&self.parts.jobs);
        let stopping = self.shared.stopping.clone();
        let tasks = self.shared.tasks.clone();
        let runner = self.media_job();
        tokio::spawn(async move {
            loop {
                let stop = stopping.child_token();
                let orphan = tokio::select! {
                    () = stopping.cancelled() => return,
                    orphan = jobs.next_orphan(stop.clone()) => orphan,
                };
                let Some(order) = orphan else { return };
                tracing::info!(media = %order.request.media_id, "taking over a job left by a replica that stopped");
                tasks.spawn(runner.clone().run(order, stop));
            }
        });
    }

    fn media_job(&self) -> media_job::MediaJob {
        media_job::MediaJob {
            parts: self.parts.clone(),
            shared: Arc::clone(&self.shared),
            max_media_bytes: self.limits.max_media_bytes,
        }
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

    fn cluster(&self) -> Option<ports::ClusterStatus> {
        self.parts.cluster.as_ref().map(|c| c.status())
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
                Some(staging::staged_kind(staged, upload.file_name.as_deref()))
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
        let staging = tokio::task::spawn_blocking(move || store.stage(MediaKind::Video))
            .await
            .map_err(|e| DetectError::Internal(e.to_string()))?
            .map_err(staging::staging_failed)?;
        Ok(Box::new(staging::StagingSink(staging)))
    }

    async fn start_media_job(&self, request: MediaJobRequest) -> Result<MediaId, DetectError> {
        self.refuse_when_stopping()?;
        let id = request.media_id.clone();
        let cancel = self.shared.stopping.child_token();
        let order = ports::JobOrder {
            run: new_run(&id),
            request,
        };
        self.parts
            .jobs
            .claim(&id, Some(order.clone()), cancel.clone())
            .await
            .map_err(claim_error)?;
        self.shared.tasks.spawn(self.media_job().run(order, cancel));
        Ok(id)
    }

    async fn start_video_upload(
        &self,
        upload: ports::VideoUpload,
    ) -> Result<ports::UploadStarted, DetectError> {
        upload::start(self, upload).await
    }

    async fn job(&self, media_id: &MediaId) -> Option<JobView> {
        self.parts.jobs.view(media_id).await
    }

    async fn cancel_job(&self, media_id: &MediaId) -> Result<JobView, DetectError> {
        self.parts
            .jobs
            .cancel(media_id)
            .await
            .ok_or_else(|| DetectError::NotFound(format!("no detection job for media {media_id}")))
    }

    fn subscribe(&self, request: SubscribeRequest) -> EventSubscription {
        self.parts.events.subscribe(request)
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

#[cfg(test)]
mod upload_tests;

/// A run id unlikely to repeat anywhere: the time, the process, a counter and the
/// media (two replicas' claims of one media are serialised by the registry).
fn new_run(media: &MediaId) -> domain::job::RunId {
    use std::hash::{Hash, Hasher};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        media.as_str(),
    )
        .hash(&mut hasher);
    domain::job::RunId::from_u128(nanos ^ (u128::from(hasher.finish()) << 64))
}
