//! An annotation sink that posts each annotation to a generic webhook — the worked
//! example of adding an adapter (ARCHITECTURE.md, "Adding an adapter"): this file, one
//! config variant (`[annotations] kind = "webhook"`) and one match arm in `main.rs`;
//! nothing in the domain, the ports or the core changed.
//!
//! The body is `{"event":"annotation","annotation":{…spec A9 annotation…}}`; an
//! optional shared secret goes in a header of the integrator's choosing. The client's
//! `Authorization` is not forwarded: a third-party endpoint must not see user tokens.

use crate::client_setup::ClientSetupError;
use std::time::Duration;

use super::wire::AnnotationBody;
use async_trait::async_trait;
use ports::{Annotation, AnnotationError, AnnotationSink};
use reqwest::StatusCode;
use serde::Serialize;

#[derive(Debug, Clone)]
pub struct WebhookSinkConfig {
    pub url: String,
    pub timeout: Duration,
    /// `(header name, value)` sent with every call, e.g. a shared secret.
    pub secret_header: Option<(String, String)>,
}

pub struct WebhookSink {
    client: reqwest::Client,
    config: WebhookSinkConfig,
}

#[derive(Serialize)]
struct Envelope {
    event: &'static str,
    annotation: AnnotationBody,
}

impl WebhookSink {
    pub fn new(config: WebhookSinkConfig) -> Result<Self, ClientSetupError> {
        reqwest::Url::parse(&config.url).map_err(|e| ClientSetupError::NotAUrl {
            setting: "annotations.url (webhook)",
            value: config.url.clone(),
            reason: e.to_string(),
        })?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(ClientSetupError::client("webhook"))?;
        Ok(Self { client, config })
    }
}

#[async_trait]
impl AnnotationSink for WebhookSink {
    async fn deliver(
        &self,
        annotation: &Annotation,
        _authorization: Option<String>,
    ) -> Result<(), AnnotationError> {
        self.post(annotation, None).await
    }

    async fn deliver_with_key(
        &self,
        annotation: &Annotation,
        _authorization: Option<String>,
        idempotency_key: &str,
    ) -> Result<(), AnnotationError> {
        self.post(annotation, Some(idempotency_key)).await
    }
}

impl WebhookSink {
    async fn post(
        &self,
        annotation: &Annotation,
        idempotency_key: Option<&str>,
    ) -> Result<(), AnnotationError> {
        let mut request = self.client.post(&self.config.url).json(&Envelope {
            event: "annotation",
            annotation: AnnotationBody::from(annotation),
        });
        if let Some((name, value)) = &self.config.secret_header {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(key) = idempotency_key {
            request = request.header(super::http::IDEMPOTENCY_KEY, key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| AnnotationError::Transient(format!("webhook unreachable: {e}")))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS
        {
            Err(AnnotationError::Transient(format!(
                "webhook answered {status}"
            )))
        } else {
            Err(AnnotationError::Rejected(format!(
                "webhook answered {status}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wiremock::matchers::{body_partial_json, header, header_exists, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn annotation() -> Annotation {
        Annotation {
            media_id: domain::media::MediaId::parse("m1").unwrap(),
            video_time: Default::default(),
            detections: vec![],
            jpeg: bytes::Bytes::from_static(b"hi"),
            key: None,
        }
    }

    fn sink(server: &MockServer) -> WebhookSink {
        WebhookSink::new(WebhookSinkConfig {
            url: format!("{}/hook", server.uri()),
            timeout: Duration::from_secs(2),
            secret_header: Some(("x-hook-secret".into(), "s3cret".into())),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn posts_the_envelope_with_the_secret_and_never_the_users_token() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/hook"))
            .and(header("x-hook-secret", "s3cret"))
            .and(body_partial_json(serde_json::json!({
                "event": "annotation",
                "annotation": {"mediaId": "m1", "videoTime": "00:00:00"}
            })))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(header_exists("authorization"))
            .respond_with(ResponseTemplate::new(500))
            .expect(0)
            .mount(&server)
            .await;
        sink(&server)
            .deliver(&annotation(), Some("Bearer user-token".into()))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn server_errors_are_transient_and_client_errors_permanent() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(410))
            .mount(&server)
            .await;
        let sink = sink(&server);
        assert!(matches!(
            sink.deliver(&annotation(), None).await,
            Err(AnnotationError::Transient(_))
        ));
        assert!(matches!(
            sink.deliver(&annotation(), None).await,
            Err(AnnotationError::Rejected(_))
        ));
    }

    #[test]
    fn a_bad_url_is_a_configuration_error() {
        let error = WebhookSink::new(WebhookSinkConfig {
            url: "not a url".into(),
            timeout: Duration::from_secs(1),
            secret_header: None,
        })
        .err()
        .unwrap()
        .to_string();
        assert!(
            error.contains("(webhook)") && error.contains("not a URL"),
            "{error}"
        );
    }
}
