//! `EventPublisher`, `JobRegistry` and `Membership` together: the state replicas share
//! moves as one, in this process (`local`) or on NATS JetStream (`nats`).

use std::sync::Arc;

use std::time::Duration;

use adapters::cluster::nats::{
    Broker, BrokerConfig, BrokerDelivery, DeliveryPolicy, IntoStream, NatsEvents, NatsJobRegistry,
};
use ports::{AnnotationSink, EventPublisher, JobRegistry, Membership};

use super::annotations::Annotations;
use super::{SetupError, events, jobs};
use crate::config::{ClusterConfig, Config, NatsSettings};

/// The adapters of the shared state.
pub struct SharedState {
    pub events: Arc<dyn EventPublisher>,
    pub jobs: Arc<dyn JobRegistry>,
    pub membership: Option<Arc<dyn Membership>>,
    /// Where accepted annotations go: the outbox, or the broker in front of it.
    pub sink: Arc<dyn AnnotationSink>,
}

pub async fn build(config: &Config, annotations: Annotations) -> Result<SharedState, SetupError> {
    match &config.cluster {
        ClusterConfig::Local => Ok(SharedState {
            events: events::build(&config.events),
            jobs: jobs::build(),
            membership: None,
            sink: annotations.journal_before(Arc::clone(&annotations.receiver))?,
        }),
        ClusterConfig::Nats(nats) => {
            // Any replica may run any media's job: each must write the shared folders.
            for dir in [&config.media.images_dir, &config.media.videos_dir] {
                writable(dir).map_err(|e| SetupError::Adapter {
                    port: "media",
                    reason: format!(
                        "{} is not writable ({e}); in a cluster every replica writes the shared \
                         media folders",
                        dir.display()
                    ),
                })?;
            }
            let broker = connect(config, nats).await?;
            tracing::info!(url = %nats.url, replica = broker.replica(), "shared state on NATS");
            // What the journal holds while the broker is unreachable goes into the
            // stream when it returns; the shared consumer delivers it from there.
            let journal =
                annotations.journal_before(Arc::new(IntoStream::new(Arc::clone(&broker))))?;
            let sink = BrokerDelivery::start(
                Arc::clone(&broker),
                annotations.receiver,
                journal,
                DeliveryPolicy {
                    max_deliveries: nats.max_deliveries.max(1),
                    first_delay: Duration::from_millis(config.outbox.first_delay_ms),
                    max_delay: Duration::from_millis(config.outbox.max_delay_ms),
                    ack_wait: Duration::from_secs(nats.ack_wait_secs.max(1)),
                },
            );
            Ok(SharedState {
                events: Arc::new(NatsEvents::start(Arc::clone(&broker))),
                jobs: Arc::new(NatsJobRegistry::start(Arc::clone(&broker))),
                membership: Some(broker),
                sink,
            })
        }
    }
}

/// Creates `dir` if needed and writes (and removes) a file in it.
fn writable(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// The connection to the broker of `nats` (in the background: never fails for a
/// broker that is down).
pub async fn connect(config: &Config, nats: &NatsSettings) -> Result<Arc<Broker>, SetupError> {
    Broker::connect(BrokerConfig {
        url: nats.url.clone(),
        replica: nats.replica_name(),
        replicas: nats.stream_replicas.max(1),
        events_kept: i64::try_from(config.events.replay_capacity.max(1)).unwrap_or(i64::MAX),
        prefix: nats.prefix.clone(),
        heartbeat: Duration::from_secs(nats.heartbeat_secs.max(1)),
    })
    .await
    .map_err(|e| SetupError::Adapter {
        port: "cluster",
        reason: e.to_string(),
    })
}
