//! What every request goes through, outermost first: a request id (`x-request-id`,
//! the client's or one made here) set on the request and echoed on the response, a
//! log span carrying it, Prometheus request counts and durations, and a time limit
//! until the response head (an SSE stream's head goes out at once, so a stream is
//! never cut). The layers are tower-http's; by hand are only the Prometheus figures
//! and the API's error body on the time-limit answer, which no layer provides.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::error::ApiError;

/// Wraps every route of `router` in the layers above.
pub fn observed(router: Router, time_limit: Duration) -> Router {
    // `Router::layer` wraps what is there: the first call is the innermost.
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            time_limit,
        ))
        .layer(axum::middleware::map_response(move |response| {
            with_error_body(response, time_limit)
        }))
        .layer(axum::middleware::from_fn(count))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(
                    |response: &Response, latency: Duration, _span: &tracing::Span| {
                        tracing::debug!(
                            status = response.status().as_u16(),
                            elapsed = latency.as_secs_f64(),
                            "answered"
                        );
                    },
                )
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(BootCounterIds))
}

/// The span every log line of a request is written in.
fn request_span(request: &Request) -> tracing::Span {
    let id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = route_of(request),
    )
}

fn route_of(request: &Request) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
}

/// Prometheus: requests by method, route and status; durations by route.
async fn count(request: Request, next: Next) -> Response {
    let route = route_of(&request).to_string();
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("detections_http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("detections_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The time-limit layer answers an empty 503; every answer of this API carries a
/// `detail`, so give it one (the API's own 503s are never empty).
async fn with_error_body(response: Response, time_limit: Duration) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE
        && response.body().size_hint().exact() == Some(0)
    {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the request took longer than {} s", time_limit.as_secs()),
        )
        .into_response();
    }
    response
}

/// Request ids unique to this process: its start time and a counter.
#[derive(Clone, Copy)]
struct BootCounterIds;

impl MakeRequestId for BootCounterIds {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        static BOOT: OnceLock<u64> = OnceLock::new();
        let boot = *BOOT.get_or_init(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        let id = format!("{boot:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
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
