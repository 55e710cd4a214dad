//! `GET /health` (spec A1): always 200, at once, never waits on the engine; `GET /ready`
//! (spec B): 200 only while the engine is usable; `GET /classes`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ports::Health;
use serde::Serialize;

use super::AppState;

/// `/health`'s body; `event: availability` frames carry the same object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthBody<'a> {
    status: &'static str,
    ai_availability: &'static str,
    error_message: Option<&'a str>,
    engine_type: Option<&'static str>,
}

impl<'a> From<&'a Health> for HealthBody<'a> {
    fn from(health: &'a Health) -> Self {
        HealthBody {
            status: "healthy",
            ai_availability: health.availability.name(),
            error_message: health.availability.reason(),
            engine_type: health.engine_type,
        }
    }
}

pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let health = state.service.health();
    Json(HealthBody::from(&health)).into_response()
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
