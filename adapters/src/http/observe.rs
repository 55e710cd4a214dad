//! What every request goes through: a request id (taken from `x-request-id` or made),
//! a log span carrying it, Prometheus request counts and durations, and a time limit
//! until the response starts (an SSE stream starts at once, so it is never cut).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

use super::error::ApiError;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Time allowed until a response starts.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout(pub Duration);

pub async fn observe(
    State(RequestTimeout(limit)): State<RequestTimeout>,
    request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(new_request_id);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let started = Instant::now();
    let mut response =
        match tokio::time::timeout(limit, next.run(request).instrument(span.clone())).await {
            Ok(response) => response,
            Err(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the request took longer than {} s", limit.as_secs()),
            )
            .into_response(),
        };
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    span.in_scope(|| tracing::debug!(%status, elapsed, "answered"));
    metrics::counter!("detections_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("detections_http_request_duration_seconds", "route" => route)
        .record(elapsed);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}

fn new_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static BOOT: OnceLock<u64> = OnceLock::new();
    let boot = *BOOT.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    format!("{boot:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The process's Prometheus recorder, installed on first use (one per process).
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ],
            )
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests); ours then only renders.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::debug!("a metrics recorder was already installed");
        }
        handle
    })
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics() -> impl IntoResponse {
    let handle = prometheus();
    handle.run_upkeep();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
}
