//! Many replicas acting as one service: how this replica stands with the broker that
//! holds their shared state (the event stream, the job registry).

/// This replica in its cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The replica's name.
    pub replica: String,
    /// The broker answers: a replica that cannot publish leaves the load balancer's
    /// rotation (`/ready` is 503).
    pub broker_reachable: bool,
}

/// The connection to the broker, as the core asks about it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Membership: Send + Sync {
    fn status(&self) -> ClusterStatus;
}
