//! `POST /detect/video` (spec B): a video detected while it uploads. The body is written
//! to a staged file in `VIDEOS_DIR` and, at the same time, fed to the decoder; events of
//! frames decoded before the upload ends carry a provisional id (`upload-…`). When the
//! upload ends, the content id of spec A8 is computed from the staged file, later events
//! and every annotation carry it, and with a bearer token the file is kept as
//! `<id>.<ext>` and the media record and statuses follow (spec A8).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use domain::job::{MediaKind, MediaStatus};
use domain::media::{MediaId, sample_ranges, stored_extension};
use domain::settings::RecognitionSettings;
use ports::{
    ByteStream, DetectError, JobStep, MediaRecord, UploadStarted, VideoSource, VideoUpload,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot, watch};

use super::finish::{Finish, RunEnd};
use super::lifecycle::{self, StatusTrail};
use super::video::{EventId, VideoRun, VideoStop};
use super::{Application, claim_error};

/// The decoder's side of the upload.
struct Chunks(mpsc::Receiver<Bytes>);

#[async_trait]
impl ByteStream for Chunks {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, String>> {
        self.0.recv().await.map(Ok)
    }
}

/// What the request learnt when the upload ended.
type Ended = Result<(MediaId, Option<StatusTrail>), String>;

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
    let shared = Arc::clone(&app.shared);
    let provisional = provisional_id();
    let cancel = shared.stopping.child_token();
    app.parts
        .jobs
        .claim(&provisional, cancel.clone())
        .await
        .map_err(claim_error)?;
    app.parts.jobs.advance(&provisional, JobStep::Start).await;
    let store = Arc::clone(&app.parts.store);
    let staged = tokio::task::spawn_blocking(move || store.stage(MediaKind::Video))
        .await
        .map_err(|e| DetectError::Internal(e.to_string()))?
        .map_err(|e| DetectError::Internal(e.to_string()))?;
    // Until the upload is handed over, a request that ends any other way (an error, or
    // the client gone and this future dropped) removes the staged file and stops the job.
    let mut unfinished = Unfinished {
        staged: Some(staged.clone()),
        cancel: cancel.clone(),
    };

    let (content_tx, content_rx) = watch::channel(None);
    let (chunks_tx, chunks_rx) = mpsc::channel::<Bytes>(32);
    let (ended_tx, ended_rx) = oneshot::channel::<Ended>();
    let parts = app.parts.clone();
    let job_cancel = cancel.clone();
    let job_provisional = provisional.clone();
    let authorization = token.as_ref().map(|t| t.header().to_string());
    shared.tasks.spawn({
        let shared = Arc::clone(&shared);
        async move {
            let _permit = permit;
            let run = VideoRun {
                parts: &parts,
                settings,
                id: EventId::pending(job_provisional.clone(), content_rx),
                authorization,
                cancel: job_cancel.clone(),
                job_keys: std::slice::from_ref(&job_provisional),
                tracker: &shared.tasks,
            };
            let outcome = run
                .run(VideoSource::Stream(Box::new(Chunks(chunks_rx))))
                .await;
            let ended = ended_rx
                .await
                .unwrap_or_else(|_| Err("the upload was abandoned".into()));
            let (id, trail, outcome) = match ended {
                Ok((id, trail)) => (id, trail, outcome),
                Err(reason) => (
                    job_provisional.clone(),
                    None,
                    Err(VideoStop::Failed(DetectError::BadInput(reason))),
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
                jobs: &[job_provisional.clone(), id.clone()],
                trail: trail.as_ref(),
                what: "uploaded video",
            }
            .report(end)
            .await;
        }
    });

    // The upload itself, in the request: to the staged file and to the decoder.
    let received = receive(upload.body, &staged, chunks_tx).await;
    let size = match received {
        Ok(0) => Err("the file is empty".to_string()),
        other => other,
    };
    let size = match size {
        Ok(size) => size,
        Err(reason) => {
            let _ = tokio::fs::remove_file(&staged).await;
            cancel.cancel();
            let _ = ended_tx.send(Err(reason.clone()));
            return Err(DetectError::BadInput(reason));
        }
    };
    let hashed = staged.clone();
    let id = tokio::task::spawn_blocking(move || hash_file(&hashed, size))
        .await
        .map_err(|e| DetectError::Internal(e.to_string()))?
        .map_err(|e| DetectError::Internal(format!("reading the staged upload: {e}")))?;
    let _ = content_tx.send(Some(id.clone()));
    // `DELETE /detect/{content id}` cancels too.
    let by_content = shared.stopping.child_token();
    if app.parts.jobs.claim(&id, by_content.clone()).await.is_ok() {
        app.parts.jobs.advance(&id, JobStep::Start).await;
        let job_cancel = cancel.clone();
        shared.tasks.spawn(async move {
            tokio::select! {
                () = by_content.cancelled() => job_cancel.cancel(),
                () = job_cancel.cancelled() => {}
            }
        });
    }
    let trail = match token {
        Some(token) => {
            let store = Arc::clone(&app.parts.store);
            let extension = stored_extension(Some(&upload.file_name), MediaKind::Video);
            let kept_id = id.clone();
            let from = staged.clone();
            let path = tokio::task::spawn_blocking(move || {
                store.adopt(&from, &kept_id, MediaKind::Video, &extension)
            })
            .await
            .map_err(|e| DetectError::Internal(e.to_string()))?
            .map_err(|e| DetectError::Internal(e.to_string()))?;
            let record = MediaRecord {
                id: id.clone(),
                name: upload.file_name.clone(),
                path,
                kind: MediaKind::Video,
                user_id: token.user_id().map(str::to_string),
            };
            let trail = StatusTrail::start(
                &shared.tasks,
                Arc::clone(&app.parts.catalog),
                token,
                id.clone(),
                Some(record),
            );
            trail.report(MediaStatus::AiProcessing);
            Some(trail)
        }
        None => {
            // Without a token nothing is kept (as `POST /detect`).
            let _ = tokio::fs::remove_file(&staged).await;
            None
        }
    };
    unfinished.handed_over();
    let _ = ended_tx.send(Ok((id.clone(), trail)));
    Ok(UploadStarted {
        media_id: id,
        upload_id: provisional,
    })
}

/// The staged file and the job of an upload not yet handed over (see [`start`]).
struct Unfinished {
    staged: Option<PathBuf>,
    cancel: tokio_util::sync::CancellationToken,
}

impl Unfinished {
    fn handed_over(&mut self) {
        self.staged = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(staged) = self.staged.take() {
            // Already gone when the request removed it itself, or adopted it.
            let _ = std::fs::remove_file(&staged);
            self.cancel.cancel();
        }
    }
}

/// Writes every chunk to `staged` and offers it to the decoder (which may have stopped
/// reading: the file still gets it all). Returns the size.
async fn receive(
    mut body: Box<dyn ByteStream>,
    staged: &Path,
    decoder: mpsc::Sender<Bytes>,
) -> Result<u64, String> {
    let mut file = tokio::fs::File::create(staged)
        .await
        .map_err(|e| format!("cannot stage the upload: {e}"))?;
    let mut size = 0u64;
    let mut decoder = Some(decoder);
    while let Some(chunk) = body.next_chunk().await {
        let chunk = chunk.map_err(|e| format!("the upload broke off: {e}"))?;
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("cannot stage the upload: {e}"))?;
        if let Some(sender) = &decoder
            && sender.send(chunk).await.is_err()
        {
            decoder = None;
        }
    }
    file.flush()
        .await
        .map_err(|e| format!("cannot stage the upload: {e}"))?;
    Ok(size)
}

/// The content id of spec A8 from the staged file's samples.
pub(super) fn hash_file(path: &Path, size: u64) -> std::io::Result<MediaId> {
    let mut file = std::fs::File::open(path)?;
    let mut samples = Vec::new();
    for (start, end) in sample_ranges(size) {
        let mut sample = vec![0u8; (end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut sample)?;
        samples.push(sample);
    }
    Ok(MediaId::of_samples(size, samples.iter().map(Vec::as_slice)))
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
