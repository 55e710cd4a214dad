//! The job registry in a JetStream key-value bucket: one record per media, claimed with
//! compare-and-set, so `POST /detect/{media_id}` is 409 on every replica while a job for
//! the media is unfinished anywhere, and `GET /detect/{media_id}` answers everywhere.
//! A cancel is a message on `<prefix>.jobs.cancel.<id>`: whichever replica runs the
//! job stops it. A replica renews the records of the jobs it runs every heartbeat; an
//! unfinished record not renewed for [`STALE_AFTER`] heartbeats was left by a replica
//! that stopped: another replica takes it over and runs it again from the start (the
//! record keeps the request), up to [`MAX_TAKEOVERS`] times; a job that cannot be run
//! elsewhere (an upload) shows as failed, naming that replica, and its media can be
//! posted again on any replica.

mod record;
mod takeover;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::kv;
use async_trait::async_trait;
use domain::job::JobState;
use domain::media::MediaId;
use futures_util::StreamExt;
use ports::{JobClaimError, JobOrder, JobRegistry, JobStep, JobView};
use tokio_util::sync::CancellationToken;

#[cfg(doc)]
use self::record::{MAX_TAKEOVERS, STALE_AFTER};
use self::record::{Record, StoredRequest};
use super::{Broker, BrokerError};
use crate::jobs::{next_state, view};

/// Tries of a compare-and-set before giving up on a contended record.
const CAS_TRIES: usize = 16;

pub struct NatsJobRegistry {
    broker: Arc<Broker>,
    /// The stop tokens of the jobs this replica runs.
    local: Arc<Mutex<HashMap<MediaId, CancellationToken>>>,
}

impl NatsJobRegistry {
    /// Starts listening for cancels of the jobs this replica runs.
    pub fn start(broker: Arc<Broker>) -> NatsJobRegistry {
        let local: Arc<Mutex<HashMap<MediaId, CancellationToken>>> = Arc::default();
        let listener = Arc::clone(&local);
        let client = broker.client.clone();
        let subject = broker.subject("jobs.cancel.*");
        tokio::spawn(async move {
            let Ok(mut cancels) = client.subscribe(subject).await else {
                tracing::error!("cannot listen for job cancels");
                return;
            };
            while let Some(message) = cancels.next().await {
                let id = message.subject.rsplit('.').next().unwrap_or_default();
                if let Ok(id) = MediaId::parse(id)
                    && let Some(stop) = lock(&listener).get(&id)
                {
                    stop.cancel();
                }
            }
        });
        let renewer = NatsJobRegistry {
            broker: Arc::clone(&broker),
            local: Arc::clone(&local),
        };
        tokio::spawn(async move { renewer.renew_forever().await });
        NatsJobRegistry { broker, local }
    }

    /// Rewrites the records of the jobs this replica runs every heartbeat.
    async fn renew_forever(self) {
        let heartbeat = self.broker.config.heartbeat;
        loop {
            tokio::time::sleep(heartbeat).await;
            let running: Vec<MediaId> = lock(&self.local).keys().cloned().collect();
            for media in running {
                let renewed = self
                    .change_own(&media, |state| {
                        (!state.is_terminal()).then(|| state.clone())
                    })
                    .await;
                if let Err(e) = renewed {
                    tracing::warn!(%media, error = %e, "job record not renewed");
                }
            }
        }
    }

    /// Applies `change` to a job this replica runs; when the record says another
    /// replica took it over (this one was cut off for longer than the heartbeats
    /// allow), nothing is written and this replica's run is stopped: one run writes.
    async fn change_own(
        &self,
        media: &MediaId,
        change: impl Fn(&JobState) -> Option<JobState>,
    ) -> Result<Option<JobState>, BrokerError> {
        let me = self.broker.replica().to_string();
        let after = self
            .change(media, |record| {
                (record.replica == me)
                    .then(|| change(&record.state()))
                    .flatten()
            })
            .await?;
        if let Some(record) = &after
            && record.replica != me
            && let Some(stop) = lock(&self.local).remove(media)
        {
            tracing::warn!(%media, by = %record.replica, "job taken over by another replica; stopping this run");
            stop.cancel();
        }
        Ok(after.map(|record| record.state()))
    }

    async fn bucket(&self) -> Result<&kv::Store, BrokerError> {
        self.broker.jobs_bucket().await
    }

    /// The record and its revision, if there is one.
    async fn read(&self, media: &MediaId) -> Result<Option<(Record, u64)>, BrokerError> {
        let entry = self
            .bucket()
            .await?
            .entry(media.as_str())
            .await
            .map_err(BrokerError::of)?;
        Ok(entry.and_then(|entry| {
            if entry.operation != kv::Operation::Put {
                return None;
            }
            let record = serde_json::from_slice::<Record>(&entry.value).ok()?;
            Some((record, entry.revision))
        }))
    }

    /// Writes `record` if the stored one is still at `revision` (`None`: absent).
    async fn write(
        &self,
        media: &MediaId,
        record: &Record,
        revision: Option<u64>,
    ) -> Result<bool, BrokerError> {
        let value = serde_json::to_vec(record).map_err(BrokerError::of)?.into();
        let bucket = self.bucket().await?;
        // `Ok(false)`: someone else wrote first; read again.
        match revision {
            None => match bucket.create(media.as_str(), value).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(BrokerError::of(e)),
            },
            Some(revision) => match bucket.update(media.as_str(), value, revision).await {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
                Err(e) => Err(BrokerError::of(e)),
            },
        }
    }

    /// Applies `change` to the record with compare-and-set, retrying on contention;
    /// the record after (as it was when `change` made none), `None` when there is no
    /// such job.
    async fn change(
        &self,
        media: &MediaId,
        change: impl Fn(&Record) -> Option<JobState>,
    ) -> Result<Option<Record>, BrokerError> {
        for _ in 0..CAS_TRIES {
            let Some((record, revision)) = self.read(media).await? else {
                return Ok(None);
            };
            let Some(next) = change(&record) else {
                return Ok(Some(record));
            };
            let next = record.with_state(&next);
            if self.write(media, &next, Some(revision)).await? {
                return Ok(Some(next));
            }
        }
        Err(BrokerError(format!("job {media}: too much contention")))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl JobRegistry for NatsJobRegistry {
    async fn claim(
        &self,
        media: &MediaId,
        rerun: Option<JobOrder>,
        stop: CancellationToken,
    ) -> Result<(), JobClaimError> {
        let unavailable = |e: BrokerError| JobClaimError::Unavailable(e.0);
        let queued = Record::claimed(
            &JobState::Queued,
            self.broker.replica(),
            rerun.as_ref().map(StoredRequest::of),
        );
        for _ in 0..CAS_TRIES {
            let current = self.read(media).await.map_err(unavailable)?;
            let heartbeat = self.broker.config.heartbeat;
            let revision = match &current {
                Some((record, _))
                    if !record.state().is_terminal() && !record.abandoned(heartbeat) =>
                {
                    return Err(JobClaimError::AlreadyRunning(media.clone()));
                }
                Some((record, revision)) if record.abandoned(heartbeat) => {
                    tracing::warn!(%media, replica = %record.replica, "job left by a stopped replica; claiming the media anew");
                    Some(*revision)
                }
                Some((_, revision)) => Some(*revision),
                None => None,
            };
            if self
                .write(media, &queued, revision)
                .await
                .map_err(unavailable)?
            {
                lock(&self.local).insert(media.clone(), stop);
                return Ok(());
            }
        }
        Err(JobClaimError::AlreadyRunning(media.clone()))
    }

    async fn advance(&self, media: &MediaId, step: JobStep) {
        let changed = self
            .change_own(media, |state| match next_state(state, &step) {
                Ok(next) => Some(next),
                Err(e) => {
                    tracing::debug!(%media, error = %e, "job step skipped");
                    None
                }
            })
            .await;
        match changed {
            Ok(Some(state)) if state.is_terminal() => {
                lock(&self.local).remove(media);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%media, error = %e, "job state not recorded"),
        }
    }

    async fn cancel(&self, media: &MediaId) -> Option<JobView> {
        let record = self
            .change(media, |record| record.state().cancel().ok())
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(%media, error = %e, "job not cancelled on the broker");
                None
            })?;
        let changed = record.state();
        if changed == JobState::Cancelled {
            // Whichever replica runs it (this one included) stops it.
            if let Some(stop) = lock(&self.local).remove(media) {
                stop.cancel();
            }
            let subject = self.broker.subject(&format!("jobs.cancel.{media}"));
            if let Err(e) = self.broker.client.publish(subject, "".into()).await {
                tracing::warn!(%media, error = %e, "job cancel not sent");
            }
        }
        Some(JobView {
            replica: Some(record.replica),
            ..view(media, &changed)
        })
    }

    async fn view(&self, media: &MediaId) -> Option<JobView> {
        match self.read(media).await {
            Ok(found) => found.map(|(record, _)| JobView {
                replica: Some(record.replica.clone()),
                ..view(media, &record.shown(self.broker.config.heartbeat))
            }),
            Err(e) => {
                tracing::warn!(%media, error = %e, "job state unavailable");
                None
            }
        }
    }

    async fn next_orphan(&self, stop: CancellationToken) -> Option<JobOrder> {
        loop {
            tokio::time::sleep(self.broker.config.heartbeat).await;
            match self.take_over_one(&stop).await {
                Ok(Some(request)) => return Some(request),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "no look for orphaned jobs this heartbeat"),
            }
        }
    }
}
