//! Inbound HTTP adapter: the compatible API over the driving port.

mod health;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use ports::DetectionService;

/// What every handler reaches: the driving port, nothing else.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<dyn DetectionService>,
}

/// The router of the whole API.
pub fn router(service: Arc<dyn DetectionService>) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .with_state(AppState { service })
}

/// Serves the API until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<dyn DetectionService>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(service))
        .with_graceful_shutdown(shutdown)
        .await
}
