//! Annotations on the broker: a replica that accepts an annotation stores it in a
//! JetStream stream (message id = its idempotency key, so a retried publish is stored
//! once) before the work is reported done, and one durable consumer that every replica
//! shares delivers it to the receiver. A replica that dies takes nothing with it: what
//! it had accepted is delivered by the others.
//!
//! The consumer acks after a 2xx, asks for redelivery with a growing delay after a
//! transient failure, and moves an annotation the receiver refuses (or that failed
//! `max_deliveries` times) to the dead-letter stream, where `detections dead-letters`
//! lists and replays it. While the broker is unreachable, annotations go to the local
//! journal (the outbox), which moves them into the stream ([`IntoStream`]), with their
//! keys, when it returns.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use async_trait::async_trait;
use futures_util::StreamExt;
use ports::{Annotation, AnnotationError, AnnotationSink};
use tokio_util::sync::CancellationToken;

use super::{Broker, BrokerError};
use crate::annotations::journal::{Entry, Journal};

/// Annotations stored on the broker.
pub const STORED_TOTAL: &str = "detections_broker_annotations_stored_total";
/// Deliveries asked again after a transient failure.
pub const REDELIVERED_TOTAL: &str = "detections_broker_annotations_redelivered_total";
/// Annotations moved to the dead-letter stream.
pub const DEAD_TOTAL: &str = "detections_broker_annotations_dead_total";
/// Deliveries whose acknowledgement the broker confirmed (no redelivery follows).
pub const DELIVERED_TOTAL: &str = "detections_broker_annotations_delivered_total";

/// The header that says why an annotation is a dead letter.
const REASON: &str = "Detections-Reason";

/// How the shared consumer retries.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Deliveries before an annotation is a dead letter.
    pub max_deliveries: i64,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// A delivery not answered within this is given to another replica.
    pub ack_wait: Duration,
}

/// The `AnnotationSink` the core is given in a cluster.
pub struct BrokerDelivery {
    broker: Arc<Broker>,
    /// The local journal, for when the broker is unreachable.
    journal: Arc<dyn AnnotationSink>,
    stop: CancellationToken,
}

impl BrokerDelivery {
    /// Starts this replica's part of the shared consumer, delivering to `receiver`.
    pub fn start(
        broker: Arc<Broker>,
        receiver: Arc<dyn AnnotationSink>,
        journal: Arc<dyn AnnotationSink>,
        policy: DeliveryPolicy,
    ) -> Arc<BrokerDelivery> {
        metrics::describe_counter!(STORED_TOTAL, "Annotations stored on the broker");
        metrics::describe_counter!(
            REDELIVERED_TOTAL,
            "Annotation deliveries tried again after a transient failure"
        );
        metrics::describe_counter!(DEAD_TOTAL, "Annotations moved to the dead-letter stream");
        metrics::describe_counter!(
            DELIVERED_TOTAL,
            "Annotations delivered whose acknowledgement the broker confirmed"
        );
        let stop = CancellationToken::new();
        tokio::spawn(deliver_forever(
            Arc::clone(&broker),
            receiver,
            policy,
            stop.clone(),
        ));
        Arc::new(BrokerDelivery {
            broker,
            journal,
            stop,
        })
    }
}

fn key_for(annotation: &Annotation) -> Result<String, AnnotationError> {
    Journal::key_for(annotation)
        .map_err(|e| AnnotationError::Transient(format!("no idempotency key: {e}")))
}

/// The local journal's receiver in a cluster: an annotation journaled while the broker
/// was unreachable is stored in the stream, under its key, once the broker is back
/// (until then every try is a transient failure, and the journal keeps it).
pub struct IntoStream {
    broker: Arc<Broker>,
}

impl IntoStream {
    pub fn new(broker: Arc<Broker>) -> Self {
        Self { broker }
    }
}

#[async_trait]
impl AnnotationSink for IntoStream {
    async fn deliver(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
    ) -> Result<(), AnnotationError> {
        let key = key_for(annotation)?;
        self.deliver_with_key(annotation, authorization, &key).await
    }

    async fn deliver_with_key(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
        idempotency_key: &str,
    ) -> Result<(), AnnotationError> {
        if !self.broker.is_connected() {
            return Err(AnnotationError::Transient(
                "the broker is unreachable".into(),
            ));
        }
        self.broker
            .store_keyed(annotation, authorization, idempotency_key)
            .await
            .map_err(|e| AnnotationError::Transient(e.to_string()))?;
        tracing::info!(
            key = idempotency_key,
            "journaled annotation moved to the broker"
        );
        Ok(())
    }
}

#[async_trait]
impl AnnotationSink for BrokerDelivery {
    async fn deliver(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
    ) -> Result<(), AnnotationError> {
        if self.broker.is_connected() {
            let key = key_for(annotation)?;
            let stored = self
                .broker
                .store_keyed(annotation, authorization.clone(), &key)
                .await;
            match stored {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "annotation not stored on the broker; journaling it here")
                }
            }
        }
        self.journal.deliver(annotation, authorization).await
    }

    async fn close(&self, grace: Duration) {
        self.stop.cancel();
        self.journal.close(grace).await;
    }
}

impl Broker {
    pub(super) fn annotations_subject(&self) -> String {
        self.subject("annotations")
    }

    fn dead_subject(&self) -> String {
        self.subject("dead-annotations")
    }

    pub(super) async fn annotations_stream(
        &self,
    ) -> Result<jetstream::stream::Stream, BrokerError> {
        self.jetstream
            .get_or_create_stream(jetstream::stream::Config {
                name: self.name("ANNOTATIONS"),
                subjects: vec![self.annotations_subject()],
                retention: jetstream::stream::RetentionPolicy::WorkQueue,
                num_replicas: self.config.replicas,
                ..Default::default()
            })
            .await
            .map_err(BrokerError::of)
    }

    pub(super) async fn dead_stream(&self) -> Result<jetstream::stream::Stream, BrokerError> {
        self.jetstream
            .get_or_create_stream(jetstream::stream::Config {
                name: self.name("DEAD_ANNOTATIONS"),
                subjects: vec![self.dead_subject()],
                num_replicas: self.config.replicas,
                ..Default::default()
            })
            .await
            .map_err(BrokerError::of)
    }

    /// Stores `annotation` under `key` (counted), acknowledged by the stream.
    async fn store_keyed(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
        key: &str,
    ) -> Result<(), BrokerError> {
        let entry = Entry {
            key: key.to_string(),
            annotation: annotation.clone(),
            authorization,
        };
        self.store_annotation(&entry).await?;
        metrics::counter!(STORED_TOTAL).increment(1);
        Ok(())
    }

    /// Stores `entry`, acknowledged by the stream (replicated where configured); a
    /// second store with the same key within the duplicate window is dropped.
    pub(super) async fn store_annotation(&self, entry: &Entry) -> Result<(), BrokerError> {
        self.store_annotation_as(entry, &entry.key).await
    }

    async fn store_annotation_as(
        &self,
        entry: &Entry,
        message_id: &str,
    ) -> Result<(), BrokerError> {
        self.annotations_stream().await?;
        let payload = serde_json::to_vec(entry).map_err(BrokerError::of)?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", message_id);
        self.jetstream
            .publish_with_headers(self.annotations_subject(), headers, payload.into())
            .await
            .map_err(BrokerError::of)?
            .await
            .map_err(BrokerError::of)?;
        Ok(())
    }

    async fn bury(&self, payload: bytes::Bytes, reason: &str) -> Result<(), BrokerError> {
        self.dead_stream().await?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(REASON, reason.replace(['\r', '\n'], " ").as_str());
        self.jetstream
            .publish_with_headers(self.dead_subject(), headers, payload)
            .await
            .map_err(BrokerError::of)?
            .await
            .map_err(BrokerError::of)?;
        metrics::counter!(DEAD_TOTAL).increment(1);
        Ok(())
    }
}

/// This replica's part of the shared durable consumer, until `stop`.
async fn deliver_forever(
    broker: Arc<Broker>,
    receiver: Arc<dyn AnnotationSink>,
    policy: DeliveryPolicy,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        if let Err(e) = deliver_some(&broker, receiver.as_ref(), &policy, &stop).await {
            tracing::warn!(error = %e, "annotation delivery from the broker paused");
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

async fn deliver_some(
    broker: &Broker,
    receiver: &dyn AnnotationSink,
    policy: &DeliveryPolicy,
    stop: &CancellationToken,
) -> Result<(), BrokerError> {
    let stream = broker.annotations_stream().await?;
    let consumer = stream
        .get_or_create_consumer(
            "delivery",
            pull::Config {
                durable_name: Some("delivery".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: policy.ack_wait,
                // One at a time across the cluster: annotations go out in order.
                max_ack_pending: 1,
                ..Default::default()
            },
        )
        .await
        .map_err(BrokerError::of)?;
    let mut messages = consumer.messages().await.map_err(BrokerError::of)?;
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            message = messages.next() => message,
        };
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(BrokerError::of(e)),
            None => return Ok(()),
        };
        let delivered = message.info().map_or(1, |info| info.delivered);
        let entry: Entry = match serde_json::from_slice(&message.payload) {
            Ok(entry) => entry,
            Err(e) => {
                broker
                    .bury(message.payload.clone(), &format!("not an annotation: {e}"))
                    .await?;
                message.ack().await.map_err(BrokerError::of)?;
                continue;
            }
        };
        let outcome = receiver
            .deliver_with_key(&entry.annotation, entry.authorization.clone(), &entry.key)
            .await;
        match outcome {
            // Confirmed by the broker, so the count means "will not come again"
            // (short of the broker losing its own state).
            Ok(()) => {
                message.double_ack().await.map_err(BrokerError::of)?;
                metrics::counter!(DELIVERED_TOTAL).increment(1);
            }
            Err(AnnotationError::Transient(reason)) if delivered < policy.max_deliveries => {
                metrics::counter!(REDELIVERED_TOTAL).increment(1);
                let delay = backoff(policy, delivered);
                tracing::debug!(%reason, ?delay, "annotation delivery failed; trying again");
                message
                    .ack_with(AckKind::Nak(Some(delay)))
                    .await
                    .map_err(BrokerError::of)?;
            }
            Err(e) => {
                tracing::warn!(media = %entry.annotation.media_id, error = %e, "annotation moved to the dead letters");
                broker.bury(message.payload.clone(), &e.to_string()).await?;
                message.ack().await.map_err(BrokerError::of)?;
            }
        }
    }
}

fn backoff(policy: &DeliveryPolicy, delivered: i64) -> Duration {
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    policy
        .first_delay
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(policy.max_delay)
}

/// An annotation in the dead-letter stream.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub sequence: u64,
    pub key: String,
    pub media_id: String,
    pub reason: String,
}

/// The dead letters, oldest first.
pub async fn dead_letters(broker: &Broker) -> Result<Vec<DeadLetter>, BrokerError> {
    let mut stream = broker.dead_stream().await?;
    let state = stream.info().await.map_err(BrokerError::of)?.state.clone();
    let mut letters = Vec::new();
    if state.messages == 0 {
        return Ok(letters);
    }
    for sequence in state.first_sequence..=state.last_sequence {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            // Deleted (replayed) meanwhile.
            continue;
        };
        let reason = message
            .headers
            .get(REASON)
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        let (key, media_id) = match serde_json::from_slice::<Entry>(&message.payload) {
            Ok(entry) => (entry.key, entry.annotation.media_id.to_string()),
            Err(_) => (String::new(), String::new()),
        };
        letters.push(DeadLetter {
            sequence,
            key,
            media_id,
            reason,
        });
    }
    Ok(letters)
}

/// Puts a dead letter back for delivery (same idempotency key) and removes it from the
/// dead letters; `false` when there is no such letter or it is not an annotation.
pub async fn replay(broker: &Broker, sequence: u64) -> Result<bool, BrokerError> {
    let stream = broker.dead_stream().await?;
    let Ok(message) = stream.get_raw_message(sequence).await else {
        return Ok(false);
    };
    let Ok(entry) = serde_json::from_slice::<Entry>(&message.payload) else {
        return Ok(false);
    };
    // A new message id, so the broker's duplicate window does not drop it; the
    // receiver still sees the annotation's own key.
    broker
        .store_annotation_as(&entry, &format!("{}-replay-{sequence}", entry.key))
        .await?;
    stream
        .delete_message(sequence)
        .await
        .map_err(BrokerError::of)?;
    Ok(true)
}
