//! Staged uploads: a hidden `.upload-<pid>-<n>.partial` file in the media folder,
//! written as the body arrives, removed when dropped unless adopted (renamed to
//! `<id>.<ext>`, which leaves the guard nothing to remove).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use domain::media::{MediaId, sample_ranges};
use ports::{MediaStoreError, STAGED_HEAD_BYTES, StagedUpload, StagingFile};
use tokio::io::AsyncWriteExt;

/// Removes the staged file when dropped; a file already moved away is simply not there.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(super) struct FolderStagingFile {
    file: tokio::fs::File,
    size: u64,
    head: Vec<u8>,
    cleanup: RemoveOnDrop,
}

impl FolderStagingFile {
    pub(super) fn create(path: PathBuf) -> Result<Self, MediaStoreError> {
        let cleanup = RemoveOnDrop(path);
        let file = std::fs::File::create(&cleanup.0).map_err(|e| staging_failed(&cleanup.0, &e))?;
        Ok(Self {
            file: tokio::fs::File::from_std(file),
            size: 0,
            head: Vec::with_capacity(STAGED_HEAD_BYTES),
            cleanup,
        })
    }
}

fn staging_failed(path: &Path, e: &std::io::Error) -> MediaStoreError {
    MediaStoreError::Io(format!(
        "cannot stage the upload at {}: {e}",
        path.display()
    ))
}

#[async_trait]
impl StagingFile for FolderStagingFile {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), MediaStoreError> {
        let missing = STAGED_HEAD_BYTES.saturating_sub(self.head.len());
        self.head
            .extend_from_slice(&chunk[..missing.min(chunk.len())]);
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| staging_failed(&self.cleanup.0, &e))?;
        self.size += chunk.len() as u64;
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<StagedUpload, MediaStoreError> {
        self.file
            .flush()
            .await
            .map_err(|e| staging_failed(&self.cleanup.0, &e))?;
        let FolderStagingFile {
            size,
            head,
            cleanup,
            ..
        } = *self;
        Ok(StagedUpload {
            path: cleanup.0.clone(),
            size,
            head,
            cleanup: Box::new(cleanup),
        })
    }
}

/// The content id of spec A8 from the staged file's samples.
pub(super) fn content_id(path: &Path, size: u64) -> Result<MediaId, MediaStoreError> {
    let io = |e: std::io::Error| {
        MediaStoreError::Io(format!("reading the staged upload {}: {e}", path.display()))
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut samples = Vec::new();
    for (start, end) in sample_ranges(size) {
        let mut sample = vec![0u8; (end - start) as usize];
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        file.read_exact(&mut sample).map_err(io)?;
        samples.push(sample);
    }
    Ok(MediaId::of_samples(size, samples.iter().map(Vec::as_slice)))
}
