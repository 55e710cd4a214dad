//! `GET /openapi.json`: the OpenAPI document, generated from the handlers' annotations
//! and the wire types, so it cannot drift from the code.

use axum::Json;
use serde::Serialize;
use utoipa::OpenApi;

/// One entry of classes.json (spec A10), as `/classes` returns it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = ClassEntry)]
#[allow(dead_code)] // Documentation only: `/classes` serialises the domain's table (domain::classes::ClassEntry).
pub struct ClassEntrySchema {
    id: u32,
    name: String,
    /// `#rrggbb`.
    color: String,
    max_size_m: f64,
    short_name: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Detections", description = "Object detection on photos and videos (YOLO on ONNX Runtime), results over SSE."),
    paths(
        super::health::health,
        super::health::ready,
        super::health::classes,
        super::observe::metrics,
        super::detect::detect,
        super::video::upload,
        super::media_jobs::start,
        super::media_jobs::status,
        super::media_jobs::cancel,
        super::stream::stream,
        openapi_json,
    ),
    components(schemas(ports::DetectionEvent, ports::MediaEventStatus)),
    tags(
        (name = "detection", description = "Detections of photos, background jobs"),
        (name = "operations", description = "Health, readiness, metrics, classes"),
    )
)]
pub struct ApiDoc;

#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
