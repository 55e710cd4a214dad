//! Taking over the jobs of replicas that stopped: every heartbeat a replica that asks
//! for work reads the bucket for unfinished records nobody renewed for
//! [`STALE_AFTER`](super::record::STALE_AFTER) heartbeats, and claims one with
//! compare-and-set; of several replicas that find it, one wins.

use domain::job::JobState;
use domain::media::MediaId;
use futures_util::StreamExt;
use ports::JobOrder;
use tokio_util::sync::CancellationToken;

use super::record::{MAX_TAKEOVERS, Record};
use super::{BrokerError, NatsJobRegistry, lock};

impl NatsJobRegistry {
    /// Claims one orphaned job for this replica, if there is one; its stop token is
    /// registered before the claim is written, so no cancel can slip between.
    pub(super) async fn take_over_one(
        &self,
        stop: &CancellationToken,
    ) -> Result<Option<JobOrder>, BrokerError> {
        let heartbeat = self.broker.config.heartbeat;
        let mut keys = self.bucket().await?.keys().await.map_err(BrokerError::of)?;
        let mut candidates = Vec::new();
        while let Some(key) = keys.next().await {
            candidates.push(key.map_err(BrokerError::of)?);
        }
        for key in candidates {
            let Ok(media) = MediaId::parse(&key) else {
                continue;
            };
            let Some((record, revision)) = self.read(&media).await? else {
                continue;
            };
            if record.abandoned(heartbeat) && !record.orphaned(heartbeat) {
                self.give_up(&media, &record, revision).await?;
                continue;
            }
            if !record.orphaned(heartbeat) {
                continue;
            }
            let Some(order) = record.rerun.as_ref().and_then(|r| r.order()) else {
                continue;
            };
            let mut claimed = record.with_state(&JobState::Queued);
            claimed.replica = self.broker.replica().to_string();
            claimed.takeovers += 1;
            lock(&self.local).insert(media.clone(), stop.clone());
            if self.write(&media, &claimed, Some(revision)).await? {
                tracing::warn!(
                    %media,
                    from = %record.replica,
                    takeover = claimed.takeovers,
                    max = MAX_TAKEOVERS,
                    "took over a job whose replica stopped"
                );
                return Ok(Some(order));
            }
            // Another replica was first.
            lock(&self.local).remove(&media);
        }
        Ok(None)
    }

    /// Writes down that nobody will run an abandoned job: it failed (so later reads
    /// need not judge it again, and its media can be posted anew).
    async fn give_up(
        &self,
        media: &MediaId,
        record: &Record,
        revision: u64,
    ) -> Result<(), BrokerError> {
        let failed = record.with_state(&JobState::Failed {
            reason: record.stopped_reason(),
        });
        self.write(media, &failed, Some(revision)).await?;
        Ok(())
    }
}
