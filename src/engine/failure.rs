//! Why an engine start failed. The text of a [`StartFailure`] is the reason `/health`
//! shows with `Error`, so each variant says what happened and what to change.

use domain::classes::ClassCountMismatch;
use ports::{EngineError, EngineKind, GpuUnavailable, ModelSourceError};

/// An engine that could not be made ready: built, its classes checked, warmed up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildFailure {
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Classes(#[from] ClassCountMismatch),
    #[error("warm-up failed: {0}")]
    WarmUp(EngineError),
    /// The blocking task that did the work panicked or was cancelled.
    #[error("engine work aborted: {0}")]
    Aborted(String),
}

impl From<tokio::task::JoinError> for BuildFailure {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::Aborted(error.to_string())
    }
}

/// Why the GPU cannot serve: no GPU at all, or no session on it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GpuUnusable {
    #[error("{0}")]
    Probe(#[from] GpuUnavailable),
    #[error("{0}")]
    Session(#[from] BuildFailure),
}

/// A start that ends in `Error`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartFailure {
    #[error("cannot load {model}: {source}")]
    Model {
        model: String,
        source: ModelSourceError,
    },
    #[error(transparent)]
    Build(#[from] BuildFailure),
    /// The configured engine failed and so did the configured fallback engine.
    #[error("{first}; the fallback failed too: {fallback}")]
    FallbackFailed {
        first: BuildFailure,
        fallback: BuildFailure,
    },
    #[error(
        "{0}; the GPU engine needs an NVIDIA GPU and its driver (in a container: \
         --gpus all with the NVIDIA container runtime), or set \
         engine.allow_cpu_fallback = true to serve on the CPU"
    )]
    NoGpu(GpuUnavailable),
    #[error("{0}; or set engine.allow_cpu_fallback = true to serve on the CPU meanwhile")]
    NoGpuSession(BuildFailure),
    #[error("{gpu}; and cannot load {model}: {source}")]
    NoGpuNoModel {
        gpu: GpuUnavailable,
        model: String,
        source: ModelSourceError,
    },
    #[error("{gpu}; the CPU fallback failed too: {cpu}")]
    CpuFallbackFailed { gpu: GpuUnusable, cpu: BuildFailure },
    /// `auto`: not one of the engines it compares could start.
    #[error("no engine could start: {}", each_failure(.0))]
    NoContender(Vec<(EngineKind, BuildFailure)>),
}

fn each_failure(failed: &[(EngineKind, BuildFailure)]) -> String {
    failed
        .iter()
        .map(|(kind, failure)| format!("{kind}: {failure}"))
        .collect::<Vec<_>>()
        .join("; ")
}
