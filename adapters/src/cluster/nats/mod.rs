//! NATS JetStream: the events stream ([`NatsEvents`]), the jobs bucket
//! ([`NatsJobRegistry`]) and the annotations stream with its shared delivery and
//! dead letters ([`BrokerDelivery`]) that make N replicas act as one service.
//!
//! The connection retries forever in the background, so a replica starts (and
//! answers `/health`) while the broker is down; [`Broker::is_connected`] is what
//! `/ready` reports. Streams and buckets are created on first use, idempotently, by
//! whichever replica gets there first.

mod annotations;
mod events;
mod jobs;

use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::OnceCell;

pub use annotations::{
    BrokerDelivery, DeadLetter, DeliveryPolicy, IntoStream, dead_letters, replay,
};
pub use events::NatsEvents;
pub use jobs::NatsJobRegistry;

/// Where the broker is and how the shared state is kept.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `nats://host:port`, comma-separated for several servers.
    pub url: String,
    /// This replica's name (in logs, `/health`, the job records).
    pub replica: String,
    /// Copies of each stream and bucket (3 on a 3-server cluster; 1 on one server).
    pub replicas: usize,
    /// Events kept for `Last-Event-ID` (the stream's cap, oldest dropped first).
    pub events_kept: i64,
    /// Prefix of every stream, bucket and subject, so several deployments can share a
    /// broker.
    pub prefix: String,
    /// How often a replica renews the records of the jobs it runs; a record not
    /// renewed for three of these belongs to a replica that stopped.
    pub heartbeat: Duration,
}

/// The connection and the JetStream context, shared by every NATS adapter.
pub struct Broker {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    config: BrokerConfig,
    events_stream: OnceCell<jetstream::stream::Stream>,
    jobs_bucket: OnceCell<jetstream::kv::Store>,
}

/// The broker could not do what was asked (down, or refusing).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the broker: {0}")]
pub struct BrokerError(pub String);

impl BrokerError {
    fn of(error: impl std::fmt::Display) -> Self {
        Self(error.to_string())
    }
}

impl Broker {
    /// Connects in the background (never fails for a broker that is down).
    pub async fn connect(config: BrokerConfig) -> Result<std::sync::Arc<Broker>, BrokerError> {
        let servers = config
            .url
            .split(',')
            .map(str::trim)
            .filter(|server| !server.is_empty())
            .map(|server| {
                server
                    .parse::<async_nats::ServerAddr>()
                    .map_err(|e| BrokerError(format!("server {server:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let client = async_nats::ConnectOptions::new()
            .name(format!("detections {}", config.replica))
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(2))
            .connect(servers)
            .await
            .map_err(BrokerError::of)?;
        let jetstream = jetstream::new(client.clone());
        Ok(std::sync::Arc::new(Broker {
            client,
            jetstream,
            config,
            events_stream: OnceCell::new(),
            jobs_bucket: OnceCell::new(),
        }))
    }

    pub fn replica(&self) -> &str {
        &self.config.replica
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

impl ports::Membership for Broker {
    fn status(&self) -> ports::ClusterStatus {
        ports::ClusterStatus {
            replica: self.config.replica.clone(),
            broker_reachable: self.is_connected(),
        }
    }
}

impl Broker {
    fn subject(&self, rest: &str) -> String {
        format!("{}.{rest}", self.config.prefix)
    }

    fn name(&self, what: &str) -> String {
        format!("{}_{what}", self.config.prefix.to_ascii_uppercase())
    }

    async fn events_stream(&self) -> Result<&jetstream::stream::Stream, BrokerError> {
        self.events_stream
            .get_or_try_init(|| async {
                self.jetstream
                    .get_or_create_stream(jetstream::stream::Config {
                        name: self.name("EVENTS"),
                        subjects: vec![self.subject("events.>")],
                        max_messages: self.config.events_kept,
                        discard: jetstream::stream::DiscardPolicy::Old,
                        num_replicas: self.config.replicas,
                        ..Default::default()
                    })
                    .await
                    .map_err(BrokerError::of)
            })
            .await
    }

    /// The jobs bucket. Its stream is created here with the key-value layout (what
    /// `create_key_value` would make): async-nats 0.51 cannot read NATS 2.9's answer to
    /// its own request, and Debian ships 2.9.
    async fn jobs_bucket(&self) -> Result<&jetstream::kv::Store, BrokerError> {
        self.jobs_bucket
            .get_or_try_init(|| async {
                let bucket = self.name("JOBS");
                self.jetstream
                    .get_or_create_stream(jetstream::stream::Config {
                        name: format!("KV_{bucket}"),
                        subjects: vec![format!("$KV.{bucket}.>")],
                        max_messages_per_subject: 1,
                        // A record not written for a day is a finished job's: forgotten.
                        max_age: std::time::Duration::from_secs(24 * 60 * 60),
                        allow_rollup: true,
                        deny_delete: true,
                        discard: jetstream::stream::DiscardPolicy::New,
                        num_replicas: self.config.replicas,
                        ..Default::default()
                    })
                    .await
                    .map_err(BrokerError::of)?;
                self.jetstream
                    .get_key_value(&bucket)
                    .await
                    .map_err(BrokerError::of)
            })
            .await
    }
}
