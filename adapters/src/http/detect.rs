//! `POST /detect` (spec A2): a multipart upload with a `file` part and an optional
//! `config` part of recognition settings; answers the detections as a JSON array.

use axum::Json;
use axum::extract::{Multipart, State};
use bytes::Bytes;
use domain::settings::SettingsPatch;
use ports::{DetectRequest, DetectionDto};

use super::AppState;
use super::error::ApiError;

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
