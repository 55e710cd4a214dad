//! Loading `libopenvino_c`: once per process, from a configured file, never a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ports::EngineError;

use crate::engine::files::same_file;

/// The library loaded in this process (the crate keeps one), or why it failed.
static LOADED: Mutex<Option<Result<PathBuf, EngineError>>> = Mutex::new(None);

pub(crate) fn load(library: &Path) -> Result<(), EngineError> {
    std::fs::File::open(library).map_err(|e| {
        EngineError::Runtime(format!(
            "OpenVINO library {} cannot be read: {e}",
            library.display()
        ))
    })?;
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    match &*loaded {
        Some(Ok(path)) if same_file(path, library) => return Ok(()),
        Some(Ok(path)) => {
            return Err(EngineError::Runtime(format!(
                "OpenVINO is already loaded from {} in this process; cannot also load {}",
                path.display(),
                library.display()
            )));
        }
        Some(Err(error)) => return Err(error.clone()),
        None => {}
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        openvino_sys::library::load_from(library.to_path_buf())
    }))
    .unwrap_or_else(|_| Err("the loader panicked".into()))
    .map(|()| library.to_path_buf())
    .map_err(|e| {
        EngineError::Runtime(format!(
            "OpenVINO library {} failed to load: {e}",
            library.display()
        ))
    });
    if result.is_ok() {
        tracing::info!(library = %library.display(), "OpenVINO loaded");
    }
    *loaded = Some(result.clone());
    result.map(drop)
}
