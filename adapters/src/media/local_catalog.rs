//! The media catalogue when no Annotations service is configured: media are the files
//! in the media folders, named by their id; records and status changes go to the log.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use domain::auth::{BearerToken, Credentials};
use domain::job::MediaStatus;
use domain::media::MediaId;
use domain::settings::SettingsPatch;
use ports::{CatalogError, MediaCatalog, MediaRecord};

pub struct LocalMediaCatalog {
    folders: Vec<PathBuf>,
}

impl LocalMediaCatalog {
    pub fn new(images_dir: impl Into<PathBuf>, videos_dir: impl Into<PathBuf>) -> Self {
        Self {
            folders: vec![images_dir.into(), videos_dir.into()],
        }
    }
}

fn named_by(folder: &Path, id: &MediaId) -> Option<PathBuf> {
    std::fs::read_dir(folder).ok()?.flatten().find_map(|entry| {
        let path = entry.path();
        (path.file_stem().and_then(|s| s.to_str()) == Some(id.as_str()) && path.is_file())
            .then_some(path)
    })
}

#[async_trait]
impl MediaCatalog for LocalMediaCatalog {
    async fn refresh(&self, credentials: &Credentials) -> Result<BearerToken, CatalogError> {
        Ok(credentials.token.clone())
    }

    async fn create_media(
        &self,
        record: &MediaRecord,
        _token: &BearerToken,
    ) -> Result<(), CatalogError> {
        tracing::info!(media = %record.id, path = %record.path.display(), "media stored");
        Ok(())
    }

    async fn set_status(
        &self,
        id: &MediaId,
        status: MediaStatus,
        _token: &BearerToken,
    ) -> Result<(), CatalogError> {
        tracing::debug!(media = %id, status = status.name(), "media status");
        Ok(())
    }

    async fn media_path(
        &self,
        id: &MediaId,
        _token: &BearerToken,
    ) -> Result<PathBuf, CatalogError> {
        self.folders
            .iter()
            .find_map(|folder| named_by(folder, id))
            .ok_or_else(|| {
                CatalogError::NotFound(format!("no file named {id}.* in the media folders"))
            })
    }

    async fn user_settings(
        &self,
        _user_id: &str,
        _token: &BearerToken,
    ) -> Result<SettingsPatch, CatalogError> {
        Ok(SettingsPatch::default())
    }
}
