//! A synchronous `POST /detect`: the photo or video of the request, detected while the
//! client waits, with the media lifecycle (spec A8) when it carries a token.

use std::sync::Arc;

use bytes::Bytes;
use domain::job::{MediaKind, MediaStatus};
use domain::media::{MediaId, stored_extension};
use domain::settings::RecognitionSettings;
use ports::{DetectError, DetectionDto, MediaEventStatus, MediaRecord, RgbFrame, UploadContent};

use super::lifecycle::{self, StatusTrail};
use super::{Application, detect_photo, finish, staging, video};

impl Application {
    /// Decodes and detects one photo; returns the frame too (for the annotation image).
    pub(super) async fn detect_photo(
        &self,
        content: Bytes,
        settings: RecognitionSettings,
    ) -> Result<(Arc<RgbFrame>, Vec<DetectionDto>), DetectError> {
        detect_photo(&self.parts, content, settings).await
    }

    /// Stores an upload (writes it, or moves its staged file) and starts its status
    /// trail (spec A8).
    pub(super) async fn begin_upload(
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
    pub(super) async fn detect_image(
        &self,
        upload: Upload,
        content: UploadContent,
    ) -> Result<Vec<DetectionDto>, DetectError> {
        let settings = RecognitionSettings::default().merged(&upload.settings);
        let permit = self.admit(MediaKind::Image).await?;
        let bytes = match &content {
            UploadContent::Memory(bytes) => bytes.clone(),
            UploadContent::Staged(staged) => {
                let store = Arc::clone(&self.parts.store);
                let (path, size) = (staged.path.clone(), staged.size);
                tokio::task::spawn_blocking(move || store.read(&path, size))
                    .await
                    .map_err(|e| DetectError::Internal(format!("reading the upload aborted: {e}")))?
                    .map_err(staging::staging_failed)?
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
                        let annotation = lifecycle::FrameAnnotation::of_photo(
                            &id,
                            Arc::clone(frame),
                            dtos.clone(),
                            token,
                            None,
                        );
                        self.parts.deliver(annotation).await;
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
    pub(super) async fn detect_video(
        &self,
        upload: Upload,
        content: UploadContent,
    ) -> Result<Vec<DetectionDto>, DetectError> {
        let settings = RecognitionSettings::default().merged(&upload.settings);
        let _permit = self.admit(MediaKind::Video).await?;
        let id = content_id(&self.parts.store, &content).await?;
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
            job_keys: &[],
            tracker: &self.shared.tasks,
            run: None,
        };
        let outcome = run.run(source).await;
        let finish = finish::Finish {
            stopping: &self.shared.stopping,
            registry: self.parts.jobs.as_ref(),
            events: self.parts.events.as_ref(),
            media: &id,
            jobs: &[],
            trail: lifecycle.as_ref().map(|(trail, _, _)| trail),
            what: "video",
        };
        match outcome {
            Ok(done) => {
                finish
                    .report(finish::RunEnd::Processed { note: done.broken })
                    .await;
                Ok(done.detections)
            }
            Err(stop) => {
                let error = match stop {
                    video::VideoStop::Cancelled => DetectError::ShuttingDown,
                    video::VideoStop::Failed(e) => e,
                };
                finish
                    .report(finish::RunEnd::Failed(error.to_string()))
                    .await;
                Err(error)
            }
        }
    }
}

/// What came with an upload besides its content.
pub(super) struct Upload {
    pub(super) file_name: Option<String>,
    pub(super) settings: domain::settings::SettingsPatch,
    pub(super) credentials: Option<domain::auth::Credentials>,
}

/// The content id of spec A8: over the bytes, or over the staged file's samples.
async fn content_id(
    store: &Arc<dyn ports::MediaStore>,
    content: &UploadContent,
) -> Result<MediaId, DetectError> {
    match content {
        UploadContent::Memory(bytes) => Ok(MediaId::of_content(bytes)),
        UploadContent::Staged(staged) => {
            let store = Arc::clone(store);
            let (path, size) = (staged.path.clone(), staged.size);
            tokio::task::spawn_blocking(move || store.content_id(&path, size))
                .await
                .map_err(|e| DetectError::Internal(format!("reading the upload aborted: {e}")))?
                .map_err(staging::staging_failed)
        }
    }
}
