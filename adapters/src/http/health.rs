//! `GET /health` (spec A1): always 200, at once, never waits on the engine.

use axum::Json;
use axum::extract::State;
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
