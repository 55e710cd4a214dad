//! Large uploads of `POST /detect` (a video, or a body above the in-memory limit) go to
//! a staged file of the media store as they arrive, never into memory
//! (ARCHITECTURE.md "Memory plan").

use async_trait::async_trait;
use domain::job::MediaKind;
use domain::media::sniff_kind;
use ports::{DetectError, MediaStoreError, StagedUpload, StagingFile, UploadSink};

/// The driving port's view of a staged file.
pub(super) struct StagingSink(pub(super) Box<dyn StagingFile>);

pub(super) fn staging_failed(error: MediaStoreError) -> DetectError {
    DetectError::Internal(error.to_string())
}

#[async_trait]
impl UploadSink for StagingSink {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), DetectError> {
        self.0.write(chunk).await.map_err(staging_failed)
    }

    async fn finish(self: Box<Self>) -> Result<StagedUpload, DetectError> {
        self.0.finish().await.map_err(staging_failed)
    }
}

/// What the staged file holds, by its first bytes (and the name as a hint).
pub(super) fn staged_kind(staged: &StagedUpload, file_name: Option<&str>) -> Option<MediaKind> {
    sniff_kind(&staged.head, file_name)
}
