//! One `POST /detect/{media_id}` job (spec A3): find the media and the user's settings
//! in the catalogue, read the stored file, detect, and report on the event stream, to
//! the catalogue and to the annotation sink. Stops at a frame boundary when cancelled.

use std::sync::Arc;

use domain::job::{MediaKind, MediaStatus};
use domain::media::sniff_kind;
use domain::settings::{RecognitionSettings, SettingsPatch};
use ports::{DetectError, JobOrder, JobStep, MediaEventStatus, MediaJobRequest};
use tokio_util::sync::CancellationToken;

use super::finish::{Finish, RunEnd};
use super::lifecycle::{self, StatusTrail};
use super::{Collaborators, ServiceState, detect_photo, publish};

#[derive(Clone)]
pub(super) struct MediaJob {
    pub parts: Collaborators,
    pub shared: Arc<ServiceState>,
    pub max_media_bytes: u64,
}

/// Why a job ended early.
enum Stop {
    Cancelled,
    Failed(String),
}

impl MediaJob {
    pub async fn run(self, order: JobOrder, cancel: CancellationToken) {
        let JobOrder { request, run } = order;
        let id = request.media_id.clone();
        let token = lifecycle::fresh_token(self.parts.catalog.as_ref(), &request.credentials).await;
        let trail = StatusTrail::start(
            &self.shared.tasks,
            Arc::clone(&self.parts.catalog),
            token.clone(),
            id.clone(),
            None,
        );
        let outcome = self.work(&request, run, &token, &trail, &cancel).await;
        let mut note = None;
        let outcome = outcome.map(|broken| note = broken);
        // A failure that raced a cancel is reported as the cancel.
        let outcome = match outcome {
            Err(Stop::Failed(_)) if cancel.is_cancelled() => Err(Stop::Cancelled),
            other => other,
        };
        let end = match outcome {
            Ok(()) => RunEnd::Processed { note },
            Err(Stop::Cancelled) => RunEnd::Cancelled,
            Err(Stop::Failed(reason)) => RunEnd::Failed(reason),
        };
        Finish {
            stopping: &self.shared.stopping,
            registry: self.parts.jobs.as_ref(),
            events: self.parts.events.as_ref(),
            media: &id,
            jobs: std::slice::from_ref(&id),
            trail: Some(&trail),
            what: "media",
        }
        .report(end)
        .await;
    }

    async fn work(
        &self,
        request: &MediaJobRequest,
        run: domain::job::RunId,
        token: &domain::auth::BearerToken,
        trail: &StatusTrail,
        cancel: &CancellationToken,
    ) -> Result<Option<String>, Stop> {
        let id = &request.media_id;
        let catalog = self.parts.catalog.as_ref();
        let path = unless_cancelled(cancel, catalog.media_path(id, token))
            .await?
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let stored = match token.user_id() {
            Some(user) => unless_cancelled(cancel, catalog.user_settings(user, token))
                .await?
                .unwrap_or_else(|e| {
                tracing::warn!(media = %id, error = %e, "stored settings unavailable; using defaults");
                SettingsPatch::default()
            }),
            None => SettingsPatch::default(),
        };
        let settings = RecognitionSettings::default()
            .merged(&stored)
            .merged(&request.settings);
        let store = Arc::clone(&self.parts.store);
        let limit = self.max_media_bytes;
        let video_path = path.clone();
        let content = tokio::task::spawn_blocking(move || store.read(&path, limit))
            .await
            .map_err(|e| Stop::Failed(format!("reading the media aborted: {e}")))?
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let is_video = sniff_kind(&content, video_path.to_str()) == Some(MediaKind::Video);
        let kind = if is_video {
            MediaKind::Video
        } else {
            MediaKind::Image
        };
        // Wait for a turn like synchronous requests, but never refused: the job is accepted.
        let _permit = tokio::select! {
            () = cancel.cancelled() => return Err(Stop::Cancelled),
            permit = Arc::clone(self.shared.slots(kind)).acquire_owned() => {
                permit.map_err(|_| Stop::Cancelled)?
            }
        };
        self.parts.jobs.advance(id, JobStep::Start).await;
        trail.report(MediaStatus::AiProcessing);
        if cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        if is_video {
            drop(content);
            let run = super::video::VideoRun {
                parts: &self.parts,
                settings,
                id: super::video::EventId::known(id.clone()),
                authorization: Some(token.header().to_string()),
                cancel: cancel.clone(),
                job_keys: std::slice::from_ref(id),
                tracker: &self.shared.tasks,
                run: Some(run),
            };
            return match run.run(ports::VideoSource::Path(video_path)).await {
                Ok(done) => Ok(done.broken),
                Err(super::video::VideoStop::Cancelled) => Err(Stop::Cancelled),
                Err(super::video::VideoStop::Failed(e)) => Err(failed(e)),
            };
        }
        // A frame in flight is not interrupted (its blocking work would run on, past the
        // permit); a cancel that came during it takes effect at its boundary.
        let (frame, dtos) = detect_photo(&self.parts, content, settings)
            .await
            .map_err(failed)?;
        if cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        if !dtos.is_empty() {
            self.parts
                .jobs
                .advance(id, JobStep::Progress(domain::job::Percent::HUNDRED))
                .await;
            publish(
                self.parts.events.as_ref(),
                id,
                MediaEventStatus::AiProcessing,
                dtos.clone(),
                None,
            );
            let key = Some(run.annotation_key(0));
            let annotation = lifecycle::FrameAnnotation::of_photo(id, frame, dtos, token, key);
            self.parts.deliver(annotation).await;
        }
        Ok(None)
    }
}

/// Waits for `work` unless the job is cancelled first (waits end at once on a cancel;
/// only a frame in flight runs to its boundary).
async fn unless_cancelled<T>(
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Stop> {
    tokio::select! {
        () = cancel.cancelled() => Err(Stop::Cancelled),
        done = work => Ok(done),
    }
}

fn failed(error: DetectError) -> Stop {
    Stop::Failed(error.to_string())
}
