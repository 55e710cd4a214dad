//! File checks every engine makes before handing a path to its runtime: the runtimes'
//! own messages for a missing file are vague.

use std::path::Path;

use ports::{EngineError, ModelArtifact};

/// The model file can be opened; else a model error naming it and its path.
pub(crate) fn readable(model: &ModelArtifact) -> Result<(), EngineError> {
    std::fs::File::open(&model.path).map(drop).map_err(|e| {
        EngineError::Model(format!(
            "{} ({}) cannot be read: {e}",
            model.name,
            model.path.display()
        ))
    })
}

/// The same file, by path or once links are resolved (a runtime library is loaded once
/// per process: asking for it again by another path is not another library).
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (a.canonicalize(), b.canonicalize()),
            (Ok(a), Ok(b)) if a == b
        )
}
