//! `GET /`: the console, one static page over the public API (HTML, CSS and plain
//! JavaScript embedded in the binary: no build toolchain, nothing fetched from
//! elsewhere, so it works on a closed network). `[server] console = false` turns it off.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::AppState;

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// Only this origin's own files and API; names and errors from uploads are inserted as
/// text by the script, and this refuses any inline script besides.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; connect-src 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| page("text/html; charset=utf-8", INDEX)))
        .route(
            "/console/console.js",
            get(|| page("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/console/console.css",
            get(|| page("text/css; charset=utf-8", STYLE)),
        )
}

async fn page(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
