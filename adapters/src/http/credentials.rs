//! The caller's credentials, read the same way by every handler.

use axum::http::HeaderMap;
use domain::auth::{BearerToken, Credentials};

use super::error::ApiError;

/// `Authorization: Bearer …` and `x-refresh-token`, when the request has them.
pub fn credentials(headers: &HeaderMap) -> Result<Option<Credentials>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    let token = BearerToken::parse(text).map_err(|e| ApiError::unauthorized(e.to_string()))?;
    let refresh_token = headers
        .get("x-refresh-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    Ok(Some(Credentials {
        token,
        refresh_token,
    }))
}
