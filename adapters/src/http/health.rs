//! `GET /health` (spec A1): always 200, at once, never waits on the engine; `GET /ready`
//! (spec B): 200 only while the engine is usable; `GET /classes`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ports::{ClusterStatus, Health};
use serde::Serialize;

use super::AppState;

/// `/health`'s body (spec A1); `event: availability` frames carry the same object.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthBody<'a> {
    /// Always `healthy`.
    status: &'static str,
    /// `None`, `Downloading`, `Converting`, `Uploading`, `Enabled`, `Warning` or `Error`.
    ai_availability: &'static str,
    /// The reason in `Warning` and `Error`.
    error_message: Option<&'a str>,
    /// The engine in use once one is loaded (`onnx`, `cuda`, `tensorrt`, `openvino`).
    engine_type: Option<&'static str>,
    /// What the engine computes in, where it chose (`f32`, `bf16`, `f16`; OpenVINO).
    #[serde(skip_serializing_if = "Option::is_none")]
    precision: Option<&'static str>,
    /// In a cluster: the replica that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    replica: Option<String>,
    /// In a cluster: `connected` or `unreachable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    broker: Option<&'static str>,
}

impl HealthBody<'_> {
    /// An availability event's body: the replica whose engine it is, in a cluster.
    pub fn with_replica(mut self, replica: Option<String>) -> Self {
        self.replica = replica;
        self
    }

    fn in_cluster(mut self, cluster: Option<ClusterStatus>) -> Self {
        if let Some(cluster) = cluster {
            self.broker = Some(if cluster.broker_reachable {
                "connected"
            } else {
                "unreachable"
            });
            self.replica = Some(cluster.replica);
        }
        self
    }
}

impl<'a> From<&'a Health> for HealthBody<'a> {
    fn from(health: &'a Health) -> Self {
        HealthBody {
            status: "healthy",
            ai_availability: health.availability.name(),
            error_message: health.availability.reason(),
            engine_type: health.engine_type.map(ports::EngineKind::as_str),
            precision: health.precision.map(ports::ComputePrecision::as_str),
            replica: None,
            broker: None,
        }
    }
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Always, at once; never starts the engine", body = HealthBody)))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let health = state.service.health();
    Json(HealthBody::from(&health).in_cluster(state.service.cluster())).into_response()
}

/// 200 when detections can run (Enabled or Warning) and, in a cluster, the broker is
/// reachable; else 503. The body is `/health`'s.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "The engine is usable", body = HealthBody),
    (status = 503, description = "The engine is not usable (yet)", body = HealthBody)))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let usable = state.service.health().availability.is_usable()
        && state
            .service
            .cluster()
            .is_none_or(|cluster| cluster.broker_reachable);
    let status = if usable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, health(State(state)).await)
}

/// classes.json as the service loaded it.
#[utoipa::path(get, path = "/classes", tag = "operations",
    responses((status = 200, description = "classes.json as loaded", body = [super::openapi::ClassEntrySchema])))]
pub async fn classes(State(state): State<AppState>) -> impl IntoResponse {
    let classes = state.service.classes();
    Json(classes.as_ref().clone())
}
