//! `POST /detect/{media_id}` (spec A3): a media the Annotations service knows, detected
//! in the background; `GET` and `DELETE` on the same path (spec B job control).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;

use domain::media::MediaId;
use domain::settings::SettingsPatch;
use ports::{JobView, MediaJobRequest};
use serde::Serialize;

use super::AppState;
use super::credentials::credentials;
use super::error::ApiError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    status: &'static str,
    media_id: String,
}

/// A background job (`GET`/`DELETE /detect/{media_id}`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobBody {
    media_id: String,
    status: &'static str,
    percent: u8,
    error: Option<String>,
    /// In a cluster: the replica whose run this is.
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<String>,
}

impl From<JobView> for JobBody {
    fn from(view: JobView) -> Self {
        Self {
            media_id: view.media_id.to_string(),
            status: view.status.name(),
            percent: view.percent,
            error: view.error,
            replica: view.replica,
        }
    }
}

fn media_id(text: &str) -> Result<MediaId, ApiError> {
    MediaId::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

#[utoipa::path(post, path = "/detect/{media_id}", tag = "detection",
    params(
        ("media_id" = String, Path, description = "The media's id in the Annotations service"),
        ("Authorization" = String, Header, description = "`Bearer <jwt>`, forwarded to Annotations"),
        ("x-refresh-token" = Option<String>, Header, description = "Used when the token expires within 60 s"),
    ),
    request_body(content = Option<Object>, content_type = "application/json",
        description = "Recognition settings over the user's stored ones"),
    responses(
        (status = 200, description = "Started; progress and results go out on /detect/stream", body = Started),
        (status = 400, description = "Bad media id or settings", body = super::error::Detail),
        (status = 401, description = "No bearer token", body = super::error::Detail),
        (status = 409, description = "A detection of this media is already running", body = super::error::Detail),
        (status = 503, description = "Shutting down", body = super::error::Detail),
    ))]
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Started>, ApiError> {
    let media_id = media_id(&id)?;
    let credentials = credentials(&headers)?.ok_or_else(|| {
        ApiError::unauthorized("an `Authorization: Bearer <token>` header is required")
    })?;
    let settings = if body.iter().all(u8::is_ascii_whitespace) {
        SettingsPatch::default()
    } else {
        let text = std::str::from_utf8(&body)
            .map_err(|_| ApiError::bad_request("the settings body is not UTF-8 JSON"))?;
        SettingsPatch::from_json_str(text)
            .map_err(|e| ApiError::bad_request(format!("settings: {e}")))?
    };
    let started = state
        .service
        .start_media_job(MediaJobRequest {
            media_id,
            credentials,
            settings,
        })
        .await?;
    Ok(Json(Started {
        status: "started",
        media_id: started.to_string(),
    }))
}

#[utoipa::path(get, path = "/detect/{media_id}", tag = "detection",
    params(("media_id" = String, Path)),
    responses(
        (status = 200, description = "The media's latest job", body = JobBody),
        (status = 404, description = "No job for this media", body = super::error::Detail),
    ))]
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobBody>, ApiError> {
    let media_id = media_id(&id)?;
    state
        .service
        .job(&media_id)
        .await
        .map(|view| Json(view.into()))
        .ok_or_else(|| ApiError::not_found(format!("no detection job for media {media_id}")))
}

#[utoipa::path(delete, path = "/detect/{media_id}", tag = "detection",
    params(("media_id" = String, Path)),
    responses(
        (status = 200, description = "Cancelled (it stops at the next frame boundary), or already ended", body = JobBody),
        (status = 404, description = "No job for this media", body = super::error::Detail),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobBody>, ApiError> {
    let media_id = media_id(&id)?;
    let view = state.service.cancel_job(&media_id).await?;
    Ok(Json(view.into()))
}
