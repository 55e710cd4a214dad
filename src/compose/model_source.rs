//! `ModelSource`: where the model file comes from.

use std::sync::Arc;

use adapters::model_source::loader::LoaderModelSource;
use adapters::model_source::local::LocalModelSource;
use ports::ModelSource;

use super::SetupError;
use crate::config::ModelSourceConfig;

pub fn build(config: &ModelSourceConfig) -> Result<Arc<dyn ModelSource>, SetupError> {
    Ok(match config {
        ModelSourceConfig::Local { dir } => Arc::new(LocalModelSource::new(dir)),
        ModelSourceConfig::Loader(loader) => Arc::new(
            LoaderModelSource::new(loader.into()).map_err(|e| SetupError::Adapter {
                port: "model source",
                reason: e.to_string(),
            })?,
        ),
    })
}
