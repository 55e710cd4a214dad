//! Why one file of `detections detect` or `detections bench` failed; printed after its
//! name, and the next file goes on.

use std::path::PathBuf;

use ports::{AnnotateError, EngineError, PreprocessError, VideoError};

use crate::detect::FrameError;

#[derive(Debug, thiserror::Error)]
pub enum FileFailure {
    #[error("cannot read: {0}")]
    Read(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("{0}")]
    Video(#[from] VideoError),
    #[error("frame {index}: {reason}")]
    VideoFrame { index: u64, reason: FrameError },
    /// The blocking task that did the work panicked or was cancelled.
    #[error("aborted: {0}")]
    Aborted(#[from] tokio::task::JoinError),
    #[error("cannot write {}: {reason}", target.display())]
    Annotated {
        target: PathBuf,
        reason: AnnotateError,
    },
    #[error("cannot write the result: {0}")]
    Output(#[from] serde_json::Error),
}

impl From<ports::DecodeError> for FileFailure {
    fn from(error: ports::DecodeError) -> Self {
        Self::Frame(error.into())
    }
}

impl From<EngineError> for FileFailure {
    fn from(error: EngineError) -> Self {
        Self::Frame(error.into())
    }
}

impl From<PreprocessError> for FileFailure {
    fn from(error: PreprocessError) -> Self {
        Self::Frame(error.into())
    }
}
