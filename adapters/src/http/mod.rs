//! Inbound HTTP adapter: the compatible API over the driving port.

mod detect;
mod error;
mod health;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use ports::DetectionService;

/// What every handler reaches: the driving port, nothing else.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<dyn DetectionService>,
    /// Longest silence on an SSE stream before a keep-alive comment.
    pub sse_keep_alive: Duration,
}

/// Settings of the HTTP adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Bounds uploads; a larger body is refused with 413 while it streams in.
    pub max_body_bytes: usize,
    /// Longest silence on `GET /detect/stream` before a `: keep-alive` comment.
    pub sse_keep_alive: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 512 * 1024 * 1024,
            sse_keep_alive: Duration::from_secs(15),
        }
    }
}

/// The router of the whole API.
pub fn router(service: Arc<dyn DetectionService>, config: HttpConfig) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/classes", get(health::classes))
        .route(
            "/detect",
            post(detect::detect).layer(DefaultBodyLimit::max(config.max_body_bytes)),
        )
        .route("/detect/stream", get(stream::stream))
        .with_state(AppState {
            service,
            sse_keep_alive: config.sse_keep_alive,
        })
}

/// Serves the API until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<dyn DetectionService>,
    config: HttpConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(service, config))
        .with_graceful_shutdown(shutdown)
        .await
}
