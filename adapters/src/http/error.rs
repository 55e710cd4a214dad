//! The one place where failures become HTTP answers: `{"detail": …}` bodies (spec A2).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ports::DetectError;
use serde::Serialize;

/// Every error body (spec A2).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Detail {
    /// What went wrong, naming the field or the state.
    detail: String,
}

/// What a client reads for a 500: the cause is in the log, under the request's id.
pub const INTERNAL_DETAIL: &str =
    "the service failed to answer; the log has the cause under this request's x-request-id";

/// An HTTP failure with its status and message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 503 with `Retry-After`: the request was shed to protect the service.
    pub fn shed(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            detail: detail.into(),
            retry_after_secs: Some(retry_after_secs),
        }
    }

    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            retry_after_secs: None,
        }
    }
}

impl From<DetectError> for ApiError {
    fn from(error: DetectError) -> Self {
        let detail = error.to_string();
        let status = match &error {
            DetectError::BadInput(_) => StatusCode::BAD_REQUEST,
            DetectError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            DetectError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            DetectError::NotFound(_) => StatusCode::NOT_FOUND,
            DetectError::Conflict(_) => StatusCode::CONFLICT,
            DetectError::Upstream(_) => StatusCode::BAD_GATEWAY,
            DetectError::EngineUnavailable { .. }
            | DetectError::Busy { .. }
            | DetectError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            DetectError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let retry_after_secs = match error {
            DetectError::Busy { retry_after_secs } => Some(retry_after_secs),
            _ => None,
        };
        // The cause of a 500 is the operator's to read (in the request's span, so with
        // its id), not the client's.
        let detail = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %detail, "request failed inside the service");
            INTERNAL_DETAIL.to_string()
        } else {
            detail
        };
        Self {
            status,
            detail,
            retry_after_secs,
        }
    }
}

impl From<axum::extract::multipart::MultipartError> for ApiError {
    fn from(error: axum::extract::multipart::MultipartError) -> Self {
        let status = error.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(
                status,
                "the request body is larger than the configured limit",
            )
        } else {
            Self::bad_request(format!("malformed multipart body: {}", error.body_text()))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(Detail {
                detail: self.detail,
            }),
        )
            .into_response();
        if let Some(value) = self
            .retry_after_secs
            .and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(error: DetectError) -> (StatusCode, Option<String>) {
        let response = ApiError::from(error).into_response();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        (response.status(), retry)
    }

    #[test]
    fn each_detection_failure_has_its_status() {
        assert_eq!(status_of(DetectError::BadInput("x".into())).0, 400);
        assert_eq!(status_of(DetectError::Unprocessable("x".into())).0, 422);
        assert_eq!(
            status_of(DetectError::EngineUnavailable {
                availability: domain::availability::Availability::Error(
                    domain::availability::Reason::new("no model")
                ),
            })
            .0,
            503
        );
        assert_eq!(
            DetectError::EngineUnavailable {
                availability: domain::availability::Availability::Error(
                    domain::availability::Reason::new("no model")
                ),
            }
            .to_string(),
            "engine not available: Error (no model)"
        );
        assert_eq!(
            status_of(DetectError::Busy {
                retry_after_secs: 2
            }),
            (StatusCode::SERVICE_UNAVAILABLE, Some("2".into()))
        );
        assert_eq!(status_of(DetectError::ShuttingDown).0, 503);
        assert_eq!(status_of(DetectError::Unauthorized("x".into())).0, 401);
        assert_eq!(status_of(DetectError::NotFound("x".into())).0, 404);
        assert_eq!(status_of(DetectError::Conflict("x".into())).0, 409);
        assert_eq!(status_of(DetectError::Upstream("x".into())).0, 502);
        assert_eq!(status_of(DetectError::Internal("x".into())).0, 500);
    }
}
