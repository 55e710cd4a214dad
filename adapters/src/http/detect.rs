//! `POST /detect` (spec A2): a multipart upload with a `file` part and an optional
//! `config` part of recognition settings; answers the detections as a JSON array.

use axum::Json;
use axum::extract::{Multipart, State};
use bytes::Bytes;
use domain::settings::SettingsPatch;
use ports::{DetectRequest, DetectionDto};

use super::AppState;
use super::error::ApiError;

/// The multipart form of `POST /detect`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Documentation only: the handler reads the parts as they stream.
pub struct DetectForm {
    /// The photo (jpg, png, bmp, webp, tiff); the content decides, the name is a hint.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// A JSON object of recognition settings (snake, camel or Pascal case keys).
    config: Option<String>,
}

#[utoipa::path(post, path = "/detect", tag = "detection",
    request_body(content = DetectForm, content_type = "multipart/form-data"),
    params(
        ("Authorization" = Option<String>, Header, description = "`Bearer <jwt>`: also runs the media lifecycle (stored file, media record, statuses, annotations)"),
        ("x-refresh-token" = Option<String>, Header, description = "Used when the token expires within 60 s"),
    ),
    responses(
        (status = 200, description = "The photo's detections", body = [ports::DetectionDto]),
        (status = 400, description = "No file, empty or undecodable file, malformed multipart, bad config", body = super::error::Detail),
        (status = 401, description = "Authorization is not `Bearer <token>`", body = super::error::Detail),
        (status = 413, description = "Body over the configured limit", body = super::error::Detail),
        (status = 422, description = "Decoded, but processing failed", body = super::error::Detail),
        (status = 503, description = "Engine not available, queue full (Retry-After) or shutting down", body = super::error::Detail),
    ))]
pub async fn detect(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    mut multipart: Multipart,
) -> Result<Json<Vec<DetectionDto>>, ApiError> {
    let credentials = super::jobs::credentials(&headers)?;
    let mut file: Option<(Bytes, Option<String>)> = None;
    let mut settings = SettingsPatch::default();
    while let Some(field) = multipart.next_field().await? {
        match field.name() {
            Some("file") => {
                let name = field.file_name().map(str::to_string);
                file = Some((field.bytes().await?, name));
            }
            Some("config") => {
                let text = field.text().await?;
                if !text.trim().is_empty() {
                    settings = SettingsPatch::from_json_str(&text)
                        .map_err(|e| ApiError::bad_request(format!("config: {e}")))?;
                }
            }
            // Unknown parts are ignored, as unknown settings keys are.
            _ => {}
        }
    }
    let (content, file_name) =
        file.ok_or_else(|| ApiError::bad_request("the form has no `file` part"))?;
    let detections = state
        .service
        .detect(DetectRequest {
            content,
            file_name,
            settings,
            credentials,
        })
        .await?;
    Ok(Json(detections))
}
