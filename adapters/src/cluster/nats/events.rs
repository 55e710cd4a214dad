//! The SSE stream on a JetStream stream: every replica publishes to it and every
//! subscriber reads from it, so the `id:` is the stream sequence, one order for the
//! whole cluster, and `Last-Event-ID` means the same on every replica.
//!
//! Subjects: `<prefix>.events.media.<id>` and `<prefix>.events.availability`. A
//! subscriber reads `<prefix>.events.>` with an ordered consumer and keeps what its
//! `?mediaId=` asks for (NATS 2.9, which Debian ships, filters on one subject only,
//! and availability events go to every subscriber).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_nats::jetstream::consumer::{DeliverPolicy, push};
use async_trait::async_trait;
use domain::availability::Availability;
use futures_util::StreamExt;
use ports::{
    ComputePrecision, DetectionEvent, EngineKind, EventPublisher, EventReceiver, EventSubscription,
    Health, Sequenced, StreamEvent, StreamItem, SubscribeRequest,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Broker, BrokerError};
use crate::events::passes;

/// How long one try to open a subscriber's consumer may take, and the pause before
/// the next.
const OPEN_TRY: std::time::Duration = std::time::Duration::from_secs(3);
const OPEN_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);
/// How often a waiting subscriber looks whether the client reconnected.
const RECONNECT_CHECK: std::time::Duration = std::time::Duration::from_secs(1);
/// Events waiting for the broker; past this, new ones are dropped (and counted).
const PUBLISH_QUEUE: usize = 4096;
/// Events published to the broker.
pub const PUBLISHED_TOTAL: &str = "detections_broker_events_published_total";
/// Events dropped because the broker was unreachable for too long.
pub const DROPPED_TOTAL: &str = "detections_broker_events_dropped_total";
/// Seconds from an event's publication to the broker's acknowledgement.
pub const PUBLISH_SECONDS: &str = "detections_broker_publish_seconds";

/// An event as the stream holds it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireEvent {
    Detection(DetectionEvent),
    Availability {
        availability: String,
        reason: Option<String>,
        engine_type: Option<String>,
        #[serde(default)]
        precision: Option<String>,
        replica: String,
    },
}

pub struct NatsEvents {
    broker: Arc<Broker>,
    queue: mpsc::Sender<StreamEvent>,
    closed: CancellationToken,
    subscribers: Arc<AtomicUsize>,
}

impl NatsEvents {
    /// Starts the publishing task (events go out in the order they were published).
    pub fn start(broker: Arc<Broker>) -> NatsEvents {
        metrics::describe_counter!(PUBLISHED_TOTAL, "Events published to the broker");
        metrics::describe_counter!(
            DROPPED_TOTAL,
            "Events dropped while the broker was unreachable"
        );
        metrics::describe_histogram!(
            PUBLISH_SECONDS,
            "Seconds until the broker acknowledged an event"
        );
        let (queue, mut pending) = mpsc::channel::<StreamEvent>(PUBLISH_QUEUE);
        let publisher = Arc::clone(&broker);
        tokio::spawn(async move {
            while let Some(event) = pending.recv().await {
                publisher.publish_event(&event).await;
            }
        });
        NatsEvents {
            broker,
            queue,
            closed: CancellationToken::new(),
            subscribers: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Broker {
    /// Publishes one event and waits for the stream to store it, retrying while the
    /// broker is unreachable (the queue in front holds what comes meanwhile).
    async fn publish_event(&self, event: &StreamEvent) {
        let (subject, wire) = match event {
            StreamEvent::Detection(detection) => (
                self.subject(&format!("events.media.{}", detection.media_id)),
                WireEvent::Detection(detection.clone()),
            ),
            StreamEvent::Availability { health, replica } => (
                self.subject("events.availability"),
                WireEvent::Availability {
                    availability: health.availability.name().to_string(),
                    reason: health.availability.reason().map(str::to_string),
                    engine_type: health.engine_type.map(|e| e.as_str().to_string()),
                    precision: health.precision.map(|p| p.as_str().to_string()),
                    replica: replica
                        .clone()
                        .unwrap_or_else(|| self.config.replica.clone()),
                },
            ),
        };
        let Ok(payload) = serde_json::to_vec(&wire) else {
            return;
        };
        let mut delay = std::time::Duration::from_millis(100);
        loop {
            let started = std::time::Instant::now();
            match self.store_event(&subject, payload.clone()).await {
                Ok(()) => {
                    metrics::counter!(PUBLISHED_TOTAL).increment(1);
                    metrics::histogram!(PUBLISH_SECONDS).record(started.elapsed().as_secs_f64());
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event not stored on the broker; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
    }

    async fn store_event(&self, subject: &str, payload: Vec<u8>) -> Result<(), BrokerError> {
        self.events_stream().await?;
        self.jetstream
            .publish(subject.to_string(), payload.into())
            .await
            .map_err(BrokerError::of)?
            .await
            .map_err(BrokerError::of)?;
        Ok(())
    }
}

impl EventPublisher for NatsEvents {
    fn publish(&self, event: StreamEvent) {
        if self.queue.try_send(event).is_err() {
            metrics::counter!(DROPPED_TOTAL).increment(1);
        }
    }

    fn subscribe(&self, request: SubscribeRequest) -> EventSubscription {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        EventSubscription::new(NatsReceiver {
            broker: Arc::clone(&self.broker),
            request,
            closed: self.closed.clone(),
            messages: None,
            subscribers: Arc::clone(&self.subscribers),
            subscribed_at: async_nats::datetime::now(),
            connects: 0,
        })
    }

    fn close(&self) {
        self.closed.cancel();
    }

    fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::Relaxed)
    }
}

struct NatsReceiver {
    broker: Arc<Broker>,
    request: SubscribeRequest,
    closed: CancellationToken,
    messages: Option<push::Ordered>,
    subscribers: Arc<AtomicUsize>,
    /// "From now on" is from the request, not from when the broker first answers: a
    /// consumer made during a failover, seconds later, still starts here.
    subscribed_at: async_nats::datetime::DateTime,
    /// The client's connection count when the consumer was opened.
    connects: u64,
}

impl Drop for NatsReceiver {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl NatsReceiver {
    /// The ordered consumer, from just after `Last-Event-ID` (or from the request on); when
    /// events after it have already left the stream, how many.
    async fn open(&mut self) -> Result<Option<u64>, BrokerError> {
        let stream = self.broker.events_stream().await?.clone();
        let (policy, missed) = match self.request.after {
            // "From the request on" needs no round trip to the stream's leader.
            None => (
                DeliverPolicy::ByStartTime {
                    start_time: self.subscribed_at,
                },
                None,
            ),
            Some(after) => {
                let first = stream
                    .clone()
                    .info()
                    .await
                    .map_err(BrokerError::of)?
                    .state
                    .first_sequence;
                if after + 1 < first {
                    (
                        DeliverPolicy::ByStartSequence {
                            start_sequence: first,
                        },
                        Some(first - after - 1),
                    )
                } else {
                    (
                        DeliverPolicy::ByStartSequence {
                            start_sequence: after + 1,
                        },
                        None,
                    )
                }
            }
        };
        let consumer = stream
            .create_consumer(push::OrderedConfig {
                deliver_subject: self.broker.client.new_inbox(),
                filter_subject: self.broker.subject("events.>"),
                deliver_policy: policy,
                ..Default::default()
            })
            .await
            .map_err(BrokerError::of)?;
        self.messages = Some(consumer.messages().await.map_err(BrokerError::of)?);
        Ok(missed)
    }
}

#[async_trait]
impl EventReceiver for NatsReceiver {
    async fn next(&mut self) -> Option<StreamItem> {
        loop {
            if self.closed.is_cancelled() {
                return None;
            }
            if self.messages.is_none() {
                let closed = self.closed.clone();
                // Short tries, tried again soon: right after a server is lost the
                // cluster may place the new consumer on the dead server (it takes a
                // while to count it as gone), and such a try never answers.
                let opened = tokio::select! {
                    () = closed.cancelled() => return None,
                    opened = tokio::time::timeout(OPEN_TRY, self.open()) => opened
                        .unwrap_or_else(|_| Err(BrokerError("no answer in time".into()))),
                };
                if opened.is_ok() {
                    self.connects = self
                        .broker
                        .client
                        .statistics()
                        .connects
                        .load(Ordering::Relaxed);
                }
                match opened {
                    Ok(Some(missed)) if missed > 0 => return Some(StreamItem::Lagged { missed }),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "event stream unavailable; retrying");
                        tokio::select! {
                            () = self.closed.cancelled() => return None,
                            () = tokio::time::sleep(OPEN_PAUSE) => {}
                        }
                        continue;
                    }
                }
            }
            // After a reconnect the client library would recreate the consumer by itself,
            // retrying with a growing backoff that can outlast a failover: reopen here
            // instead, with the short tries above.
            let connects = self
                .broker
                .client
                .statistics()
                .connects
                .load(Ordering::Relaxed);
            if connects != self.connects {
                self.messages = None;
                continue;
            }
            let messages = self.messages.as_mut()?;
            let message = tokio::select! {
                () = self.closed.cancelled() => return None,
                message = messages.next() => message,
                // Stream::next is cancel-safe: nothing is lost by looking again.
                () = tokio::time::sleep(RECONNECT_CHECK) => continue,
            };
            let message = match message {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "event stream broke; reopening");
                    self.messages = None;
                    continue;
                }
                None => return None,
            };
            let Ok(info) = message.info() else {
                continue;
            };
            let id = info.stream_sequence;
            // After a reconnect the client recreates its consumer by itself, from the
            // start of the stream when nothing was delivered yet: never hand out again
            // what came before this subscriber's start.
            let before_start = match self.request.after {
                Some(after) => id <= after,
                None => info.published < self.subscribed_at,
            };
            if before_start {
                continue;
            }
            let Some(event) = decode(&message.payload) else {
                continue;
            };
            if !passes(self.request.media_id.as_deref(), &event) {
                continue;
            }
            // A reconnect resumes after the last event handed out.
            self.request.after = Some(id);
            return Some(StreamItem::Event(Arc::new(Sequenced { id, event })));
        }
    }
}

fn decode(payload: &[u8]) -> Option<StreamEvent> {
    match serde_json::from_slice::<WireEvent>(payload).ok()? {
        WireEvent::Detection(detection) => Some(StreamEvent::Detection(detection)),
        WireEvent::Availability {
            availability,
            reason,
            engine_type,
            precision,
            replica,
        } => Some(StreamEvent::Availability {
            health: Health {
                availability: Availability::from_name(&availability, reason.as_deref())?,
                engine_type: engine_type.as_deref().and_then(EngineKind::from_name),
                precision: precision.as_deref().and_then(ComputePrecision::from_name),
            },
            replica: Some(replica),
        }),
    }
}
