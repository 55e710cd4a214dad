//! Where accepted annotations go: the Annotations service, or a local file.

use async_trait::async_trait;

use crate::events::DetectionDto;

/// One accepted annotation (spec A9 `POST /annotations`). The wire shape (base64
/// image, `HH:MM:SS`, `source` 0) is the adapters' (`adapters::annotations::wire`).
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub media_id: domain::media::MediaId,
    /// Where in the video (zero for a photo).
    pub video_time: domain::tracking::VideoTime,
    pub detections: Vec<DetectionDto>,
    /// The frame, as JPEG.
    pub jpeg: bytes::Bytes,
    /// The idempotency key, when the work that made the annotation may be done again
    /// (a job that another replica takes over: [`domain::job::RunId`]); `None`: the
    /// sink makes a new one.
    pub key: Option<String>,
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
///
/// # The durability contract the core relies on
/// The sink the application is given (in production the outbox, wrapping the sink that
/// talks to the receiver) must keep these promises; a replacement, such as a
/// broker-backed one, must keep them too:
/// - **Accepted is kept.** When [`deliver`](Self::deliver) returns `Ok`, the annotation
///   survives a crash or restart of this process (the outbox: synced to its journal).
///   The core reports work done (`AIProcessed`, the 200 of `POST /detect`) only after
///   that.
/// - **At least once, with one key.** Every attempt of one annotation carries the same
///   idempotency key ([`deliver_with_key`](Self::deliver_with_key)), across retries and
///   restarts, so the receiver can drop duplicates.
/// - **In order, never silently dropped.** Annotations are sent in acceptance order;
///   a transient failure ([`AnnotationError::Transient`]) is retried with backoff (the
///   outbox: without limit of time; the broker: up to `max_deliveries`); one the
///   receiver refuses ([`AnnotationError::Rejected`]), or that failed every retry, is
///   put aside where an operator can see it (the outbox: `rejected/`; the broker: the
///   dead letters), not retried.
/// - **Detection never waits on the receiver.** `deliver` waits at most for the local
///   write, never for the network.
/// - **Shutdown is bounded.** [`close`](Self::close) sends what it can within `grace`;
///   what is left is sent after the next start.
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
