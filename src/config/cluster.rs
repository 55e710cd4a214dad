//! `[cluster]`: where the state the replicas share lives. `local` (the default): in
//! this process, as one replica on its own. `nats`: on NATS JetStream, so that many
//! replicas act as one service (ARCHITECTURE.md "Many replicas").

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClusterConfig {
    /// The event ring and the job registry in memory: one process.
    #[default]
    Local,
    /// NATS JetStream (also chosen by setting `NATS_URL`).
    Nats(NatsSettings),
}

/// `[cluster] kind = "nats"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSettings {
    /// `nats://host:4222`; several servers comma-separated.
    pub url: String,
    /// This replica's name; unset: the host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// Copies of each stream and bucket: 3 on a cluster of 3 servers.
    pub stream_replicas: usize,
    /// Prefix of the streams, buckets and subjects (several deployments, one broker).
    pub prefix: String,
    /// Deliveries of an annotation before it becomes a dead letter (the delays between
    /// them are `[outbox] first_delay_ms` doubling to `max_delay_ms`).
    pub max_deliveries: i64,
    /// A delivery a replica has not finished within this goes to another replica
    /// (the replica died mid-call).
    pub ack_wait_secs: u64,
    /// How often a replica renews the records of the jobs it runs; a job not renewed
    /// for three of these was on a replica that stopped, and its media can be posted
    /// again.
    pub heartbeat_secs: u64,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: "nats://nats:4222".into(),
            replica: None,
            stream_replicas: 1,
            prefix: "detections".into(),
            max_deliveries: 10,
            ack_wait_secs: 30,
            heartbeat_secs: 5,
        }
    }
}

impl NatsSettings {
    /// The replica's name: configured, else `$HOSTNAME`, else the machine's host name.
    pub fn replica_name(&self) -> String {
        self.replica
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| format!("replica-{}", std::process::id()))
    }
}
