//! Inbound HTTP adapter: the compatible API over the driving port.

mod detect;
mod error;
mod health;
mod jobs;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use ports::DetectionService;

/// What every handler reaches: the driving port, nothing else.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<dyn DetectionService>,
}

/// The router of the whole API. `max_body_bytes` bounds uploads; a larger body is
/// refused with 413 while it streams in.
pub fn router(service: Arc<dyn DetectionService>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/classes", get(health::classes))
        .route(
            "/detect",
            post(detect::detect).layer(DefaultBodyLimit::max(max_body_bytes)),
        )
        .route(
            "/detect/{media_id}",
            post(jobs::start).get(jobs::status).delete(jobs::cancel),
        )
        .with_state(AppState { service })
}

/// Serves the API until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<dyn DetectionService>,
    max_body_bytes: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(service, max_body_bytes))
        .with_graceful_shutdown(shutdown)
        .await
}
