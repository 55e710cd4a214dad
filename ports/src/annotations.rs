//! Where accepted annotations go: the Annotations service, or a local file.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::events::DetectionDto;

/// One accepted annotation (spec A9 `POST /annotations`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotation {
    pub media_id: String,
    /// Always 0 (this service is the source).
    pub source: u8,
    /// `HH:MM:SS`; `00:00:00` for images.
    pub video_time: String,
    pub detections: Vec<DetectionDto>,
    /// Base64 JPEG of the frame.
    pub image: String,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AnnotationError {
    /// Worth trying again later: connection refused, timeout, 5xx, 429.
    #[error("annotation sink temporarily unavailable: {0}")]
    Transient(String),
    /// Trying again will not help: 4xx other than 429, an unwritable file.
    #[error("annotation rejected: {0}")]
    Rejected(String),
}

/// Delivers annotations. `authorization` is the client's header value, forwarded as is.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AnnotationSink: Send + Sync {
    async fn deliver(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
    ) -> Result<(), AnnotationError>;

    /// [`deliver`](Self::deliver) as one attempt of an at-least-once delivery:
    /// `idempotency_key` is the same for every attempt of this annotation, also after a
    /// restart, so the receiver can drop duplicates. A sink that can pass it on (an HTTP
    /// `Idempotency-Key` header) does; by default it is ignored.
    async fn deliver_with_key(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
        idempotency_key: &str,
    ) -> Result<(), AnnotationError> {
        let _ = idempotency_key;
        self.deliver(annotation, authorization).await
    }

    /// Finishes or puts aside what is pending, within `grace` (shutdown). A sink that
    /// sends synchronously has nothing to do.
    async fn close(&self, grace: std::time::Duration) {
        let _ = grace;
    }
}
