//! `POST /detect/video` (spec B): a video detected while it uploads. The body is written
//! to a staged file in `VIDEOS_DIR` and, at the same time, fed to the decoder; events of
//! frames decoded before the upload ends carry a provisional id (`upload-…`). When the
//! upload ends, the content id of spec A8 is computed from the staged file, later events
//! and every annotation carry it, and with a bearer token the file is kept as
//! `<id>.<ext>` and the media record and statuses follow (spec A8).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use domain::auth::BearerToken;
use domain::job::{MediaKind, MediaStatus};
use domain::media::{MediaId, stored_extension};
use domain::settings::RecognitionSettings;
use ports::{
    ByteStream, DetectError, JobStep, MediaRecord, MediaStoreError, StagedUpload, StagingFile,
    UploadBrokeOff, UploadStarted, VideoSource, VideoUpload,
};
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::finish::{Finish, RunEnd};
use super::lifecycle::{self, StatusTrail};
use super::staging::staging_failed;
use super::video::{EventId, VideoRun, VideoStop};
use super::{Application, claim_error};

/// The decoder's side of the upload.
struct Chunks(mpsc::Receiver<Bytes>);

#[async_trait]
impl ByteStream for Chunks {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, UploadBrokeOff>> {
        self.0.recv().await.map(Ok)
    }
}

/// What the request learnt when the upload ended.
type Ended = Result<(MediaId, Option<StatusTrail>), UploadFailed>;

/// Why an upload did not arrive whole.
#[derive(Debug, Clone, thiserror::Error)]
enum UploadFailed {
    #[error("the upload broke off: {0}")]
    BrokeOff(#[from] UploadBrokeOff),
    #[error("the file is empty")]
    Empty,
    /// Our side: the staged file could not be written.
    #[error("{0}")]
    Staging(#[from] MediaStoreError),
    /// The request went away before it said how the upload ended.
    #[error("the upload was abandoned")]
    Abandoned,
}

impl From<UploadFailed> for DetectError {
    fn from(failed: UploadFailed) -> Self {
        match failed {
            UploadFailed::Staging(error) => staging_failed(error),
            client => DetectError::BadInput(client.to_string()),
        }
    }
}

/// The request's side of the run: where chunks go, and what it tells the run later.
struct Feed {
    chunks: mpsc::Sender<Bytes>,
    content_id: watch::Sender<Option<MediaId>>,
    ended: oneshot::Sender<Ended>,
}

pub(super) async fn start(
    app: &Application,
    upload: VideoUpload,
) -> Result<UploadStarted, DetectError> {
    app.refuse_when_stopping()?;
    let settings = RecognitionSettings::default().merged(&upload.settings);
    let permit = app.admit(MediaKind::Video).await?;
    let token = match &upload.credentials {
        Some(c) => Some(lifecycle::fresh_token(app.parts.catalog.as_ref(), c).await),
        None => None,
    };
    let mut job = UploadJob::claim(app).await?;
    let staging = stage(app).await?;
    let authorization = token.as_ref().map(|t| t.header().to_string());
    let feed = job.spawn_run(app, permit, settings, authorization);

    // The upload itself, in the request: to the staged file and to the decoder.
    let staged = match receive(upload.body, staging, feed.chunks).await {
        Ok(staged) if staged.size == 0 => Err(UploadFailed::Empty),
        other => other,
    };
    let staged = match staged {
        Ok(staged) => staged,
        Err(reason) => {
            // The staged file went with `staging`; the run learns why it ends.
            job.cancel.cancel();
            let _ = feed.ended.send(Err(reason.clone()));
            return Err(reason.into());
        }
    };
    let id = content_id(app, &staged).await?;
    let _ = feed.content_id.send(Some(id.clone()));
    job.answer_to_content_id(app, &id).await;
    let trail = match token {
        Some(token) => Some(keep(app, token, staged, &id, &upload.file_name).await?),
        None => {
            // Without a token nothing is kept (as `POST /detect`).
            drop(staged);
            None
        }
    };
    job.handed_over();
    let _ = feed.ended.send(Ok((id.clone(), trail)));
    Ok(UploadStarted {
        media_id: id,
        upload_id: job.provisional.clone(),
    })
}

/// The job of an upload, under its provisional id until the content id is known.
/// Until it is handed over, a request that ends any other way (an error, or the client
/// gone and this future dropped) stops it.
struct UploadJob {
    provisional: MediaId,
    cancel: CancellationToken,
    handed_over: bool,
}

impl UploadJob {
    async fn claim(app: &Application) -> Result<UploadJob, DetectError> {
        let provisional = provisional_id();
        let cancel = app.shared.stopping.child_token();
        let jobs = &app.parts.jobs;
        jobs.claim(&provisional, None, cancel.clone())
            .await
            .map_err(claim_error)?;
        jobs.advance(&provisional, JobStep::Start).await;
        Ok(UploadJob {
            provisional,
            cancel,
            handed_over: false,
        })
    }

    /// Starts decoding and detecting in the background, fed as the upload arrives; the
    /// run ends the media with the id the request sends at the end.
    fn spawn_run(
        &self,
        app: &Application,
        permit: OwnedSemaphorePermit,
        settings: RecognitionSettings,
        authorization: Option<String>,
    ) -> Feed {
        let (content_tx, content_rx) = watch::channel(None);
        let (chunks_tx, chunks_rx) = mpsc::channel::<Bytes>(32);
        let (ended_tx, ended_rx) = oneshot::channel::<Ended>();
        let parts = app.parts.clone();
        let shared = Arc::clone(&app.shared);
        let cancel = self.cancel.clone();
        let provisional = self.provisional.clone();
        app.shared.tasks.spawn(async move {
            let _permit = permit;
            let run = VideoRun {
                parts: &parts,
                settings,
                id: EventId::pending(provisional.clone(), content_rx),
                authorization,
                cancel,
                job_keys: std::slice::from_ref(&provisional),
                tracker: &shared.tasks,
                run: None,
            };
            let outcome = run
                .run(VideoSource::Stream(Box::new(Chunks(chunks_rx))))
                .await;
            let ended = ended_rx.await.unwrap_or(Err(UploadFailed::Abandoned));
            let (id, trail, outcome) = match ended {
                Ok((id, trail)) => (id, trail, outcome),
                Err(reason) => (
                    provisional.clone(),
                    None,
                    Err(VideoStop::Failed(reason.into())),
                ),
            };
            let end = match outcome {
                Ok(done) => RunEnd::Processed { note: done.broken },
                Err(VideoStop::Cancelled) => RunEnd::Cancelled,
                Err(VideoStop::Failed(e)) => RunEnd::Failed(e.to_string()),
            };
            Finish {
                stopping: &shared.stopping,
                registry: parts.jobs.as_ref(),
                events: parts.events.as_ref(),
                media: &id,
                jobs: &[provisional.clone(), id.clone()],
                trail: trail.as_ref(),
                what: "uploaded video",
            }
            .report(end)
            .await;
        });
        Feed {
            chunks: chunks_tx,
            content_id: content_tx,
            ended: ended_tx,
        }
    }

    /// `GET`/`DELETE /detect/{content id}` reach the job too (unless a job for that
    /// media is already running).
    async fn answer_to_content_id(&self, app: &Application, id: &MediaId) {
        let by_content = app.shared.stopping.child_token();
        if app
            .parts
            .jobs
            .claim(id, None, by_content.clone())
            .await
            .is_ok()
        {
            app.parts.jobs.advance(id, JobStep::Start).await;
            let job_cancel = self.cancel.clone();
            app.shared.tasks.spawn(async move {
                tokio::select! {
                    () = by_content.cancelled() => job_cancel.cancel(),
                    () = job_cancel.cancelled() => {}
                }
            });
        }
    }

    fn handed_over(&mut self) {
        self.handed_over = true;
    }
}

impl Drop for UploadJob {
    fn drop(&mut self) {
        if !self.handed_over {
            self.cancel.cancel();
        }
    }
}

/// A staged file in the videos folder for the upload.
async fn stage(app: &Application) -> Result<Box<dyn StagingFile>, DetectError> {
    let store = Arc::clone(&app.parts.store);
    tokio::task::spawn_blocking(move || store.stage(MediaKind::Video))
        .await
        .map_err(|e| DetectError::Internal(e.to_string()))?
        .map_err(staging_failed)
}

/// Writes every chunk to the staged file and offers it to the decoder (which may have
/// stopped reading: the file still gets it all).
async fn receive(
    mut body: Box<dyn ByteStream>,
    mut staging: Box<dyn StagingFile>,
    decoder: mpsc::Sender<Bytes>,
) -> Result<StagedUpload, UploadFailed> {
    let mut decoder = Some(decoder);
    while let Some(chunk) = body.next_chunk().await {
        let chunk = chunk?;
        staging.write(&chunk).await?;
        if let Some(sender) = &decoder
            && sender.send(chunk).await.is_err()
        {
            decoder = None;
        }
    }
    Ok(staging.finish().await?)
}

/// The content id of spec A8, from the staged file's samples.
async fn content_id(app: &Application, staged: &StagedUpload) -> Result<MediaId, DetectError> {
    let store = Arc::clone(&app.parts.store);
    let (path, size) = (staged.path.clone(), staged.size);
    tokio::task::spawn_blocking(move || store.content_id(&path, size))
        .await
        .map_err(|e| DetectError::Internal(e.to_string()))?
        .map_err(staging_failed)
}

/// With a bearer token the upload is kept as `<id>.<ext>`, and its media record and
/// statuses follow (spec A8).
async fn keep(
    app: &Application,
    token: BearerToken,
    staged: StagedUpload,
    id: &MediaId,
    file_name: &str,
) -> Result<StatusTrail, DetectError> {
    let store = Arc::clone(&app.parts.store);
    let extension = stored_extension(Some(file_name), MediaKind::Video);
    let kept_id = id.clone();
    let path = tokio::task::spawn_blocking(move || {
        store.adopt(&staged.path, &kept_id, MediaKind::Video, &extension)
    })
    .await
    .map_err(|e| DetectError::Internal(e.to_string()))?
    .map_err(staging_failed)?;
    let record = MediaRecord {
        id: id.clone(),
        name: file_name.to_string(),
        path,
        kind: MediaKind::Video,
        user_id: token.user_id().map(str::to_string),
    };
    let trail = StatusTrail::start(
        &app.shared.tasks,
        Arc::clone(&app.parts.catalog),
        token,
        id.clone(),
        Some(record),
    );
    trail.report(MediaStatus::AiProcessing);
    Ok(trail)
}

fn provisional_id() -> MediaId {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let text = format!(
        "upload-{:016x}",
        nanos ^ (n << 48) ^ u64::from(std::process::id())
    );
    MediaId::parse(&text).expect("a valid id")
}
