//! Inbound HTTP adapter: the compatible API over the driving port.

mod detect;
mod error;
mod health;
mod jobs;
mod observe;
mod openapi;
mod stream;
mod video;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use ports::DetectionService;

pub use observe::prometheus;
pub use openapi::ApiDoc;

/// What every handler reaches: the driving port, nothing else.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<dyn DetectionService>,
    /// Longest silence on an SSE stream before a keep-alive comment.
    pub sse_keep_alive: Duration,
    /// Largest upload (`POST /detect/video` counts it while it streams).
    pub max_body_bytes: usize,
}

/// Limits and timings of the HTTP surface.
#[derive(Debug, Clone, Copy)]
pub struct HttpConfig {
    /// Largest upload; a larger body is refused with 413 while it streams in.
    pub max_body_bytes: usize,
    /// Time allowed until a response starts (SSE streams start at once and run on).
    pub request_timeout: Duration,
    /// Longest silence on `GET /detect/stream` before a `: keep-alive` comment.
    pub sse_keep_alive: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 512 * 1024 * 1024,
            request_timeout: Duration::from_secs(600),
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
        .route("/metrics", get(observe::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .route(
            "/detect",
            post(detect::detect).layer(DefaultBodyLimit::max(config.max_body_bytes)),
        )
        .route("/detect/stream", get(stream::stream))
        // The body streams to the decoder; the limit is counted there.
        .route(
            "/detect/video",
            post(video::upload).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/detect/{media_id}",
            post(jobs::start).get(jobs::status).delete(jobs::cancel),
        )
        .with_state(AppState {
            service,
            sse_keep_alive: config.sse_keep_alive,
            max_body_bytes: config.max_body_bytes,
        })
        .layer(axum::middleware::from_fn_with_state(
            observe::RequestTimeout(config.request_timeout),
            observe::observe,
        ))
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
