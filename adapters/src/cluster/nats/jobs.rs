//! The job registry in a JetStream key-value bucket: one record per media, claimed with
//! compare-and-set, so `POST /detect/{media_id}` is 409 on every replica while a job for
//! the media is unfinished anywhere, and `GET /detect/{media_id}` answers everywhere.
//! A cancel is a message on `<prefix>.jobs.cancel.<id>`: whichever replica runs the
//! job stops it. A replica renews the records of the jobs it runs every heartbeat; an
//! unfinished record not renewed for [`STALE_AFTER`] heartbeats was left by a replica
//! that stopped: it shows as failed, naming that replica, and the media can be posted
//! again on any replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_nats::jetstream::kv;
use async_trait::async_trait;
use domain::job::{JobState, Percent};
use domain::media::MediaId;
use futures_util::StreamExt;
use ports::{JobClaimError, JobRegistry, JobStep, JobView};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{Broker, BrokerError};
use crate::jobs::{next_state, view};

/// Tries of a compare-and-set before giving up on a contended record.
const CAS_TRIES: usize = 16;
/// Heartbeats an unfinished record may miss before its replica counts as stopped.
const STALE_AFTER: u32 = 3;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A job as the bucket holds it.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    status: String,
    percent: u8,
    error: Option<String>,
    /// The replica that claimed the job.
    replica: String,
    /// When that replica last wrote the record (Unix milliseconds).
    #[serde(default)]
    renewed_ms: u64,
}

impl Record {
    fn of(state: &JobState, replica: &str) -> Record {
        Record {
            status: state.name().to_string(),
            percent: state.percent().map_or(0, Percent::value),
            error: match state {
                JobState::Failed { reason } => Some(reason.clone()),
                _ => None,
            },
            replica: replica.to_string(),
            renewed_ms: now_ms(),
        }
    }

    /// Unfinished, and not renewed for [`STALE_AFTER`] heartbeats: its replica stopped.
    fn abandoned(&self, heartbeat: std::time::Duration) -> bool {
        let limit = heartbeat.saturating_mul(STALE_AFTER).as_millis() as u64;
        !self.state().is_terminal() && now_ms().saturating_sub(self.renewed_ms) > limit
    }

    /// The state a client is shown: an abandoned job failed.
    fn shown(&self, heartbeat: std::time::Duration) -> JobState {
        if self.abandoned(heartbeat) {
            JobState::Failed {
                reason: format!("the replica running it ({}) stopped", self.replica),
            }
        } else {
            self.state()
        }
    }

    fn state(&self) -> JobState {
        match self.status.as_str() {
            "queued" => JobState::Queued,
            "running" => JobState::Running {
                percent: Percent::new(self.percent).unwrap_or(Percent::ZERO),
            },
            "processed" => JobState::Processed,
            "cancelled" => JobState::Cancelled,
            _ => JobState::Failed {
                reason: self.error.clone().unwrap_or_default(),
            },
        }
    }
}

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
                    .change(&media, |state| {
                        (!state.is_terminal()).then(|| state.clone())
                    })
                    .await;
                if let Err(e) = renewed {
                    tracing::warn!(%media, error = %e, "job record not renewed");
                }
            }
        }
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
    /// the state after, or `None` when there is no such job.
    async fn change(
        &self,
        media: &MediaId,
        change: impl Fn(&JobState) -> Option<JobState>,
    ) -> Result<Option<JobState>, BrokerError> {
        for _ in 0..CAS_TRIES {
            let Some((record, revision)) = self.read(media).await? else {
                return Ok(None);
            };
            let state = record.state();
            let Some(next) = change(&state) else {
                return Ok(Some(state));
            };
            let replica = record.replica.clone();
            if self
                .write(media, &Record::of(&next, &replica), Some(revision))
                .await?
            {
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
    async fn claim(&self, media: &MediaId, stop: CancellationToken) -> Result<(), JobClaimError> {
        let unavailable = |e: BrokerError| JobClaimError::Unavailable(e.0);
        let queued = Record::of(&JobState::Queued, self.broker.replica());
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
                    tracing::warn!(%media, replica = %record.replica, "job left by a stopped replica; claiming the media again");
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
            .change(media, |state| match next_state(state, &step) {
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
        let changed = self
            .change(media, |state| state.cancel().ok())
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(%media, error = %e, "job not cancelled on the broker");
                None
            })?;
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
        Some(view(media, &changed))
    }

    async fn view(&self, media: &MediaId) -> Option<JobView> {
        match self.read(media).await {
            Ok(found) => {
                found.map(|(record, _)| view(media, &record.shown(self.broker.config.heartbeat)))
            }
            Err(e) => {
                tracing::warn!(%media, error = %e, "job state unavailable");
                None
            }
        }
    }
}
