//! `GET /health` (spec A1): always 200, at once, never waits on the engine; `GET /ready`
//! (spec B): 200 only while the engine is usable; `GET /classes`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;

use super::AppState;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthBody {
    status: &'static str,
    ai_availability: &'static str,
    error_message: Option<String>,
    engine_type: Option<&'static str>,
}

pub async fn health(State(state): State<AppState>) -> Json<HealthBody> {
    let health = state.service.health();
    Json(HealthBody {
        status: "healthy",
        ai_availability: health.availability.name(),
        error_message: health.availability.reason().map(str::to_string),
        engine_type: health.engine_type,
    })
}

/// 200 when detections can run (Enabled or Warning), else 503; the body is `/health`'s.
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let usable = state.service.health().availability.is_usable();
    let status = if usable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, health(State(state)).await)
}

/// classes.json as the service loaded it.
pub async fn classes(State(state): State<AppState>) -> impl IntoResponse {
    let classes = state.service.classes();
    Json(classes.as_ref().clone())
}
