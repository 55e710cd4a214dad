//! How the engine's and the pipeline's failures reach the client.

use ports::DetectError;

use crate::detect::FrameError;
use crate::engine::EngineUnavailable;

pub(crate) fn unavailable(error: EngineUnavailable) -> DetectError {
    DetectError::EngineUnavailable {
        availability: error.status.availability,
    }
}

pub(crate) fn frame_error(error: FrameError) -> DetectError {
    match error {
        FrameError::Decode(e) => DetectError::BadInput(format!("not a decodable image: {e}")),
        FrameError::Output(e) => {
            DetectError::Unprocessable(format!("cannot read the model output: {e}"))
        }
        FrameError::Engine(e) => DetectError::Unprocessable(e.to_string()),
        FrameError::Preprocess(e) => DetectError::Internal(e.to_string()),
    }
}

pub(crate) fn claim_error(error: ports::JobClaimError) -> DetectError {
    match error {
        ports::JobClaimError::AlreadyRunning(_) => DetectError::Conflict(error.to_string()),
        ports::JobClaimError::Unavailable(_) => DetectError::Upstream(error.to_string()),
    }
}
