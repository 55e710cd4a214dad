//! Delivery that loses nothing (spec Part B): an [`Outbox`] in front of any annotation
//! sink.
//!
//! - [`deliver`](AnnotationSink::deliver) writes the annotation to the
//!   [journal](super::journal) on a blocking thread (file and folder synced) and returns
//!   once it is there: from then on a crash or power loss cannot lose it. It never waits
//!   on the sink.
//! - One worker sends the journal oldest first, each annotation with its own
//!   `Idempotency-Key` (the same for every attempt, also after a restart). A transient
//!   failure (connection, timeout, 5xx, 408, 429) is retried with exponential backoff up
//!   to `max_attempts`; when the tries run out the sink is taken to be down: the entry
//!   stays where it is (counted `spooled`) and the worker starts again from the oldest
//!   entry after `spool_retry_interval`. Order is kept: nothing overtakes an entry that
//!   is still failing.
//! - A delivered entry is deleted. One the sink refuses (other 4xx) is moved to
//!   `rejected/`, logged and counted failed, never retried; so is one that cannot be
//!   read (a torn write), so it never blocks the rest.
//! - A new outbox first sends what the journal holds (files of the older spool format
//!   too).
//! - [`close`](AnnotationSink::close) makes one last pass that ends when the journal is
//!   empty, the sink is down or the grace is over; what is left stays in the journal for
//!   the next start. Later `deliver` calls still journal.
//!
//! Delivery is at least once: an attempt cut short (grace, crash) may have reached the
//! sink and is sent again, with the same key. Only the entry being sent is in memory.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use ports::{Annotation, AnnotationError, AnnotationSink};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use super::journal::REJECTED_DIR;
use super::journal::{Entry, Journal, ReadError};

const JOURNALED_TOTAL: &str = "detections_annotations_journaled_total";
const SENT_TOTAL: &str = "detections_annotations_sent_total";
const FAILED_TOTAL: &str = "detections_annotations_failed_total";
const SPOOLED_TOTAL: &str = "detections_annotations_spooled_total";
const PENDING: &str = "detections_annotations_pending";

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// The journal's folder (created if missing); `rejected/` inside it.
    pub spool_dir: PathBuf,
    /// Tries per annotation, the first included, before the sink is taken to be down.
    pub max_attempts: u32,
    /// Wait before the second try; doubles each try up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// How long the worker waits after finding the sink down.
    pub spool_retry_interval: Duration,
}

impl OutboxConfig {
    /// The defaults: 5 tries, 200 ms doubling to 10 s, then a new round every 30 s.
    pub fn new(spool_dir: impl Into<PathBuf>) -> Self {
        Self {
            spool_dir: spool_dir.into(),
            max_attempts: 5,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            spool_retry_interval: Duration::from_secs(30),
        }
    }
}

/// Counts since this outbox started. `journaled`: annotations `deliver` wrote;
/// `spooled`: times an annotation's tries ran out and it was kept for a later round;
/// `failed`: refused, unreadable, or not writable to the journal; `pending`: entries in
/// the journal now (those found at start included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub journaled: u64,
    pub sent: u64,
    pub failed: u64,
    pub spooled: u64,
    pub pending: u64,
}

pub struct Outbox {
    shared: Arc<OutboxState>,
    /// The end of the shutdown grace, set by `close`.
    deadline: watch::Sender<Option<Instant>>,
    worker: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

/// What the worker and `deliver` share.
struct OutboxState {
    inner: Arc<dyn AnnotationSink>,
    config: OutboxConfig,
    journal: Arc<Journal>,
    /// Rings when an entry is journaled.
    wake: Notify,
    journaled: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    spooled: AtomicU64,
    pending: AtomicU64,
}

/// Why a pass over the journal ended.
enum RoundEnd {
    Drained,
    /// The sink (or the disk) failed: wait before the next round.
    Down,
    GraceOver,
}

impl Outbox {
    /// Opens the journal and starts the worker, which first sends what the journal
    /// holds. Must be called inside a Tokio runtime. Fails if the folder cannot be
    /// created or written.
    pub fn start(inner: Arc<dyn AnnotationSink>, config: OutboxConfig) -> io::Result<Arc<Outbox>> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let journal = Journal::open(&config.spool_dir)?;
        let waiting = journal.list()?.len() as u64;
        if waiting > 0 {
            tracing::info!(entries = waiting, journal = %journal.dir().display(), "annotations left in the journal will be sent");
        }
        let (deadline, deadline_rx) = watch::channel(None);
        let shared = Arc::new(OutboxState {
            inner,
            config,
            journal: Arc::new(journal),
            wake: Notify::new(),
            journaled: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        });
        shared.add_pending(waiting as i64);
        let worker = runtime.spawn(Arc::clone(&shared).run(deadline_rx));
        Ok(Arc::new(Outbox {
            shared,
            deadline,
            worker: tokio::sync::Mutex::new(Some(worker)),
        }))
    }

    pub fn stats(&self) -> OutboxStats {
        let s = &self.shared;
        OutboxStats {
            journaled: s.journaled.load(Ordering::Relaxed),
            sent: s.sent.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            spooled: s.spooled.load(Ordering::Relaxed),
            pending: s.pending.load(Ordering::Relaxed),
        }
    }

    pub fn spool_dir(&self) -> &Path {
        &self.shared.config.spool_dir
    }

    /// Describes the outbox's metrics to the installed recorder (call once, after
    /// installing it).
    pub fn describe_metrics() {
        metrics::describe_counter!(JOURNALED_TOTAL, "Annotations written to the journal");
        metrics::describe_counter!(SENT_TOTAL, "Annotations delivered to the sink");
        metrics::describe_counter!(
            FAILED_TOTAL,
            "Annotations given up on: refused by the sink, unreadable, or not journaled"
        );
        metrics::describe_counter!(
            SPOOLED_TOTAL,
            "Times an annotation's tries ran out and it waited in the journal for a later round"
        );
        metrics::describe_gauge!(PENDING, "Annotations in the journal awaiting delivery");
    }
}

#[async_trait]
impl AnnotationSink for Outbox {
    /// Returns once the annotation is in the journal (synced), never waiting on the
    /// sink; the write runs on a blocking thread. Errs only when it could not be
    /// journaled (counted failed).
    async fn deliver(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
    ) -> Result<(), AnnotationError> {
        let journal = Arc::clone(&self.shared.journal);
        let annotation = annotation.clone();
        let media_id = annotation.media_id.clone();
        // Counted before the write: the worker may send it before this task resumes.
        self.shared.add_pending(1);
        let written = blocking(move || {
            journal.append(&Entry {
                key: Journal::key_for(&annotation)?,
                annotation,
                authorization,
            })
        })
        .await
        .and_then(|written| written);
        match written {
            Ok(_) => {
                self.shared.journaled.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(JOURNALED_TOTAL).increment(1);
                self.shared.wake.notify_one();
                Ok(())
            }
            Err(e) => {
                self.shared.add_pending(-1);
                self.shared.count_failed();
                tracing::error!(media_id = %media_id, error = %e, "annotation lost: it could not be journaled");
                Err(AnnotationError::Rejected(format!(
                    "annotation for media {media_id} could not be journaled: {e}"
                )))
            }
        }
    }

    /// Makes one last pass over the journal, until it is empty, the sink is down or
    /// `grace` is over; returns when the worker has stopped. What is left is sent at the
    /// next start.
    async fn close(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        // Held throughout, so a second `close` returns only after the first is done.
        let mut worker = self.worker.lock().await;
        self.deadline.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                *current = Some(deadline);
            }
            first
        });
        if let Some(handle) = worker.take() {
            if let Err(e) = handle.await {
                tracing::error!(error = %e, "the annotation outbox worker failed");
            }
            let left = deadline.saturating_duration_since(Instant::now());
            self.shared.inner.close(left).await;
            let stats = self.stats();
            tracing::info!(
                sent = stats.sent,
                failed = stats.failed,
                pending = stats.pending,
                journal = %self.shared.config.spool_dir.display(),
                "annotation outbox closed; what is pending is sent at the next start"
            );
        }
    }
}

/// Runs `work` on a blocking thread: file system calls never stall the runtime.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)
}

/// Resolves once `close` was called; never if the outbox was dropped unclosed (the
/// worker then goes on sending what the journal holds).
async fn closed(mut deadline: watch::Receiver<Option<Instant>>) {
    if deadline.wait_for(Option::is_some).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves when the shutdown grace is over; never if `close` is never called.
async fn grace_over(mut deadline: watch::Receiver<Option<Instant>>) {
    let end = match deadline.wait_for(Option::is_some).await {
        Ok(end) => *end,
        Err(_) => None,
    };
    match end {
        Some(end) => tokio::time::sleep_until(end).await,
        None => std::future::pending().await,
    }
}

fn closing(deadline: &watch::Receiver<Option<Instant>>) -> bool {
    deadline.borrow().is_some()
}

fn grace_elapsed(deadline: &watch::Receiver<Option<Instant>>) -> bool {
    deadline.borrow().is_some_and(|end| Instant::now() >= end)
}

impl OutboxState {
    async fn run(self: Arc<Self>, deadline: watch::Receiver<Option<Instant>>) {
        let every = self
            .config
            .spool_retry_interval
            .max(Duration::from_millis(1));
        loop {
            let end = self.round(&deadline).await;
            // A pass that ran while closing was the last one.
            if closing(&deadline) {
                break;
            }
            match end {
                RoundEnd::Drained => tokio::select! {
                    () = self.wake.notified() => {}
                    () = closed(deadline.clone()) => {}
                },
                RoundEnd::Down => tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = closed(deadline.clone()) => {}
                },
                RoundEnd::GraceOver => break,
            }
        }
    }

    /// Sends the journal oldest first until it is empty, an entry's tries run out, or
    /// the grace is over. Entries journaled meanwhile are found by the next listing.
    async fn round(&self, deadline: &watch::Receiver<Option<Instant>>) -> RoundEnd {
        loop {
            let journal = Arc::clone(&self.journal);
            let files = match blocking(move || journal.list()).await.and_then(|l| l) {
                Ok(files) => files,
                Err(e) => {
                    tracing::error!(journal = %self.config.spool_dir.display(), error = %e, "cannot list the annotation journal");
                    return RoundEnd::Down;
                }
            };
            if files.is_empty() {
                return RoundEnd::Drained;
            }
            for path in files {
                if let Some(end) = self.send_entry(path, deadline).await {
                    return end;
                }
            }
        }
    }

    /// Sends one entry with retries; `Some` when the round must stop.
    async fn send_entry(
        &self,
        path: PathBuf,
        deadline: &watch::Receiver<Option<Instant>>,
    ) -> Option<RoundEnd> {
        if grace_elapsed(deadline) {
            return Some(RoundEnd::GraceOver);
        }
        let read = {
            let path = path.clone();
            blocking(move || Journal::read(&path)).await
        };
        let entry = match read {
            Ok(Ok(entry)) => entry,
            Ok(Err(ReadError::Torn {
                path: shown,
                reason,
            })) => {
                tracing::error!(file = %shown, %reason, "unreadable journal entry; set aside");
                return self.discard(path).await;
            }
            Ok(Err(ReadError::Io { error, .. })) if error.kind() == io::ErrorKind::NotFound => {
                return None;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read a journal entry; trying again later");
                return Some(RoundEnd::Down);
            }
            Err(e) => {
                tracing::error!(error = %e, "journal read aborted");
                return Some(RoundEnd::Down);
            }
        };
        let media_id = &entry.annotation.media_id;
        let tries = (|| {
            self.inner.deliver_with_key(
                &entry.annotation,
                entry.authorization.clone(),
                &entry.key,
            )
        })
        .retry(self.backoff())
        .when(|e| matches!(e, AnnotationError::Transient(_)))
        .notify(|e, after| {
            tracing::warn!(media_id = %media_id, error = %e, ?after, "retrying annotation delivery");
        });
        let outcome = tokio::select! {
            outcome = tries => outcome,
            // The entry stays: it is sent again, with the same key, at the next start.
            () = grace_over(deadline.clone()) => return Some(RoundEnd::GraceOver),
        };
        match outcome {
            Ok(()) => {
                let removed = {
                    let path = path.clone();
                    blocking(move || Journal::remove(&path)).await
                };
                // Counted after the delete, so `sent` never runs ahead of the folder.
                self.sent.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(SENT_TOTAL).increment(1);
                match removed.and_then(|r| r) {
                    Ok(()) => {
                        self.add_pending(-1);
                        None
                    }
                    Err(e) => {
                        tracing::error!(file = %path.display(), error = %e, "delivered, but cannot delete the journal entry: it will be sent again");
                        Some(RoundEnd::Down)
                    }
                }
            }
            Err(AnnotationError::Rejected(reason)) => {
                tracing::error!(media_id = %media_id, file = %path.display(), %reason, "annotation rejected; set aside, not retried");
                self.discard(path).await
            }
            Err(AnnotationError::Transient(reason)) => {
                self.spooled.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(SPOOLED_TOTAL).increment(1);
                tracing::warn!(
                    media_id = %media_id,
                    %reason,
                    tries = self.config.max_attempts.max(1),
                    next_round = ?self.config.spool_retry_interval,
                    "the annotation sink is down; the journal waits"
                );
                Some(RoundEnd::Down)
            }
        }
    }

    /// Moves an entry to `rejected/` (deleting it if that fails) and counts it failed.
    async fn discard(&self, path: PathBuf) -> Option<RoundEnd> {
        let journal = Arc::clone(&self.journal);
        let moved = blocking(move || {
            journal.set_aside(&path).or_else(|e| {
                tracing::error!(file = %path.display(), error = %e, "cannot move the entry to {REJECTED_DIR}/; deleting it");
                Journal::remove(&path)
            })
        })
        .await;
        // Counted after the move, so `failed` never runs ahead of the folder.
        self.count_failed();
        match moved.and_then(|m| m) {
            Ok(()) => {
                self.add_pending(-1);
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot remove a refused journal entry; trying later");
                Some(RoundEnd::Down)
            }
        }
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.config.first_delay)
            .with_max_delay(self.config.max_delay.max(self.config.first_delay))
            .with_max_times(self.config.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
    }

    fn count_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(FAILED_TOTAL).increment(1);
    }

    fn add_pending(&self, delta: i64) {
        // Never below 0, even for an entry put in the folder from outside.
        let update = |n: u64| Some(n.saturating_add_signed(delta));
        let before = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, update)
            .unwrap_or_default();
        metrics::gauge!(PENDING).set(before.saturating_add_signed(delta) as f64);
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
