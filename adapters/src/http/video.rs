//! `POST /detect/video` (spec B): a raw video body, detected while it still arrives.

use async_trait::async_trait;
use axum::Json;
use axum::body::{Body, BodyDataStream};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use domain::settings::SettingsPatch;
use futures_util::StreamExt;
use ports::{ByteStream, UploadBrokeOff, VideoUpload};
use serde::Serialize;

use super::AppState;
use super::error::ApiError;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadStartedBody {
    status: &'static str,
    /// The content id of spec A8.
    media_id: String,
    /// The id events carried until the upload ended.
    upload_id: String,
}

/// Reserved in the body memory budget by each video upload: the decoder's queue of
/// chunks (32 of at most a few hundred KiB) and the staged file's write buffer.
const VIDEO_UPLOAD_HOLDS: usize = 16 * 1024 * 1024;

/// The request body as chunks, refused past the body limit.
struct BodyChunks {
    stream: BodyDataStream,
    limit: usize,
    seen: usize,
}

#[async_trait]
impl ByteStream for BodyChunks {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, UploadBrokeOff>> {
        let chunk = self.stream.next().await?;
        Some(match chunk {
            Ok(bytes) => {
                self.seen += bytes.len();
                if self.seen > self.limit {
                    Err(UploadBrokeOff::TooLarge { limit: self.limit })
                } else {
                    Ok(bytes)
                }
            }
            Err(e) => Err(UploadBrokeOff::Transport(e.to_string())),
        })
    }
}

#[utoipa::path(post, path = "/detect/video", tag = "detection",
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The video file (mp4, mov, webm, mkv, avi, m4v); decoding starts while it arrives"),
    params(
        ("X-Filename" = String, Header, description = "The original file name"),
        ("X-Config" = Option<String>, Header, description = "A JSON object of recognition settings"),
        ("Authorization" = Option<String>, Header, description = "`Bearer <jwt>`: also runs the media lifecycle"),
        ("X-Refresh-Token" = Option<String>, Header, description = "Used when the token expires within 60 s"),
    ),
    responses(
        (status = 200, description = "Uploaded; detection goes on, progress and results on /detect/stream", body = UploadStartedBody),
        (status = 400, description = "No X-Filename, bad X-Config, empty or broken upload", body = super::error::Detail),
        (status = 401, description = "Authorization is not `Bearer <token>`", body = super::error::Detail),
        (status = 413, description = "Content-Length over the configured limit", body = super::error::Detail),
        (status = 503, description = "Queue full or memory budget for bodies taken (both with Retry-After), or shutting down", body = super::error::Detail),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<UploadStartedBody>, ApiError> {
    let file_name = headers
        .get("x-filename")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request("the X-Filename header is required"))?
        .to_string();
    let settings = match headers.get("x-config") {
        None => SettingsPatch::default(),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| ApiError::bad_request("X-Config is not text"))?;
            if text.trim().is_empty() {
                SettingsPatch::default()
            } else {
                SettingsPatch::from_json_str(text)
                    .map_err(|e| ApiError::bad_request(format!("X-Config: {e}")))?
            }
        }
    };
    let credentials = super::credentials::credentials(&headers)?;
    // What the upload holds in memory on its way to the staged file and the decoder.
    let Some(lease) = state
        .budget
        .reserve(VIDEO_UPLOAD_HOLDS.min(state.budget.in_memory_max()))
    else {
        let mut chunks = body.into_data_stream();
        return Err(super::shed(&state.budget, async move {
            while let Some(Ok(_)) = chunks.next().await {}
        }));
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body_bytes as u64) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {} bytes", state.max_body_bytes),
        ));
    }
    let started = state
        .service
        .start_video_upload(VideoUpload {
            body: Box::new(BodyChunks {
                stream: body.into_data_stream(),
                limit: state.max_body_bytes,
                seen: 0,
            }),
            file_name,
            settings,
            credentials,
        })
        .await?;
    drop(lease);
    Ok(Json(UploadStartedBody {
        status: "started",
        media_id: started.media_id.to_string(),
        upload_id: started.upload_id.to_string(),
    }))
}
