//! Loading the ONNX Runtime library: once per process, from a configured path, never a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;
use ports::EngineError;

use crate::engine::files::same_file;

/// ort allows one library and one environment per process; this records which.
enum State {
    Empty,
    Loaded {
        path: PathBuf,
        environment: Environment,
    },
    /// The library was mapped but the environment could not be built: ort keeps that library,
    /// so no other path can be tried in this process.
    Broken {
        path: PathBuf,
        reason: String,
    },
}

static STATE: Mutex<State> = Mutex::new(State::Empty);

/// The process's ONNX Runtime environment, loading `library` the first time.
pub(crate) fn environment(library: &Path) -> Result<Environment, EngineError> {
    // Check the file ourselves first: a clear message, and no loader search-path surprises.
    std::fs::File::open(library).map_err(|e| {
        EngineError::Runtime(format!(
            "ONNX Runtime library {} cannot be read: {e}",
            library.display()
        ))
    })?;
    let mut state = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    match &*state {
        State::Loaded { path, environment } => {
            return if same_file(path, library) {
                Ok(environment.clone())
            } else {
                Err(EngineError::Runtime(format!(
                    "ONNX Runtime is already loaded from {} in this process; cannot also load {}",
                    path.display(),
                    library.display()
                )))
            };
        }
        State::Broken { path, reason } => {
            return Err(EngineError::Runtime(format!(
                "ONNX Runtime library {} failed to initialise: {reason}",
                path.display()
            )));
        }
        State::Empty => {}
    }

    // `init_from` returns errors for a bad file or an old version, but parts of ort assert and
    // panic on an unexpected library; contain that.
    let loaded = catch_unwind(AssertUnwindSafe(|| ort::init_from(library)));
    let builder = match loaded {
        Ok(Ok(builder)) => builder,
        Ok(Err(e)) => {
            return Err(EngineError::Runtime(format!(
                "ONNX Runtime library {} failed to load: {e}",
                library.display()
            )));
        }
        Err(panic) => {
            return Err(EngineError::Runtime(format!(
                "ONNX Runtime library {} failed to load: {}",
                library.display(),
                panic_message(panic.as_ref())
            )));
        }
    };
    // From here on ort holds the library, so a failure is final for the process.
    let built = catch_unwind(AssertUnwindSafe(|| builder.with_name("detections").build()));
    let reason = match built {
        Ok(Ok(environment)) => {
            tracing::info!(library = %library.display(), "ONNX Runtime loaded");
            *state = State::Loaded {
                path: library.to_path_buf(),
                environment: environment.clone(),
            };
            return Ok(environment);
        }
        Ok(Err(e)) => e.to_string(),
        Err(panic) => panic_message(panic.as_ref()),
    };
    *state = State::Broken {
        path: library.to_path_buf(),
        reason: reason.clone(),
    };
    Err(EngineError::Runtime(format!(
        "ONNX Runtime library {} failed to initialise: {reason}",
        library.display()
    )))
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".into())
}
