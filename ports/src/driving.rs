//! The driving port: what the inbound (HTTP) adapter asks of the application.

use async_trait::async_trait;
use bytes::Bytes;
use domain::auth::Credentials;
use domain::availability::Availability;
use domain::media::MediaId;
use domain::settings::SettingsPatch;

use crate::events::{DetectionDto, EventSubscription, SubscribeRequest};
pub use crate::media::StagedUpload;

/// What `/health` reports; answering it never waits on the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub availability: Availability,
    /// Set once an engine is loaded.
    pub engine_type: Option<crate::EngineKind>,
    /// What the loaded engine computes in, where it chose (OpenVINO).
    pub precision: Option<crate::ComputePrecision>,
}

/// The uploaded file of a `POST /detect`.
#[derive(Debug)]
pub enum UploadContent {
    /// A photo-sized body, held in memory.
    Memory(Bytes),
    /// A video, or a body above the in-memory limit, written to a staged file as it
    /// arrived (see [`DetectionService::stage_upload`]).
    Staged(StagedUpload),
}

/// Where a large upload is written while it arrives.
#[async_trait]
pub trait UploadSink: Send {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), DetectError>;
    /// Everything written: the staged upload.
    async fn finish(self: Box<Self>) -> Result<StagedUpload, DetectError>;
}

/// A synchronous detection of one uploaded photo or video.
#[derive(Debug)]
pub struct DetectRequest {
    pub content: UploadContent,
    /// The uploaded file's name; a hint only, the content decides.
    pub file_name: Option<String>,
    /// Settings from the request, over the defaults.
    pub settings: SettingsPatch,
    /// With a bearer token the media lifecycle of spec A8 runs as well.
    pub credentials: Option<Credentials>,
}

/// `POST /detect/{media_id}`: a media the Annotations service knows, in the background.
#[derive(Debug, Clone)]
pub struct MediaJobRequest {
    pub media_id: MediaId,
    pub credentials: Credentials,
    /// Overrides the user's stored settings.
    pub settings: SettingsPatch,
}

/// `POST /detect/video`: a video upload detected while it still arrives.
pub struct VideoUpload {
    pub body: Box<dyn crate::video::ByteStream>,
    /// `X-Filename`: the original name (its extension names the stored file).
    pub file_name: String,
    pub settings: SettingsPatch,
    pub credentials: Option<Credentials>,
}

impl std::fmt::Debug for VideoUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoUpload")
            .field("file_name", &self.file_name)
            .finish_non_exhaustive()
    }
}

/// An accepted video upload.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadStarted {
    /// The content id of spec A8, known once the upload has ended.
    pub media_id: MediaId,
    /// The id events carry until the content id is known (frames decoded while the
    /// upload still arrived); `DELETE /detect/{upload_id}` cancels as well.
    pub upload_id: MediaId,
}

/// A background job as `GET /detect/{media_id}` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub media_id: MediaId,
    pub status: domain::job::JobStatus,
    pub percent: u8,
    pub error: Option<String>,
    /// The replica whose record it is (the one running it), in a cluster.
    pub replica: Option<String>,
}

/// Every way a detection can fail, as the client should learn it. The HTTP adapter maps
/// these to status codes in one place.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DetectError {
    /// The client's input is unusable (400).
    #[error("{0}")]
    BadInput(String),
    /// The input was understood but processing it failed (422).
    #[error("{0}")]
    Unprocessable(String),
    /// No usable engine (503); carries its state, with the reason where it has one.
    #[error("engine not available: {}{}", availability.name(), availability.reason().map(|r| format!(" ({r})")).unwrap_or_default())]
    EngineUnavailable { availability: Availability },
    /// Too much work queued (503 with Retry-After).
    #[error("too many detections in progress, retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// The request lacks what it needs to act for the user (401).
    #[error("{0}")]
    Unauthorized(String),
    /// No such job or media (404).
    #[error("{0}")]
    NotFound(String),
    /// A detection of the same media is already running (409).
    #[error("{0}")]
    Conflict(String),
    /// A service this one depends on failed (502).
    #[error("{0}")]
    Upstream(String),
    /// The service is shutting down (503).
    #[error("the service is shutting down")]
    ShuttingDown,
    /// Our fault (500).
    #[error("internal error: {0}")]
    Internal(String),
}

#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DetectionService: Send + Sync {
    fn health(&self) -> Health;
    /// This replica in its cluster; `None` for one process on its own.
    fn cluster(&self) -> Option<crate::ClusterStatus>;
    /// classes.json as loaded (for `GET /classes`).
    fn classes(&self) -> std::sync::Arc<domain::classes::ClassTable>;
    async fn detect(&self, request: DetectRequest) -> Result<Vec<DetectionDto>, DetectError>;
    /// A staged file for an upload too large to hold in memory (a video, or a body above
    /// the in-memory limit), to be written as it arrives and then passed to `detect`.
    async fn stage_upload(&self) -> Result<Box<dyn UploadSink>, DetectError>;
    /// Starts a background detection; answers once it is accepted.
    async fn start_media_job(&self, request: MediaJobRequest) -> Result<MediaId, DetectError>;
    /// Detects a video while it uploads; answers once the upload has ended (the media
    /// id is its content hash), while detection goes on in the background.
    async fn start_video_upload(&self, upload: VideoUpload) -> Result<UploadStarted, DetectError>;
    /// The latest job of a media, if one is known.
    async fn job(&self, media_id: &MediaId) -> Option<JobView>;
    /// Cancels a queued or running job; it stops at the next frame boundary.
    async fn cancel_job(&self, media_id: &MediaId) -> Result<JobView, DetectError>;
    /// The SSE stream (spec A7, B).
    fn subscribe(&self, request: SubscribeRequest) -> EventSubscription;
}
