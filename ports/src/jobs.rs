//! Background detection jobs by media: the claim that makes a second job for the same
//! media a 409 (spec A3), the state `GET /detect/{media_id}` shows, and cancellation.
//!
//! State that a cluster shares: the in-process registry serves one replica; a
//! broker-backed one (a key-value bucket with create-if-absent) serves many, and is
//! one more adapter behind this trait.

use async_trait::async_trait;
use domain::job::Percent;
use domain::media::MediaId;
use tokio_util::sync::CancellationToken;

use crate::{JobView, MediaJobRequest};

/// A `POST /detect/{media_id}` job as accepted: the request, and the run whose id
/// its annotations' idempotency keys derive from (the same for a replica that takes
/// the job over and runs it again).
#[derive(Debug, Clone)]
pub struct JobOrder {
    pub request: MediaJobRequest,
    pub run: domain::job::RunId,
}

/// A step in a job's life, applied with the domain's transitions (`JobState`); an
/// illegal step (progress after a cancel, say) is ignored and the job keeps its state.
#[derive(Debug, Clone, PartialEq)]
pub enum JobStep {
    Start,
    Progress(Percent),
    Finish,
    Fail(String),
    /// Ended by shutdown (a cancel from `DELETE` is [`JobRegistry::cancel`]).
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobClaimError {
    /// A job is already queued or running for the media (409).
    #[error("a detection of media {0} is already running")]
    AlreadyRunning(MediaId),
    /// The registry's store cannot be reached (a broker that is down; 503).
    #[error("the job registry is unavailable: {0}")]
    Unavailable(String),
}

/// Background jobs by media. Finished jobs are kept for a while, so their result can
/// still be asked for; how many is the adapter's policy.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait JobRegistry: Send + Sync {
    /// Claims `media` for a new, queued job: refused while a job for it is unfinished.
    /// `stop` is the job's own token: [`cancel`](Self::cancel) fires it, wherever the
    /// cancel was asked for.
    ///
    /// `rerun` is the order, kept where several replicas share the registry so that
    /// another one can run the job again from the start if this one stops before it
    /// ends ([`next_orphan`](Self::next_orphan)); `None` for a job nobody else can run
    /// (a video upload whose bytes only this replica received).
    async fn claim(
        &self,
        media: &MediaId,
        rerun: Option<JobOrder>,
        stop: CancellationToken,
    ) -> Result<(), JobClaimError>;
    /// Waits for a job that a replica which stopped left unfinished, and claims it for
    /// this one (queued again, cancelled through `stop`); the caller runs it from the
    /// start. `None` when no job can ever be left to this replica (one process on its
    /// own): the caller stops asking.
    async fn next_orphan(&self, stop: CancellationToken) -> Option<JobOrder>;
    /// Applies `step` to the job of `media` (nothing when there is none).
    async fn advance(&self, media: &MediaId, step: JobStep);
    /// Marks the job cancelled and fires its token; `None` when there is no such job,
    /// the view as it was when it had already ended (cancelling then changes nothing).
    async fn cancel(&self, media: &MediaId) -> Option<JobView>;
    /// The latest job of `media`.
    async fn view(&self, media: &MediaId) -> Option<JobView>;
}
