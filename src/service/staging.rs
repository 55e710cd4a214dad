//! Large uploads of `POST /detect` (a video, or a body above the in-memory limit) go to
//! a staged file as they arrive, never into memory (ARCHITECTURE.md "Memory plan").

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use domain::job::MediaKind;
use domain::media::sniff_kind;
use ports::{DetectError, StagedUpload, UploadSink};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Removes the staged file when dropped; a file already moved away is simply not there.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes an upload to its staged file.
pub(super) struct FileSink {
    file: tokio::fs::File,
    size: u64,
    cleanup: RemoveOnDrop,
}

impl FileSink {
    pub(super) async fn create(path: PathBuf) -> Result<FileSink, DetectError> {
        let cleanup = RemoveOnDrop(path);
        let file = tokio::fs::File::create(&cleanup.0)
            .await
            .map_err(|e| staging_failed(&e))?;
        Ok(FileSink {
            file,
            size: 0,
            cleanup,
        })
    }
}

fn staging_failed(e: &std::io::Error) -> DetectError {
    DetectError::Internal(format!("cannot stage the upload: {e}"))
}

#[async_trait]
impl UploadSink for FileSink {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), DetectError> {
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| staging_failed(&e))?;
        self.size += chunk.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<StagedUpload, DetectError> {
        self.file.flush().await.map_err(|e| staging_failed(&e))?;
        let FileSink { size, cleanup, .. } = *self;
        Ok(StagedUpload {
            path: cleanup.0.clone(),
            size,
            cleanup: Box::new(cleanup),
        })
    }
}

/// What the staged file holds, by its first bytes (and the name as a hint).
pub(super) async fn staged_kind(path: &Path, file_name: Option<&str>) -> Option<MediaKind> {
    let mut head = [0u8; 16];
    let mut file = tokio::fs::File::open(path).await.ok()?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    sniff_kind(&head[..filled], file_name)
}
