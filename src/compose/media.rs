//! `MediaStore`: where uploaded media are kept (spec A5).

use std::sync::Arc;

use adapters::media::FolderMediaStore;
use ports::MediaStore;

use crate::config::MediaConfig;

pub fn build(config: &MediaConfig) -> Arc<dyn MediaStore> {
    Arc::new(FolderMediaStore::new(
        &config.images_dir,
        &config.videos_dir,
    ))
}
