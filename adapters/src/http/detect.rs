//! `POST /detect` (spec A2): a multipart upload with a `file` part and an optional
//! `config` part of recognition settings; answers the detections as a JSON array.

use axum::Json;
use axum::extract::{Multipart, State};
use bytes::BytesMut;
use domain::job::MediaKind;
use domain::media::sniff_kind;
use domain::settings::SettingsPatch;
use ports::{DetectRequest, DetectionDto, UploadContent, UploadSink};

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
        (status = 503, description = "Engine not available, queue full or memory budget for bodies taken (both with Retry-After), or shutting down", body = super::error::Detail),
    ))]
pub async fn detect(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    mut multipart: Multipart,
) -> Result<Json<Vec<DetectionDto>>, ApiError> {
    let credentials = super::credentials::credentials(&headers)?;
    // Room for what this body may hold in memory, before a byte of it is read.
    let Some(lease) = state.budget.admit(declared_length(&headers)) else {
        return Err(super::shed(&state.budget, async move {
            while let Ok(Some(mut field)) = multipart.next_field().await {
                while let Ok(Some(_)) = field.chunk().await {}
            }
        }));
    };
    // A body declared larger than it may hold goes to a staged file from its first byte.
    let stage_at_once = declared_length(&headers).is_some_and(|n| n > lease.bytes() as u64);
    let mut file: Option<(UploadContent, Option<String>)> = None;
    let mut settings = SettingsPatch::default();
    while let Some(mut field) = multipart.next_field().await? {
        match field.name() {
            Some("file") => {
                let name = field.file_name().map(str::to_string);
                let content =
                    receive_file(&state, &mut field, name.as_deref(), &lease, stage_at_once)
                        .await?;
                file = Some((content, name));
            }
            Some("config") => {
                let text = receive_config(&mut field).await?;
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
    drop(lease);
    Ok(Json(detections))
}

/// The most a `config` part may hold: settings are a few hundred bytes; more would be
/// memory outside the budget.
const CONFIG_MAX_BYTES: usize = 64 * 1024;

/// The `config` part as text, refused (400) past [`CONFIG_MAX_BYTES`].
async fn receive_config(
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await? {
        if bytes.len() + chunk.len() > CONFIG_MAX_BYTES {
            return Err(ApiError::bad_request(format!(
                "config: larger than {} KiB",
                CONFIG_MAX_BYTES / 1024
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| ApiError::bad_request("config: not UTF-8 text"))
}

/// The first bytes that tell a video from a photo.
const SNIFF_BYTES: usize = 16;

fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(axum::http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The `file` part: in memory while it is a photo within the lease; a video (by its
/// first bytes) or anything larger goes to a staged file as it arrives.
async fn receive_file(
    state: &AppState,
    field: &mut axum::extract::multipart::Field<'_>,
    name: Option<&str>,
    lease: &ports::MemoryLease,
    stage_at_once: bool,
) -> Result<UploadContent, ApiError> {
    let mut staged: Option<Box<dyn UploadSink>> = None;
    if stage_at_once {
        staged = Some(state.service.stage_upload().await?);
    }
    // Room for all the lease allows: growing by doubling would touch up to twice that.
    let capacity = if stage_at_once { 0 } else { lease.bytes() };
    let mut head = BytesMut::with_capacity(capacity);
    while let Some(chunk) = field.chunk().await? {
        if let Some(sink) = staged.as_mut() {
            sink.write(&chunk).await?;
            continue;
        }
        let too_large = head.len() + chunk.len() > lease.bytes();
        if !too_large {
            head.extend_from_slice(&chunk);
        }
        let video = head.len() >= SNIFF_BYTES && sniff_kind(&head, name) == Some(MediaKind::Video);
        if video || too_large {
            let mut sink = state.service.stage_upload().await?;
            sink.write(&head).await?;
            if too_large {
                sink.write(&chunk).await?;
            }
            head = BytesMut::new();
            staged = Some(sink);
        }
    }
    Ok(match staged {
        Some(sink) => UploadContent::Staged(sink.finish().await?),
        None => UploadContent::Memory(head.freeze()),
    })
}
