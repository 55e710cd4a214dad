//! The in-process job registry: one replica's jobs, in memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use domain::job::{JobState, Percent};
use domain::media::MediaId;
use ports::{JobClaimError, JobOrder, JobRegistry, JobStep, JobView};
use tokio_util::sync::CancellationToken;

/// Finished jobs kept for `GET /detect/{media_id}`; the oldest are forgotten first.
const KEEP_FINISHED: usize = 1000;

struct Entry {
    state: JobState,
    stop: CancellationToken,
    /// Order of claiming, to forget the oldest finished jobs.
    serial: u64,
}

#[derive(Default)]
pub struct InMemoryJobRegistry {
    jobs: Mutex<HashMap<MediaId, Entry>>,
    serial: AtomicU64,
}

#[async_trait]
impl JobRegistry for InMemoryJobRegistry {
    /// One process keeps no request: nobody else could run it.
    async fn claim(
        &self,
        media: &MediaId,
        _rerun: Option<JobOrder>,
        stop: CancellationToken,
    ) -> Result<(), JobClaimError> {
        let mut jobs = self.lock();
        if jobs.get(media).is_some_and(|e| !e.state.is_terminal()) {
            return Err(JobClaimError::AlreadyRunning(media.clone()));
        }
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        jobs.insert(
            media.clone(),
            Entry {
                state: JobState::Queued,
                stop,
                serial,
            },
        );
        forget_oldest_finished(&mut jobs);
        Ok(())
    }

    async fn advance(&self, media: &MediaId, step: JobStep) {
        let mut jobs = self.lock();
        let Some(entry) = jobs.get_mut(media) else {
            return;
        };
        match next_state(&entry.state, &step) {
            Ok(next) => entry.state = next,
            Err(e) => tracing::debug!(%media, error = %e, "job step skipped"),
        }
    }

    async fn cancel(&self, media: &MediaId) -> Option<JobView> {
        let mut jobs = self.lock();
        let entry = jobs.get_mut(media)?;
        if let Ok(next) = entry.state.cancel() {
            entry.state = next;
            entry.stop.cancel();
        }
        Some(view(media, &entry.state))
    }

    async fn view(&self, media: &MediaId) -> Option<JobView> {
        self.lock().get(media).map(|e| view(media, &e.state))
    }

    /// No other replica: no job is ever left to this one.
    async fn next_orphan(&self, _stop: CancellationToken) -> Option<JobOrder> {
        None
    }
}

impl InMemoryJobRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MediaId, Entry>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn forget_oldest_finished(jobs: &mut HashMap<MediaId, Entry>) {
    let finished = jobs.values().filter(|e| e.state.is_terminal()).count();
    if finished <= KEEP_FINISHED {
        return;
    }
    let mut ended: Vec<(u64, MediaId)> = jobs
        .iter()
        .filter(|(_, e)| e.state.is_terminal())
        .map(|(id, e)| (e.serial, id.clone()))
        .collect();
    ended.sort_unstable();
    for (_, id) in ended.into_iter().take(finished - KEEP_FINISHED) {
        jobs.remove(&id);
    }
}

/// `step` applied to `state` with the domain's transitions.
pub(crate) fn next_state(
    state: &JobState,
    step: &JobStep,
) -> Result<JobState, domain::job::JobTransitionError> {
    match step {
        JobStep::Start => state.start(),
        JobStep::Progress(percent) => state.progress(*percent),
        JobStep::Finish => state.finish(),
        JobStep::Fail(reason) => state.fail(reason),
        JobStep::Cancel => state.cancel(),
    }
}

pub(crate) fn view(id: &MediaId, state: &JobState) -> JobView {
    JobView {
        media_id: id.clone(),
        status: state.status(),
        percent: state.percent().map_or(0, Percent::value),
        error: match state {
            JobState::Failed { reason } => Some(reason.clone()),
            JobState::Cancelled => Some("cancelled".into()),
            _ => None,
        },
        replica: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::job::JobStatus;

    fn id(s: &str) -> MediaId {
        MediaId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn one_unfinished_job_per_media() {
        let jobs = InMemoryJobRegistry::default();
        jobs.claim(&id("a"), None, CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            jobs.claim(&id("a"), None, CancellationToken::new()).await,
            Err(JobClaimError::AlreadyRunning(id("a")))
        );
        jobs.claim(&id("b"), None, CancellationToken::new())
            .await
            .unwrap();
        jobs.advance(&id("a"), JobStep::Start).await;
        jobs.advance(&id("a"), JobStep::Finish).await;
        assert!(
            jobs.claim(&id("a"), None, CancellationToken::new())
                .await
                .is_ok(),
            "a finished job can run again"
        );
    }

    #[tokio::test]
    async fn views_follow_the_lifecycle() {
        let jobs = InMemoryJobRegistry::default();
        jobs.claim(&id("a"), None, CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(jobs.view(&id("a")).await.unwrap().status, JobStatus::Queued);
        jobs.advance(&id("a"), JobStep::Start).await;
        jobs.advance(&id("a"), JobStep::Progress(Percent::new(40).unwrap()))
            .await;
        let running = jobs.view(&id("a")).await.unwrap();
        assert_eq!((running.status, running.percent), (JobStatus::Running, 40));
        jobs.advance(&id("a"), JobStep::Fail("boom".into())).await;
        let failed = jobs.view(&id("a")).await.unwrap();
        assert_eq!(
            (failed.status, failed.error.as_deref()),
            (JobStatus::Failed, Some("boom"))
        );
        assert!(jobs.view(&id("zzz")).await.is_none());
    }

    #[tokio::test]
    async fn cancel_signals_the_job_and_later_steps_are_ignored() {
        let jobs = InMemoryJobRegistry::default();
        let stop = CancellationToken::new();
        jobs.claim(&id("a"), None, stop.clone()).await.unwrap();
        jobs.advance(&id("a"), JobStep::Start).await;
        let view = jobs.cancel(&id("a")).await.unwrap();
        assert_eq!(view.status, JobStatus::Cancelled);
        assert!(stop.is_cancelled());
        jobs.advance(&id("a"), JobStep::Finish).await;
        assert_eq!(
            jobs.view(&id("a")).await.unwrap().status,
            JobStatus::Cancelled
        );
        assert!(jobs.cancel(&id("nope")).await.is_none());
    }

    #[tokio::test]
    async fn only_the_newest_finished_jobs_are_kept() {
        let jobs = InMemoryJobRegistry::default();
        for n in 0..=KEEP_FINISHED {
            let media = id(&format!("m{n}"));
            jobs.claim(&media, None, CancellationToken::new())
                .await
                .unwrap();
            jobs.advance(&media, JobStep::Start).await;
            jobs.advance(&media, JobStep::Finish).await;
        }
        jobs.claim(&id("last"), None, CancellationToken::new())
            .await
            .unwrap();
        assert!(
            jobs.view(&id("m0")).await.is_none(),
            "the oldest is forgotten"
        );
        assert!(jobs.view(&id("m1")).await.is_some());
        assert!(jobs.view(&id("last")).await.is_some());
    }
}
