//! The Annotations service (spec A8, A9): where annotations are posted, and the catalogue
//! of media, users and tokens. One HTTP client serves both ports.
//!
//! Nothing here retries: a failed annotation is retried by the
//! [`Outbox`](super::outbox::Outbox) wrapped around this sink, and a failed catalogue
//! call is the caller's to judge. Every call carries the client's `Authorization`
//! header byte for byte.

use crate::client_setup::ClientSetupError;
use std::path::PathBuf;
use std::time::Duration;

use super::wire::AnnotationBody;
use async_trait::async_trait;
use domain::auth::{BearerToken, Credentials};
use domain::job::MediaStatus;
use domain::media::MediaId;
use domain::settings::SettingsPatch;
use ports::{Annotation, AnnotationError, AnnotationSink, CatalogError, MediaCatalog, MediaRecord};
use reqwest::{StatusCode, Url, header::AUTHORIZATION};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct AnnotationsClientConfig {
    /// Base URL (`ANNOTATIONS_URL`), e.g. `http://annotations:8080`; a path prefix is kept.
    pub url: String,
    /// Bounds each whole request, connecting included.
    pub timeout: Duration,
}

pub struct AnnotationsClient {
    base: Url,
    client: reqwest::Client,
}

/// How much of an error body goes into a message.
const EXCERPT_CHARS: usize = 200;

impl AnnotationsClient {
    pub fn new(config: AnnotationsClientConfig) -> Result<Self, ClientSetupError> {
        const SETTING: &str = "ANNOTATIONS_URL";
        let base = Url::parse(&config.url).map_err(|e| ClientSetupError::NotAUrl {
            setting: SETTING,
            value: config.url.clone(),
            reason: e.to_string(),
        })?;
        if base.cannot_be_a_base() {
            return Err(ClientSetupError::NotABase {
                setting: SETTING,
                value: config.url,
            });
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .build()
            .map_err(ClientSetupError::client("Annotations"))?;
        Ok(Self { base, client })
    }

    /// The base URL with `segments` appended, each percent-encoded as one segment.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the base URL can be a base")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Sends `request` with the token header and maps every failure the same way.
    async fn call(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
        token: &BearerToken,
    ) -> Result<reqwest::Response, CatalogError> {
        let response = request
            .header(AUTHORIZATION, token.header())
            .send()
            .await
            .map_err(|e| {
                if e.is_builder() {
                    CatalogError::Rejected(format!("{what}: cannot build the request: {e}"))
                } else {
                    CatalogError::Unavailable(format!("{what}: {}", describe(&e)))
                }
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let message = format!(
            "{what}: Annotations answered {status}{}",
            excerpt_of(response).await
        );
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CatalogError::Unauthorized(message),
            StatusCode::NOT_FOUND => CatalogError::NotFound(message),
            s if is_transient(s) => CatalogError::Unavailable(message),
            _ => CatalogError::Rejected(message),
        })
    }

    /// The body of a successful answer as JSON; `null` for an empty body.
    async fn json_of(what: &str, response: reqwest::Response) -> Result<Value, CatalogError> {
        let body = response
            .bytes()
            .await
            .map_err(|e| CatalogError::Unavailable(format!("{what}: answer broke off: {e}")))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body)
            .map_err(|e| CatalogError::Rejected(format!("{what}: answer is not JSON: {e}")))
    }
}

/// 5xx, 408 and 429: the service is there but cannot answer now.
fn is_transient(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        format!("Annotations did not answer in time: {error}")
    } else {
        format!("Annotations unreachable: {error}")
    }
}

/// `": <first characters of the body>"`, or nothing for an empty body.
async fn excerpt_of(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let mut excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
    if excerpt.len() < text.len() {
        excerpt.push('…');
    }
    format!(": {excerpt}")
}

/// The value under `key` compared without regard to case (`path`, `Path`, `PATH`).
fn get_any_case<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    let object = object.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The header that lets the receiver drop a repeated delivery of one annotation.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

impl AnnotationsClient {
    async fn post_annotation(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
        idempotency_key: Option<&str>,
    ) -> Result<(), AnnotationError> {
        let mut request = self
            .client
            .post(self.url(&["annotations"]))
            .json(&AnnotationBody::from(annotation));
        if let Some(header) = authorization {
            request = request.header(AUTHORIZATION, header);
        }
        if let Some(key) = idempotency_key {
            request = request.header(IDEMPOTENCY_KEY, key);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_builder() {
                // An Authorization value that is not a valid header: no retry helps.
                AnnotationError::Rejected(format!("cannot build the request: {e}"))
            } else {
                AnnotationError::Transient(describe(&e))
            }
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let message = format!(
            "Annotations answered {status} to POST /annotations for media {}{}",
            annotation.media_id,
            excerpt_of(response).await
        );
        if is_transient(status) {
            Err(AnnotationError::Transient(message))
        } else {
            Err(AnnotationError::Rejected(message))
        }
    }
}

#[async_trait]
impl AnnotationSink for AnnotationsClient {
    async fn deliver(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
    ) -> Result<(), AnnotationError> {
        self.post_annotation(annotation, authorization, None).await
    }

    async fn deliver_with_key(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
        idempotency_key: &str,
    ) -> Result<(), AnnotationError> {
        self.post_annotation(annotation, authorization, Some(idempotency_key))
            .await
    }
}

#[async_trait]
impl MediaCatalog for AnnotationsClient {
    async fn refresh(&self, credentials: &Credentials) -> Result<BearerToken, CatalogError> {
        const WHAT: &str = "POST /auth/refresh";
        let refresh_token = credentials.refresh_token.as_deref().ok_or_else(|| {
            CatalogError::Rejected(format!("{WHAT}: the request brought no refresh token"))
        })?;
        let request = self
            .client
            .post(self.url(&["auth", "refresh"]))
            .json(&json!({ "refreshToken": refresh_token }));
        let response = self.call(WHAT, request, &credentials.token).await?;
        let body = Self::json_of(WHAT, response).await?;
        let token = get_any_case(&body, "token")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                CatalogError::Rejected(format!("{WHAT}: the answer has no \"token\" string"))
            })?;
        BearerToken::parse(&format!("Bearer {token}"))
            .map_err(|e| CatalogError::Rejected(format!("{WHAT}: {e}")))
    }

    async fn create_media(
        &self,
        record: &MediaRecord,
        token: &BearerToken,
    ) -> Result<(), CatalogError> {
        let user_id = record.user_id.as_deref().or(token.user_id());
        let body = json!({
            "Id": record.id.as_str(),
            "Name": record.name,
            "Path": record.path.to_string_lossy(),
            "MediaType": record.kind.name(),
            "MediaStatus": MediaStatus::New.code(),
            "UserId": user_id,
        });
        let request = self.client.post(self.url(&["api", "media"])).json(&body);
        self.call("POST /api/media", request, token).await?;
        Ok(())
    }

    async fn set_status(
        &self,
        id: &MediaId,
        status: MediaStatus,
        token: &BearerToken,
    ) -> Result<(), CatalogError> {
        let request = self
            .client
            .put(self.url(&["api", "media", id.as_str(), "status"]))
            .json(&json!({ "mediaStatus": status.code() }));
        let what = format!("PUT /api/media/{}/status", id.as_str());
        self.call(&what, request, token).await?;
        Ok(())
    }

    async fn media_path(&self, id: &MediaId, token: &BearerToken) -> Result<PathBuf, CatalogError> {
        let what = format!("GET /api/media/{}", id.as_str());
        let request = self.client.get(self.url(&["api", "media", id.as_str()]));
        let response = self.call(&what, request, token).await?;
        let body = Self::json_of(&what, response).await?;
        get_any_case(&body, "path")
            .and_then(Value::as_str)
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| {
                CatalogError::Rejected(format!("{what}: the answer has no \"path\" string"))
            })
    }

    async fn user_settings(
        &self,
        user_id: &str,
        token: &BearerToken,
    ) -> Result<SettingsPatch, CatalogError> {
        let what = format!("GET /api/users/{user_id}/ai-settings");
        let request = self
            .client
            .get(self.url(&["api", "users", user_id, "ai-settings"]));
        let response = self.call(&what, request, token).await?;
        let body = Self::json_of(&what, response).await?;
        if body.is_null() {
            // A user who never saved settings.
            return Ok(SettingsPatch::default());
        }
        SettingsPatch::from_json(&body).map_err(|e| {
            CatalogError::Rejected(format!("{what}: the stored settings are invalid: {e}"))
        })
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
