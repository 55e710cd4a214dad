//! The HTTP surface: the Loader's and the Annotations service's routes (spec A9), the
//! recording and rule middleware, and the `/_standin` control routes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::state::{Action, Call, Rule, Shared};

/// Bodies larger than this are recorded by length only.
const JSON_RECORD_LIMIT: usize = 4 * 1024 * 1024;

type AppState = State<Arc<Shared>>;

/// The whole stand-in as an axum router.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        // Loader
        .route("/load/{filename}", post(load))
        .route("/upload/{filename}", post(upload))
        // Annotations
        .route("/annotations", post(annotation))
        .route("/api/media", post(create_media))
        .route("/api/media/{id}", get(get_media))
        .route("/api/media/{id}/status", put(media_status))
        .route("/api/users/{user_id}/ai-settings", get(ai_settings))
        .route("/auth/refresh", post(refresh))
        .fallback(no_route)
        .layer(from_fn_with_state(Arc::clone(&shared), intercept))
        // Control (not recorded, not subject to rules)
        .route("/_standin/calls", get(calls))
        .route("/_standin/rules", get(rules))
        .route("/_standin/fail", post(control_fail))
        .route("/_standin/hang", post(control_hang))
        .route("/_standin/delay", post(control_delay))
        .route("/_standin/media", post(control_media))
        .route("/_standin/settings", post(control_settings))
        .route("/_standin/token", post(control_token))
        .route("/_standin/reset", post(control_reset))
        .layer(DefaultBodyLimit::disable())
        .with_state(shared)
}

fn detail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "detail": message.into() }))).into_response()
}

/// Records the call, then applies the rules: delay, hang, fail, else the real route.
async fn intercept(State(shared): AppState, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => return detail(StatusCode::BAD_REQUEST, format!("cannot read body: {e}")),
    };
    let mut headers = BTreeMap::<String, String>::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let path = parts.uri.path().to_string();
    let body_json = (bytes.len() <= JSON_RECORD_LIMIT)
        .then(|| serde_json::from_slice::<Value>(&bytes).ok())
        .flatten();
    shared.record(Call {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_string),
        headers,
        body: body_json,
        body_len: bytes.len(),
    });
    let verdict = shared.verdict(&path);
    if let Some(delay) = verdict.delay {
        tokio::time::sleep(delay).await;
    }
    if verdict.hang {
        std::future::pending::<()>().await;
    }
    if let Some(status) = verdict.fail {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return detail(status, format!("stand-in: {path} fails with {status}"));
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn no_route(request: Request) -> Response {
    detail(
        StatusCode::NOT_FOUND,
        format!(
            "stand-in: no route {} {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// A plain file name: no separators, not `.` or `..`.
fn plain_name(name: &str) -> Result<&str, Box<Response>> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(Box::new(detail(
            StatusCode::BAD_REQUEST,
            format!("not a plain file name: {name:?}"),
        )));
    }
    Ok(name)
}

// ---------------------------------------------------------------- Loader

#[derive(Deserialize)]
struct LoadBody {
    filename: String,
    folder: String,
}

async fn load(State(shared): AppState, Path(filename): Path<String>, body: Bytes) -> Response {
    let name = match plain_name(&filename) {
        Ok(name) => name,
        Err(response) => return *response,
    };
    // The real Loader needs this body; a client that leaves it out is wrong.
    let Ok(request) = serde_json::from_slice::<LoadBody>(&body) else {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "expected a JSON body {\"filename\", \"folder\"}",
        );
    };
    let _ = (request.filename, request.folder);
    match tokio::fs::read(shared.models_dir().join(name)).await {
        Ok(bytes) => (
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            detail(StatusCode::NOT_FOUND, format!("no such file: {name}"))
        }
        Err(e) => detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {name}: {e}"),
        ),
    }
}

async fn upload(
    State(shared): AppState,
    Path(filename): Path<String>,
    mut form: Multipart,
) -> Response {
    let name = match plain_name(&filename) {
        Ok(name) => name.to_string(),
        Err(response) => return *response,
    };
    let mut data = None;
    let mut folder = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let field_name = field.name().unwrap_or_default().to_string();
                let Ok(bytes) = field.bytes().await else {
                    return detail(StatusCode::BAD_REQUEST, "malformed multipart");
                };
                match field_name.as_str() {
                    "data" => data = Some(bytes),
                    "folder" => folder = Some(String::from_utf8_lossy(&bytes).into_owned()),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(e) => return detail(StatusCode::BAD_REQUEST, format!("malformed multipart: {e}")),
        }
    }
    let (Some(data), Some(_folder)) = (data, folder) else {
        return detail(
            StatusCode::BAD_REQUEST,
            "expected a file part `data` and a text part `folder`",
        );
    };
    let path = shared.models_dir().join(&name);
    match tokio::fs::write(&path, &data).await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({ "filename": name }))).into_response(),
        Err(e) => detail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write {}: {e}", path.display()),
        ),
    }
}

// ----------------------------------------------------------- Annotations

async fn annotation(body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(_)) => (StatusCode::CREATED, axum::Json(json!({}))).into_response(),
        _ => detail(StatusCode::BAD_REQUEST, "expected a JSON object"),
    }
}

/// A value under `key` in any of the casings the services use.
fn any_case<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    let object = object.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Stores `record` under its id, adding lower-case `id` and `path` keys.
fn store_media(shared: &Shared, mut record: Value) -> Result<String, Box<Response>> {
    let id = any_case(&record, "id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some(id) = id else {
        return Err(Box::new(detail(
            StatusCode::BAD_REQUEST,
            "the media has no Id",
        )));
    };
    let path = any_case(&record, "path").cloned().unwrap_or(Value::Null);
    if let Value::Object(object) = &mut record {
        object.insert("id".into(), Value::String(id.clone()));
        object.insert("path".into(), path);
    }
    shared.put_media(&id, record);
    Ok(id)
}

async fn create_media(State(shared): AppState, body: Bytes) -> Response {
    let record = match serde_json::from_slice::<Value>(&body) {
        Ok(record @ Value::Object(_)) => record,
        _ => return detail(StatusCode::BAD_REQUEST, "expected a JSON object"),
    };
    match store_media(&shared, record) {
        Ok(id) => (StatusCode::CREATED, axum::Json(shared.media(&id))).into_response(),
        Err(response) => *response,
    }
}

async fn get_media(State(shared): AppState, Path(id): Path<String>) -> Response {
    match shared.media(&id) {
        Some(record) => axum::Json(record).into_response(),
        None => detail(StatusCode::NOT_FOUND, format!("no media {id}")),
    }
}

async fn media_status(State(shared): AppState, Path(id): Path<String>, body: Bytes) -> Response {
    let status = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| any_case(&b, "mediaStatus").cloned())
        .filter(Value::is_i64);
    let Some(status) = status else {
        return detail(StatusCode::BAD_REQUEST, "expected {\"mediaStatus\": <int>}");
    };
    if shared.update_media(&id, "mediaStatus", status) {
        axum::Json(json!({})).into_response()
    } else {
        detail(StatusCode::NOT_FOUND, format!("no media {id}"))
    }
}

async fn ai_settings(State(shared): AppState, Path(_user_id): Path<String>) -> Response {
    axum::Json(shared.settings()).into_response()
}

async fn refresh(State(shared): AppState, body: Bytes) -> Response {
    let has_token = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("refreshToken").and_then(Value::as_str).map(drop))
        .is_some();
    if !has_token {
        return detail(
            StatusCode::BAD_REQUEST,
            "expected {\"refreshToken\": <string>}",
        );
    }
    axum::Json(json!({ "token": shared.token() })).into_response()
}

// --------------------------------------------------------------- Control

#[derive(Deserialize)]
struct CallsQuery {
    path: Option<String>,
}

async fn calls(State(shared): AppState, Query(query): Query<CallsQuery>) -> Response {
    axum::Json(shared.calls(query.path.as_deref().unwrap_or(""))).into_response()
}

async fn rules(State(shared): AppState) -> Response {
    axum::Json(shared.rules()).into_response()
}

#[derive(Deserialize)]
struct FailBody {
    path_prefix: String,
    #[serde(default = "default_fail_status")]
    status: u16,
    #[serde(default)]
    times: Option<u32>,
}

fn default_fail_status() -> u16 {
    503
}

#[derive(Deserialize)]
struct HangBody {
    path_prefix: String,
    #[serde(default)]
    times: Option<u32>,
}

#[derive(Deserialize)]
struct DelayBody {
    path_prefix: String,
    millis: u64,
    #[serde(default)]
    times: Option<u32>,
}

fn added(shared: &Shared, rule: Rule) -> Response {
    shared.add_rule(rule);
    axum::Json(shared.rules()).into_response()
}

async fn control_fail(State(shared): AppState, axum::Json(body): axum::Json<FailBody>) -> Response {
    if StatusCode::from_u16(body.status).is_err() {
        return detail(StatusCode::BAD_REQUEST, "status is not an HTTP status");
    }
    let rule = Rule {
        path_prefix: body.path_prefix,
        action: Action::Fail {
            status: body.status,
        },
        times: body.times,
    };
    added(&shared, rule)
}

async fn control_hang(State(shared): AppState, axum::Json(body): axum::Json<HangBody>) -> Response {
    let rule = Rule {
        path_prefix: body.path_prefix,
        action: Action::Hang,
        times: body.times,
    };
    added(&shared, rule)
}

async fn control_delay(
    State(shared): AppState,
    axum::Json(body): axum::Json<DelayBody>,
) -> Response {
    let rule = Rule {
        path_prefix: body.path_prefix,
        action: Action::Delay {
            millis: body.millis,
        },
        times: body.times,
    };
    added(&shared, rule)
}

async fn control_media(State(shared): AppState, axum::Json(body): axum::Json<Value>) -> Response {
    match store_media(&shared, body) {
        Ok(id) => axum::Json(shared.media(&id)).into_response(),
        Err(response) => *response,
    }
}

async fn control_settings(
    State(shared): AppState,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    shared.set_settings(body);
    axum::Json(shared.settings()).into_response()
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

async fn control_token(
    State(shared): AppState,
    axum::Json(body): axum::Json<TokenBody>,
) -> Response {
    shared.set_token(body.token);
    axum::Json(json!({ "token": shared.token() })).into_response()
}

async fn control_reset(State(shared): AppState) -> Response {
    shared.reset();
    axum::Json(json!({})).into_response()
}
