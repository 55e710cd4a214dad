//! Media: the Annotations service's catalogue of media and users (spec A8, A9), and the
//! folders where uploaded media are kept.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use domain::auth::{BearerToken, Credentials};
use domain::job::{MediaKind, MediaStatus};
use domain::media::MediaId;
use domain::settings::SettingsPatch;

/// The media record created for an upload (spec A9 `POST /api/media`).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRecord {
    pub id: MediaId,
    /// The original file name.
    pub name: String,
    /// Where the file is stored.
    pub path: PathBuf,
    pub kind: MediaKind,
    /// The token's `nameid`.
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// Connection refused, timeout, 5xx, 429: worth trying again later.
    #[error("the media catalogue is unavailable: {0}")]
    Unavailable(String),
    #[error("no such media: {0}")]
    NotFound(String),
    /// 401/403: the client's token was refused.
    #[error("the media catalogue refused the credentials: {0}")]
    Unauthorized(String),
    /// Any other refusal, or an answer we cannot read.
    #[error("the media catalogue refused the request: {0}")]
    Rejected(String),
}

/// The Annotations service's media, users and tokens. Every call carries the client's
/// token, forwarded byte for byte.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MediaCatalog: Send + Sync {
    /// `POST /auth/refresh`: a fresh access token for the refresh token.
    async fn refresh(&self, credentials: &Credentials) -> Result<BearerToken, CatalogError>;
    /// `POST /api/media` with status New.
    async fn create_media(
        &self,
        record: &MediaRecord,
        token: &BearerToken,
    ) -> Result<(), CatalogError>;
    /// `PUT /api/media/{id}/status`.
    async fn set_status(
        &self,
        id: &MediaId,
        status: MediaStatus,
        token: &BearerToken,
    ) -> Result<(), CatalogError>;
    /// `GET /api/media/{id}`: where the media's file is stored.
    async fn media_path(&self, id: &MediaId, token: &BearerToken) -> Result<PathBuf, CatalogError>;
    /// `GET /api/users/{user_id}/ai-settings`: the user's stored settings.
    async fn user_settings(
        &self,
        user_id: &str,
        token: &BearerToken,
    ) -> Result<SettingsPatch, CatalogError>;
}

/// An upload being written to its staged file.
#[async_trait]
pub trait StagingFile: Send {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), MediaStoreError>;
    /// Everything is written (and flushed): the staged upload.
    async fn finish(self: Box<Self>) -> Result<StagedUpload, MediaStoreError>;
}

/// How many first bytes of a staged upload are kept to tell what it holds.
pub const STAGED_HEAD_BYTES: usize = 16;

/// An upload in a staged file; the file goes when this is dropped, unless
/// [`MediaStore::adopt`] kept it (moved it to the media folder) before.
pub struct StagedUpload {
    pub path: PathBuf,
    pub size: u64,
    /// The first bytes (at most [`STAGED_HEAD_BYTES`]): what the file is, without
    /// reading it again.
    pub head: Vec<u8>,
    /// Removes the file when dropped (the store's, which knows how).
    pub cleanup: Box<dyn std::any::Any + Send + Sync>,
}

impl std::fmt::Debug for StagedUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StagedUpload({}, {} bytes)",
            self.path.display(),
            self.size
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaStoreError {
    /// The path lies outside every configured media folder (client's mistake or attack).
    #[error("{0} is outside the configured media folders")]
    OutsideFolders(String),
    #[error("media file {0} does not exist")]
    Missing(String),
    #[error("media file {path} is {size} bytes, over the limit of {limit}")]
    TooLarge { path: String, size: u64, limit: u64 },
    /// Our disk: unwritable folder, full disk.
    #[error("media storage failed: {0}")]
    Io(String),
}

/// The folders uploaded media are kept in (`IMAGES_DIR`, `VIDEOS_DIR`). Blocking: call
/// off the async runtime.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait MediaStore: Send + Sync {
    /// Writes the file as `<id>.<extension>` in the kind's folder; returns its path.
    fn store(
        &self,
        id: &MediaId,
        kind: MediaKind,
        extension: &str,
        content: &[u8],
    ) -> Result<PathBuf, MediaStoreError>;
    /// Reads a stored media file after checking it lies inside a configured folder.
    fn read(&self, path: &Path, limit: u64) -> Result<Bytes, MediaStoreError>;
    /// A fresh file in the kind's folder where an upload is written while it arrives
    /// (its id is known only at its end).
    fn stage(&self, kind: MediaKind) -> Result<Box<dyn StagingFile>, MediaStoreError>;
    /// The content id of spec A8 of the staged upload at `staged` (`size` bytes), from
    /// its samples.
    fn content_id(&self, staged: &Path, size: u64) -> Result<MediaId, MediaStoreError>;
    /// Moves a staged upload to `<id>.<extension>`; returns the stored path.
    fn adopt(
        &self,
        staged: &Path,
        id: &MediaId,
        kind: MediaKind,
        extension: &str,
    ) -> Result<PathBuf, MediaStoreError>;
}
