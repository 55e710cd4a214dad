//! Delivery that loses nothing (spec Part B): an [`Outbox`] in front of any annotation
//! sink.
//!
//! - [`deliver`](AnnotationSink::deliver) never waits on the sink: it puts the annotation
//!   in a bounded in-memory queue, or, when the queue is full or the outbox is closed,
//!   straight into the spool.
//! - One worker sends the queue in order. A transient failure (connection, timeout, 5xx,
//!   408, 429) is retried with exponential backoff up to `max_attempts`; then the
//!   annotation goes to the spool. A rejection (other 4xx) is permanent: logged and
//!   counted as failed, never retried.
//! - The spool is a folder with one JSON file per annotation,
//!   `{"annotation":…,"authorization":…}`, written atomically (temporary file, fsync,
//!   rename) and named so that names sort oldest first. It is re-sent, oldest first, when
//!   an outbox starts on it and every `spool_retry_interval` while it runs; a file is
//!   deleted once delivered, and moved to `rejected/` when the sink refuses it.
//! - [`close`](AnnotationSink::close) stops taking new items into memory, sends what is
//!   queued until the grace elapses, then spools the rest.
//!
//! Every annotation handed to the outbox ends sent, spooled, or counted as failed (a
//! rejection, or a spool write that failed — both logged). Delivery is at least once: an
//! attempt cut short by the shutdown grace may have reached the sink and is sent again
//! from the spool.
//!
//! **The spool holds credentials.** The client's `Authorization` header is stored with
//! each annotation, because the Annotations service needs it to accept the annotation
//! when it is re-sent, possibly after a restart. Spool files are created readable by
//! their owner only (mode 0600 on Unix); keep the folder private.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use ports::{Annotation, AnnotationError, AnnotationSink};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const SENT_TOTAL: &str = "detections_annotations_sent_total";
const FAILED_TOTAL: &str = "detections_annotations_failed_total";
const SPOOLED_TOTAL: &str = "detections_annotations_spooled_total";
const PENDING: &str = "detections_annotations_pending";

/// The sub-folder of the spool for annotations the sink refused on re-sending.
pub const REJECTED_DIR: &str = "rejected";

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Where undeliverable annotations are kept (created if missing).
    pub spool_dir: PathBuf,
    /// Annotations held in memory before new ones go straight to the spool.
    pub queue_capacity: usize,
    /// Tries per annotation, the first included, before it is spooled.
    pub max_attempts: u32,
    /// Wait before the second try; doubles each try up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// How often the spool is re-sent while the outbox runs.
    pub spool_retry_interval: Duration,
}

impl OutboxConfig {
    /// The defaults: 1000 queued, 5 tries, 200 ms doubling to 10 s, spool retried every 30 s.
    pub fn new(spool_dir: impl Into<PathBuf>) -> Self {
        Self {
            spool_dir: spool_dir.into(),
            queue_capacity: 1000,
            max_attempts: 5,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            spool_retry_interval: Duration::from_secs(30),
        }
    }
}

/// Counts since this outbox started. `spooled` counts writes to the spool; an annotation
/// later re-sent from it counts again as `sent` (or `failed`). `pending` is what is
/// only in memory now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub sent: u64,
    pub failed: u64,
    pub spooled: u64,
    pub pending: u64,
}

/// One annotation with the header it must be sent with: the queue's item and the spool
/// file's content.
#[derive(Debug, Serialize, Deserialize)]
struct Item {
    annotation: Annotation,
    authorization: Option<String>,
}

pub struct Outbox {
    shared: Arc<Shared>,
    /// `None` once closed: new items go to the spool.
    queue: std::sync::Mutex<Option<mpsc::Sender<Item>>>,
    /// The end of the shutdown grace, set by `close`.
    deadline: watch::Sender<Option<Instant>>,
    worker: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

/// What the worker and `deliver` share.
struct Shared {
    inner: Arc<dyn AnnotationSink>,
    config: OutboxConfig,
    sent: AtomicU64,
    failed: AtomicU64,
    spooled: AtomicU64,
    pending: AtomicU64,
}

/// Orders spool files written in the same microsecond by this process.
static SPOOL_SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl Outbox {
    /// Starts the worker, which first re-sends what the spool holds. Must be called
    /// inside a Tokio runtime. Fails if the spool folder cannot be created or written.
    pub fn start(inner: Arc<dyn AnnotationSink>, config: OutboxConfig) -> io::Result<Arc<Outbox>> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        std::fs::create_dir_all(config.spool_dir.join(REJECTED_DIR))?;
        let probe = config
            .spool_dir
            .join(format!(".probe-{}.tmp", std::process::id()));
        std::fs::write(&probe, b"")?;
        std::fs::remove_file(&probe)?;
        // Before anything can write: a cleanup running beside `deliver` would delete
        // the temporary file of a spool write in progress.
        remove_partial_files(&config.spool_dir);

        let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let (deadline, deadline_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            inner,
            config,
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            spooled: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        });
        metrics::gauge!(PENDING).set(0.0);
        let worker = runtime.spawn(Arc::clone(&shared).run(receiver, deadline_rx));
        Ok(Arc::new(Outbox {
            shared,
            queue: std::sync::Mutex::new(Some(sender)),
            deadline,
            worker: tokio::sync::Mutex::new(Some(worker)),
        }))
    }

    pub fn stats(&self) -> OutboxStats {
        let s = &self.shared;
        OutboxStats {
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
        metrics::describe_counter!(SENT_TOTAL, "Annotations delivered to the sink");
        metrics::describe_counter!(
            FAILED_TOTAL,
            "Annotations given up on: refused by the sink, or not writable to the spool"
        );
        metrics::describe_counter!(SPOOLED_TOTAL, "Annotations written to the on-disk spool");
        metrics::describe_gauge!(
            PENDING,
            "Annotations held only in memory, awaiting delivery"
        );
    }
}

#[async_trait]
impl AnnotationSink for Outbox {
    /// Returns at once: the annotation is queued, or spooled when the queue is full or
    /// the outbox closed. Errs only when it could not be spooled either (counted failed).
    async fn deliver(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
    ) -> Result<(), AnnotationError> {
        let item = Item {
            annotation: annotation.clone(),
            authorization,
        };
        let (item, why) = {
            let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            match queue.as_ref() {
                Some(sender) => {
                    // Counted before sending: the worker may finish it at once.
                    self.shared.add_pending(1);
                    match sender.try_send(item) {
                        Ok(()) => return Ok(()),
                        Err(TrySendError::Full(item)) => {
                            self.shared.add_pending(-1);
                            (item, "the queue is full")
                        }
                        Err(TrySendError::Closed(item)) => {
                            self.shared.add_pending(-1);
                            (item, "the outbox is closed")
                        }
                    }
                }
                None => (item, "the outbox is closed"),
            }
        };
        if self.shared.spool(&item, why).await {
            Ok(())
        } else {
            Err(AnnotationError::Rejected(format!(
                "annotation for media {} could not be queued ({why}) nor spooled",
                item.annotation.media_id
            )))
        }
    }

    /// Stops queueing, sends what is queued until `grace` elapses, spools the rest, and
    /// returns once nothing is held only in memory. Later `deliver` calls spool.
    async fn close(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        // Held throughout, so a second `close` returns only after the first is done.
        let mut worker = self.worker.lock().await;
        drop(self.queue.lock().unwrap_or_else(|e| e.into_inner()).take());
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
                spooled = stats.spooled,
                spool = %self.shared.config.spool_dir.display(),
                "annotation outbox closed"
            );
        }
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

impl Shared {
    async fn run(
        self: Arc<Self>,
        mut queue: mpsc::Receiver<Item>,
        deadline: watch::Receiver<Option<Instant>>,
    ) {
        self.resend_spool(&deadline).await;
        let every = self
            .config
            .spool_retry_interval
            .max(Duration::from_millis(1));
        let mut spool_tick = tokio::time::interval_at(Instant::now() + every, every);
        spool_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // The tick first: at most once an interval, and it is never starved by a
                // queue that is always full.
                biased;
                _ = spool_tick.tick(), if !closing(&deadline) => self.resend_spool(&deadline).await,
                item = queue.recv() => match item {
                    Some(item) => {
                        self.send(&item, &deadline).await;
                        self.add_pending(-1);
                    }
                    // Closed and drained: nothing left in memory.
                    None => break,
                },
            }
        }
    }

    /// Sends one queued item with retries; spools it when the tries or the grace run out.
    async fn send(&self, item: &Item, deadline: &watch::Receiver<Option<Instant>>) {
        if grace_elapsed(deadline) {
            self.spool(item, "the shutdown grace elapsed").await;
            return;
        }
        let media_id = &item.annotation.media_id;
        let tries = (|| {
            self.inner
                .deliver(&item.annotation, item.authorization.clone())
        })
        .retry(self.backoff())
        .when(|e| matches!(e, AnnotationError::Transient(_)))
        .notify(|e, after| {
            tracing::warn!(media_id = %media_id, error = %e, ?after, "retrying annotation delivery");
        });
        let outcome = tokio::select! {
            outcome = tries => Some(outcome),
            () = grace_over(deadline.clone()) => None,
        };
        match outcome {
            Some(Ok(())) => self.count_sent(),
            Some(Err(AnnotationError::Rejected(reason))) => {
                tracing::error!(media_id = %media_id, %reason, "annotation rejected; not retried");
                self.count_failed();
            }
            Some(Err(AnnotationError::Transient(reason))) => {
                let why = format!(
                    "still failing after {} tries: {reason}",
                    self.config.max_attempts.max(1)
                );
                self.spool(item, &why).await;
            }
            None => {
                self.spool(item, "the shutdown grace elapsed").await;
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

    /// Re-sends the spool, oldest first, one try each; stops at the first transient
    /// failure (the sink is still down: the rest waits for the next round) or on close.
    async fn resend_spool(&self, deadline: &watch::Receiver<Option<Instant>>) {
        let files = match self.spool_files().await {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(spool = %self.config.spool_dir.display(), error = %e, "cannot read the annotation spool");
                return;
            }
        };
        if files.is_empty() {
            return;
        }
        tracing::info!(files = files.len(), "re-sending spooled annotations");
        for path in files {
            if closing(deadline) {
                return;
            }
            let item = match read_item(&path).await {
                Ok(item) => item,
                Err(reason) => {
                    tracing::error!(file = %path.display(), %reason, "unreadable spool file");
                    self.set_aside(&path).await;
                    self.count_failed();
                    continue;
                }
            };
            let outcome = tokio::select! {
                outcome = self.inner.deliver(&item.annotation, item.authorization.clone()) => outcome,
                () = grace_over(deadline.clone()) => return,
            };
            match outcome {
                Ok(()) => {
                    self.count_sent();
                    if let Err(e) = tokio::fs::remove_file(&path).await {
                        tracing::error!(file = %path.display(), error = %e, "delivered, but cannot delete the spool file: it will be sent again");
                    }
                }
                Err(AnnotationError::Rejected(reason)) => {
                    tracing::error!(media_id = %item.annotation.media_id, file = %path.display(), %reason, "spooled annotation rejected; set aside");
                    self.set_aside(&path).await;
                    self.count_failed();
                }
                Err(AnnotationError::Transient(reason)) => {
                    tracing::debug!(%reason, "the sink is still unavailable; the spool waits");
                    return;
                }
            }
        }
    }

    /// The spool's files, oldest first.
    async fn spool_files(&self) -> io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.config.spool_dir).await?;
        while let Some(entry) = dir.next_entry().await? {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with('.')
                && name.ends_with(".json")
                && entry.file_type().await?.is_file()
            {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }

    /// Moves a spool file to `rejected/`, out of the re-send rounds.
    async fn set_aside(&self, path: &Path) {
        let rejected = self.config.spool_dir.join(REJECTED_DIR);
        let moved = async {
            tokio::fs::create_dir_all(&rejected).await?;
            let name = path.file_name().unwrap_or_default();
            tokio::fs::rename(path, rejected.join(name)).await
        };
        if let Err(e) = moved.await {
            tracing::error!(file = %path.display(), error = %e, "cannot move the spool file to {REJECTED_DIR}/; deleting it");
            let _ = tokio::fs::remove_file(path).await;
        }
    }

    /// Writes `item` to the spool; true when it is there. A failed write is logged and
    /// counted as failed.
    async fn spool(&self, item: &Item, why: &str) -> bool {
        match self.write_spool_file(item).await {
            Ok(path) => {
                self.spooled.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(SPOOLED_TOTAL).increment(1);
                tracing::warn!(media_id = %item.annotation.media_id, file = %path.display(), reason = why, "annotation spooled");
                true
            }
            Err(e) => {
                tracing::error!(media_id = %item.annotation.media_id, reason = why, error = %e, "annotation lost: it could not be spooled");
                self.count_failed();
                false
            }
        }
    }

    /// `<µs since epoch>-<sequence>-<pid>.json`, zero-padded so names sort oldest first;
    /// written to a hidden temporary file, synced, then renamed into place.
    async fn write_spool_file(&self, item: &Item) -> io::Result<PathBuf> {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let sequence = SPOOL_SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let name = format!("{micros:020}-{sequence:012}-{}.json", std::process::id());
        let dir = &self.config.spool_dir;
        let temporary = dir.join(format!(".{name}.tmp"));
        let path = dir.join(&name);
        let bytes = serde_json::to_vec(item).map_err(io::Error::other)?;
        tokio::fs::create_dir_all(dir).await?;
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let written = async {
            let mut file = options.open(&temporary).await?;
            file.write_all(&bytes).await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&temporary, &path).await
        };
        if let Err(e) = written.await {
            let _ = tokio::fs::remove_file(&temporary).await;
            return Err(e);
        }
        Ok(path)
    }

    fn count_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(SENT_TOTAL).increment(1);
    }

    fn count_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(FAILED_TOTAL).increment(1);
    }

    fn add_pending(&self, delta: i64) {
        let now = if delta >= 0 {
            self.pending.fetch_add(delta as u64, Ordering::Relaxed) + delta as u64
        } else {
            self.pending
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed)
                .saturating_sub(delta.unsigned_abs())
        };
        metrics::gauge!(PENDING).set(now as f64);
    }
}

async fn read_item(path: &Path) -> Result<Item, String> {
    let bytes = tokio::fs::read(path).await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;

/// Temporary files of writes a crash interrupted: never renamed, so never complete.
fn remove_partial_files(spool_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(spool_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
