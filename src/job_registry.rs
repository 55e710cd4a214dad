//! Background detection jobs by media: one running job per media (spec A3's 409), their
//! state for `GET /detect/{media_id}`, and cancellation at a frame boundary.

use std::collections::HashMap;
use std::sync::Mutex;

use domain::job::{JobState, Percent};
use domain::media::MediaId;
use ports::JobView;
use tokio_util::sync::CancellationToken;

/// Finished jobs kept for `GET /detect/{media_id}`; the oldest are forgotten first.
const KEEP_FINISHED: usize = 1000;

struct Entry {
    state: JobState,
    cancel: CancellationToken,
    /// Order of registration, to forget the oldest finished jobs.
    serial: u64,
}

#[derive(Default)]
pub struct JobRegistry {
    jobs: Mutex<HashMap<MediaId, Entry>>,
    serial: std::sync::atomic::AtomicU64,
}

/// A job is already queued or running for the media.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a detection of media {0} is already running")]
pub struct AlreadyRunning(pub MediaId);

impl JobRegistry {
    /// Registers a queued job; refuses while one for the same media is unfinished.
    pub fn register(
        &self,
        id: &MediaId,
        parent: &CancellationToken,
    ) -> Result<CancellationToken, AlreadyRunning> {
        let mut jobs = self.lock();
        if jobs.get(id).is_some_and(|e| !e.state.is_terminal()) {
            return Err(AlreadyRunning(id.clone()));
        }
        let cancel = parent.child_token();
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        jobs.insert(
            id.clone(),
            Entry {
                state: JobState::Queued,
                cancel: cancel.clone(),
                serial,
            },
        );
        forget_oldest_finished(&mut jobs);
        Ok(cancel)
    }

    /// Applies a transition; an illegal one (say, progress after a cancel) is ignored
    /// and logged, the job keeps its state.
    pub fn update(
        &self,
        id: &MediaId,
        step: impl FnOnce(&JobState) -> Result<JobState, domain::job::JobTransitionError>,
    ) {
        let mut jobs = self.lock();
        if let Some(entry) = jobs.get_mut(id) {
            match step(&entry.state) {
                Ok(next) => entry.state = next,
                Err(e) => tracing::debug!(media = %id, error = %e, "job transition skipped"),
            }
        }
    }

    pub fn start(&self, id: &MediaId) {
        self.update(id, JobState::start);
    }

    pub fn progress(&self, id: &MediaId, percent: Percent) {
        self.update(id, |s| s.progress(percent));
    }

    pub fn finish(&self, id: &MediaId) {
        self.update(id, JobState::finish);
    }

    pub fn fail(&self, id: &MediaId, reason: &str) {
        self.update(id, |s| s.fail(reason));
    }

    /// Marks the job cancelled and tells it to stop; `None` when there is no such job,
    /// the view when it had already ended (cancelling then changes nothing).
    pub fn cancel(&self, id: &MediaId) -> Option<JobView> {
        let mut jobs = self.lock();
        let entry = jobs.get_mut(id)?;
        if let Ok(next) = entry.state.cancel() {
            entry.state = next;
            entry.cancel.cancel();
        }
        Some(view(id, &entry.state))
    }

    pub fn view(&self, id: &MediaId) -> Option<JobView> {
        self.lock().get(id).map(|e| view(id, &e.state))
    }

    /// Unfinished jobs (shutdown waits for them).
    pub fn unfinished(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| !e.state.is_terminal())
            .count()
    }

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

fn view(id: &MediaId, state: &JobState) -> JobView {
    JobView {
        media_id: id.clone(),
        status: state.status(),
        percent: state.percent().map_or(0, Percent::value),
        error: match state {
            JobState::Failed { reason } => Some(reason.clone()),
            JobState::Cancelled => Some("cancelled".into()),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::job::JobStatus;

    fn id(s: &str) -> MediaId {
        MediaId::parse(s).unwrap()
    }

    #[test]
    fn one_unfinished_job_per_media() {
        let jobs = JobRegistry::default();
        let root = CancellationToken::new();
        jobs.register(&id("a"), &root).unwrap();
        assert_eq!(jobs.register(&id("a"), &root), Err(AlreadyRunning(id("a"))));
        jobs.register(&id("b"), &root).unwrap();
        jobs.start(&id("a"));
        jobs.finish(&id("a"));
        assert!(
            jobs.register(&id("a"), &root).is_ok(),
            "a finished job can run again"
        );
    }

    #[test]
    fn views_follow_the_lifecycle() {
        let jobs = JobRegistry::default();
        let root = CancellationToken::new();
        jobs.register(&id("a"), &root).unwrap();
        assert_eq!(jobs.view(&id("a")).unwrap().status, JobStatus::Queued);
        jobs.start(&id("a"));
        jobs.progress(&id("a"), Percent::new(40).unwrap());
        let running = jobs.view(&id("a")).unwrap();
        assert_eq!((running.status, running.percent), (JobStatus::Running, 40));
        jobs.fail(&id("a"), "boom");
        let failed = jobs.view(&id("a")).unwrap();
        assert_eq!(
            (failed.status, failed.error.as_deref()),
            (JobStatus::Failed, Some("boom"))
        );
        assert!(jobs.view(&id("zzz")).is_none());
    }

    #[test]
    fn cancel_signals_the_job_and_later_steps_are_ignored() {
        let jobs = JobRegistry::default();
        let root = CancellationToken::new();
        let token = jobs.register(&id("a"), &root).unwrap();
        jobs.start(&id("a"));
        let view = jobs.cancel(&id("a")).unwrap();
        assert_eq!(view.status, JobStatus::Cancelled);
        assert!(token.is_cancelled());
        jobs.finish(&id("a"));
        assert_eq!(jobs.view(&id("a")).unwrap().status, JobStatus::Cancelled);
        assert_eq!(jobs.unfinished(), 0);
        assert!(jobs.cancel(&id("nope")).is_none());
    }

    #[test]
    fn shutting_down_the_parent_cancels_every_job() {
        let jobs = JobRegistry::default();
        let root = CancellationToken::new();
        let a = jobs.register(&id("a"), &root).unwrap();
        root.cancel();
        assert!(a.is_cancelled());
    }
}
