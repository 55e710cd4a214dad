//! Where models (and, on GPUs, built engines) come from: the Loader service or a folder.

use std::path::PathBuf;

use async_trait::async_trait;

/// A model file made available on local disk by a [`ModelSource`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelArtifact {
    /// The artifact's name at the source, e.g. `azaion.onnx`.
    pub name: String,
    /// Where it lies on local disk, complete and checked.
    pub path: PathBuf,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ModelSourceError {
    /// The source answered, and it has no such artifact (Loader 404, file absent).
    #[error("{name} was not found at the model source")]
    NotFound { name: String },
    /// The source could not be reached or failed; a later try may succeed.
    #[error("model source unavailable: {reason}")]
    Unavailable { reason: String },
    /// The artifact arrived but cannot be used (empty, truncated, unreadable).
    #[error("model artifact {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
}

/// Loads named artifacts (ONNX models, engines, calibration caches) and stores new ones.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ModelSource: Send + Sync {
    /// Fetches `name` to local disk. `NotFound` is a normal answer, not a failure.
    async fn load(&self, name: &str) -> Result<ModelArtifact, ModelSourceError>;
    /// Stores a local file under `name` at the source (a built engine, say).
    async fn upload(&self, name: &str, path: &std::path::Path) -> Result<(), ModelSourceError>;
    /// A short description for logs and errors, e.g. `loader http://loader:8080`.
    fn describe(&self) -> String;
}
