//! Inbound HTTP adapter: the compatible API over the driving port.

mod console;
mod credentials;
mod detect;
mod error;
mod health;
mod media_jobs;
mod observe;
mod openapi;
mod stream;
mod video;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use ports::{DetectionService, MemoryBudget};

pub use error::INTERNAL_DETAIL;
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
    /// Memory for request bodies in flight (shared with the application's videos).
    pub budget: Arc<MemoryBudget>,
}

/// Uploads shed by the memory budget.
pub const SHED_TOTAL: &str = "detections_requests_shed_total";

/// How long a shed request's body is read (and thrown away) after its answer.
const DISCARD_FOR: Duration = Duration::from_secs(60);

/// 503 with `Retry-After` for an upload the budget has no room for, counted. `discard`
/// reads the rest of its body in the background (for at most [`DISCARD_FOR`]), so the
/// client reads this answer instead of a reset connection.
fn shed(
    budget: &MemoryBudget,
    discard: impl std::future::Future<Output = ()> + Send + 'static,
) -> error::ApiError {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(DISCARD_FOR, discard).await;
    });
    metrics::counter!(SHED_TOTAL).increment(1);
    error::ApiError::shed(
        format!(
            "too many uploads in flight: the {} MiB memory budget for request bodies is taken; retry shortly",
            budget.limit() >> 20
        ),
        2,
    )
}

/// Limits and timings of the HTTP surface.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest upload; a larger body is refused with 413 while it streams in.
    pub max_body_bytes: usize,
    /// Time allowed until a response starts (SSE streams start at once and run on).
    pub request_timeout: Duration,
    /// Longest silence on `GET /detect/stream` before a `: keep-alive` comment.
    pub sse_keep_alive: Duration,
    /// Memory for what requests hold in flight (ARCHITECTURE.md "The memory plan"):
    /// bodies here, video frames in the application.
    pub budget: Arc<MemoryBudget>,
    /// Serve the console at `/`.
    pub console: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            budget: MemoryBudget::new(1024 * 1024 * 1024, 32 * 1024 * 1024),
            max_body_bytes: 512 * 1024 * 1024,
            request_timeout: Duration::from_secs(600),
            sse_keep_alive: Duration::from_secs(15),
            console: true,
        }
    }
}

/// The router of the whole API.
pub fn router(service: Arc<dyn DetectionService>, config: HttpConfig) -> Router {
    let routes = routes(service, &config);
    observe::observed(routes, config.request_timeout)
}

fn routes(service: Arc<dyn DetectionService>, config: &HttpConfig) -> Router {
    metrics::describe_counter!(
        SHED_TOTAL,
        "Uploads answered 503 at once: no room in the memory budget for request bodies"
    );
    metrics::counter!(SHED_TOTAL).increment(0);
    let console = if config.console {
        console::routes()
    } else {
        Router::new()
    };
    console
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
            post(media_jobs::start)
                .get(media_jobs::status)
                .delete(media_jobs::cancel),
        )
        .with_state(AppState {
            service,
            sse_keep_alive: config.sse_keep_alive,
            max_body_bytes: config.max_body_bytes,
            budget: Arc::clone(&config.budget),
        })
}

/// Serves the API until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<dyn DetectionService>,
    config: HttpConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // No Nagle: an answer (or an SSE event) leaves in the write that completes it, not
    // after the client's delayed ACK of the previous segment (3–11 % more images/s in
    // the OpenVINO bench: docs/profile.md).
    let listener = listener.tap_io(|stream| {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not turn Nagle's algorithm off");
        }
    });
    axum::serve(listener, router(service, config))
        .with_graceful_shutdown(shutdown)
        .await
}
