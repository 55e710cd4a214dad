//! A job as the bucket holds it: its state, the replica that runs it, when that
//! replica last renewed it, and the request to run it again if that replica stops.

use std::time::Duration;

use domain::auth::{BearerToken, Credentials};
use domain::job::{JobState, Percent, RunId};
use domain::media::MediaId;
use domain::settings::SettingsPatch;
use ports::{JobOrder, MediaJobRequest};
use serde::{Deserialize, Serialize};

/// Heartbeats an unfinished record may miss before its replica counts as stopped.
pub const STALE_AFTER: u32 = 3;
/// Replicas that may take a job over before it fails: a job that makes every replica
/// running it stop (a media that crashes the decoder, say) must not go round forever.
pub const MAX_TAKEOVERS: u32 = 3;

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub status: String,
    pub percent: u8,
    pub error: Option<String>,
    /// The replica that claimed (or took over) the job.
    pub replica: String,
    /// When that replica last wrote the record (Unix milliseconds).
    #[serde(default)]
    pub renewed_ms: u64,
    /// The request, to run the job again elsewhere (`None`: an upload, not re-runnable).
    #[serde(default)]
    pub rerun: Option<StoredRequest>,
    /// How many times another replica took the job over.
    #[serde(default)]
    pub takeovers: u32,
}

impl Record {
    /// A new record of `state`, claimed by `replica`.
    pub fn claimed(state: &JobState, replica: &str, rerun: Option<StoredRequest>) -> Record {
        let mut record = Record {
            status: String::new(),
            percent: 0,
            error: None,
            replica: replica.to_string(),
            renewed_ms: 0,
            rerun,
            takeovers: 0,
        };
        record.set(state);
        record
    }

    /// This record moved to `state` (and renewed now); the rest is kept.
    pub fn with_state(&self, state: &JobState) -> Record {
        let mut next = self.clone();
        next.set(state);
        next
    }

    fn set(&mut self, state: &JobState) {
        self.status = state.name().to_string();
        self.percent = state.percent().map_or(0, Percent::value);
        self.error = match state {
            JobState::Failed { reason } => Some(reason.clone()),
            _ => None,
        };
        self.renewed_ms = now_ms();
    }

    /// Unfinished, and not renewed for [`STALE_AFTER`] heartbeats: its replica stopped.
    pub fn abandoned(&self, heartbeat: Duration) -> bool {
        let limit = heartbeat.saturating_mul(STALE_AFTER).as_millis() as u64;
        !self.state().is_terminal() && now_ms().saturating_sub(self.renewed_ms) > limit
    }

    /// Abandoned, and another replica may still run it.
    pub fn orphaned(&self, heartbeat: Duration) -> bool {
        self.abandoned(heartbeat) && self.rerun.is_some() && self.takeovers < MAX_TAKEOVERS
    }

    /// The state a client is shown: an abandoned job that nobody will take over failed;
    /// an orphan keeps its state until a replica takes it over (within a heartbeat).
    pub fn shown(&self, heartbeat: Duration) -> JobState {
        if self.abandoned(heartbeat) && !self.orphaned(heartbeat) {
            JobState::Failed {
                reason: self.stopped_reason(),
            }
        } else {
            self.state()
        }
    }

    pub fn stopped_reason(&self) -> String {
        if self.takeovers == 0 {
            format!("the replica running it ({}) stopped", self.replica)
        } else {
            format!(
                "the replica running it ({}) stopped, after {} takeover(s)",
                self.replica, self.takeovers
            )
        }
    }

    pub fn state(&self) -> JobState {
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

/// A `POST /detect/{media_id}` request as the bucket keeps it. The user's bearer token
/// is in it: the replica that takes the job over acts on the user's behalf, as the
/// one that accepted it did (the broker is as private as the service's own memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRequest {
    /// The run's id ([`RunId::to_hex`]): a takeover keys its annotations as the
    /// first run did.
    pub run: String,
    pub media_id: String,
    pub authorization: String,
    pub refresh_token: Option<String>,
    pub settings: serde_json::Value,
}

impl StoredRequest {
    pub fn of(order: &JobOrder) -> StoredRequest {
        let request = &order.request;
        StoredRequest {
            run: order.run.to_hex(),
            media_id: request.media_id.as_str().to_string(),
            authorization: request.credentials.token.header().to_string(),
            refresh_token: request.credentials.refresh_token.clone(),
            settings: request.settings.to_json(),
        }
    }

    /// The order again; `None` when a stored field no longer parses (never written so).
    pub fn order(&self) -> Option<JobOrder> {
        let request = MediaJobRequest {
            media_id: MediaId::parse(&self.media_id).ok()?,
            credentials: Credentials {
                token: BearerToken::parse(&self.authorization).ok()?,
                refresh_token: self.refresh_token.clone(),
            },
            settings: SettingsPatch::from_json(&self.settings).ok()?,
        };
        Some(JobOrder {
            request,
            run: RunId::parse(&self.run)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> JobOrder {
        let request = MediaJobRequest {
            media_id: MediaId::parse("m-1").unwrap(),
            credentials: Credentials {
                token: BearerToken::parse("Bearer abc.def.ghi").unwrap(),
                refresh_token: Some("r".into()),
            },
            settings: SettingsPatch::from_json(&serde_json::json!({"probability_threshold": 0.4}))
                .unwrap(),
        };
        JobOrder {
            request,
            run: RunId::from_u128(42),
        }
    }

    #[test]
    fn a_stored_request_reads_back_to_the_request() {
        let stored = StoredRequest::of(&order());
        let json = serde_json::to_vec(&stored).unwrap();
        let back: StoredRequest = serde_json::from_slice(&json).unwrap();
        let again = back.order().unwrap();
        assert_eq!(again.run, RunId::from_u128(42));
        let (again, first) = (again.request, order().request);
        assert_eq!(again.media_id, first.media_id);
        assert_eq!(again.credentials, first.credentials);
        assert_eq!(again.settings, first.settings);
    }

    #[test]
    fn an_abandoned_job_is_an_orphan_until_its_takeovers_run_out() {
        let beat = Duration::from_millis(10);
        let mut record = Record::claimed(
            &JobState::Running {
                percent: Percent::new(40).unwrap(),
            },
            "a",
            Some(StoredRequest::of(&order())),
        );
        assert!(!record.orphaned(beat), "fresh: its replica is alive");
        record.renewed_ms -= 1000;
        assert!(record.orphaned(beat));
        assert_eq!(
            record.shown(beat).name(),
            "running",
            "shown as it was until taken over"
        );
        record.takeovers = MAX_TAKEOVERS;
        assert!(!record.orphaned(beat));
        assert_eq!(
            record.shown(beat),
            JobState::Failed {
                reason: format!(
                    "the replica running it (a) stopped, after {MAX_TAKEOVERS} takeover(s)"
                )
            }
        );
        record.rerun = None;
        record.takeovers = 0;
        assert!(!record.orphaned(beat), "an upload cannot run elsewhere");
        assert_eq!(record.shown(beat).name(), "failed");
    }
}
