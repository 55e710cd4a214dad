//! `IMAGES_DIR` and `VIDEOS_DIR`: where uploads are stored and where media paths the
//! Annotations service names must lie.

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use domain::job::MediaKind;
use domain::media::MediaId;
use ports::{MediaStore, MediaStoreError, StagingFile};

use super::staging::{self, FolderStagingFile};

pub struct FolderMediaStore {
    images_dir: PathBuf,
    videos_dir: PathBuf,
}

impl FolderMediaStore {
    pub fn new(images_dir: impl Into<PathBuf>, videos_dir: impl Into<PathBuf>) -> Self {
        Self {
            images_dir: images_dir.into(),
            videos_dir: videos_dir.into(),
        }
    }

    fn folder(&self, kind: MediaKind) -> &Path {
        match kind {
            MediaKind::Image => &self.images_dir,
            MediaKind::Video => &self.videos_dir,
        }
    }

    /// The canonical path when it lies inside one of the folders. Canonicalising first
    /// means `..` and symbolic links cannot lead out.
    fn inside(&self, path: &Path) -> Result<PathBuf, MediaStoreError> {
        let shown = || path.display().to_string();
        let real = path.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => MediaStoreError::Missing(shown()),
            _ => MediaStoreError::Io(format!("{}: {e}", shown())),
        })?;
        let allowed = [&self.images_dir, &self.videos_dir]
            .into_iter()
            .filter_map(|dir| dir.canonicalize().ok())
            .any(|dir| real.starts_with(dir));
        if allowed {
            Ok(real)
        } else {
            Err(MediaStoreError::OutsideFolders(shown()))
        }
    }
}

impl MediaStore for FolderMediaStore {
    fn store(
        &self,
        id: &MediaId,
        kind: MediaKind,
        extension: &str,
        content: &[u8],
    ) -> Result<PathBuf, MediaStoreError> {
        let folder = self.folder(kind);
        let io = |e: std::io::Error| MediaStoreError::Io(format!("{}: {e}", folder.display()));
        std::fs::create_dir_all(folder).map_err(io)?;
        let path = folder.join(format!("{id}.{extension}"));
        // Same id, same content: an existing file is already the right one.
        if path.is_file() {
            return Ok(path);
        }
        let partial = folder.join(format!(".{id}.{extension}.partial"));
        std::fs::write(&partial, content).map_err(io)?;
        std::fs::rename(&partial, &path).map_err(io)?;
        Ok(path)
    }

    fn stage(&self, kind: MediaKind) -> Result<Box<dyn StagingFile>, MediaStoreError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let folder = self.folder(kind);
        std::fs::create_dir_all(folder)
            .map_err(|e| MediaStoreError::Io(format!("{}: {e}", folder.display())))?;
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = folder.join(format!(".upload-{}-{n}.partial", std::process::id()));
        Ok(Box::new(FolderStagingFile::create(path)?))
    }

    fn content_id(&self, staged: &Path, size: u64) -> Result<MediaId, MediaStoreError> {
        staging::content_id(staged, size)
    }

    fn adopt(
        &self,
        staged: &Path,
        id: &MediaId,
        kind: MediaKind,
        extension: &str,
    ) -> Result<PathBuf, MediaStoreError> {
        let path = self.folder(kind).join(format!("{id}.{extension}"));
        std::fs::rename(staged, &path)
            .map_err(|e| MediaStoreError::Io(format!("{}: {e}", path.display())))?;
        Ok(path)
    }

    fn read(&self, path: &Path, limit: u64) -> Result<Bytes, MediaStoreError> {
        let real = self.inside(path)?;
        let shown = || real.display().to_string();
        let file = std::fs::File::open(&real)
            .map_err(|e| MediaStoreError::Io(format!("{}: {e}", shown())))?;
        let size = file
            .metadata()
            .map_err(|e| MediaStoreError::Io(format!("{}: {e}", shown())))?
            .len();
        if size > limit {
            return Err(MediaStoreError::TooLarge {
                path: shown(),
                size,
                limit,
            });
        }
        let mut content = Vec::with_capacity(size as usize);
        file.take(limit)
            .read_to_end(&mut content)
            .map_err(|e| MediaStoreError::Io(format!("{}: {e}", shown())))?;
        Ok(Bytes::from(content))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("folders-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn stores_by_id_and_kind_and_reads_back() {
        let dir = scratch("store");
        let store = FolderMediaStore::new(dir.join("images"), dir.join("videos"));
        let id = MediaId::of_content(b"abc");
        let path = store.store(&id, MediaKind::Image, "png", b"abc").unwrap();
        assert_eq!(path, dir.join("images").join(format!("{id}.png")));
        assert_eq!(store.read(&path, 10).unwrap().as_ref(), b"abc");
        let video = store.store(&id, MediaKind::Video, "mp4", b"abc").unwrap();
        assert!(video.starts_with(dir.join("videos")));
    }

    #[test]
    fn paths_outside_the_folders_are_refused() {
        let dir = scratch("outside");
        let store = FolderMediaStore::new(dir.join("images"), dir.join("videos"));
        std::fs::create_dir_all(dir.join("images")).unwrap();
        std::fs::write(dir.join("secret.txt"), b"x").unwrap();
        let sneaky = dir.join("images/../secret.txt");
        assert!(matches!(
            store.read(&sneaky, 10),
            Err(MediaStoreError::OutsideFolders(_))
        ));
        assert!(matches!(
            store.read(&dir.join("images/none.png"), 10),
            Err(MediaStoreError::Missing(_))
        ));
    }

    #[test]
    fn oversized_files_are_refused() {
        let dir = scratch("large");
        let store = FolderMediaStore::new(dir.join("images"), dir.join("videos"));
        let id = MediaId::of_content(b"abcdef");
        let path = store
            .store(&id, MediaKind::Image, "jpg", b"abcdef")
            .unwrap();
        assert!(matches!(
            store.read(&path, 3),
            Err(MediaStoreError::TooLarge { size: 6, .. })
        ));
    }

    #[tokio::test]
    async fn a_staged_upload_is_written_hashed_and_removed_unless_adopted() {
        let dir = scratch("staging");
        let store = FolderMediaStore::new(dir.join("images"), dir.join("videos"));
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut staging = store.stage(MediaKind::Video).unwrap();
        for chunk in content.chunks(7_000) {
            staging.write(chunk).await.unwrap();
        }
        let staged = staging.finish().await.unwrap();
        assert_eq!(staged.size, content.len() as u64);
        assert_eq!(staged.head, content[..ports::STAGED_HEAD_BYTES]);
        assert_eq!(std::fs::read(&staged.path).unwrap(), content);
        // The samples of spec A8, the same as over the bytes in memory.
        let expected = {
            let samples: Vec<&[u8]> = domain::media::sample_ranges(staged.size)
                .into_iter()
                .map(|(start, end)| &content[start as usize..end as usize])
                .collect();
            MediaId::of_samples(staged.size, samples)
        };
        assert_eq!(
            store.content_id(&staged.path, staged.size).unwrap(),
            expected
        );
        let path = staged.path.clone();
        drop(staged);
        assert!(!path.exists(), "a staged upload nobody kept is removed");

        let mut staging = store.stage(MediaKind::Video).unwrap();
        staging.write(b"kept").await.unwrap();
        let staged = staging.finish().await.unwrap();
        let id = store.content_id(&staged.path, staged.size).unwrap();
        assert_eq!(id, MediaId::of_content(b"kept"));
        let kept = store
            .adopt(&staged.path, &id, MediaKind::Video, "mp4")
            .unwrap();
        drop(staged);
        assert_eq!(std::fs::read(kept).unwrap(), b"kept");
    }
}
