//! Dynamic batching across requests (Triton's dynamic batcher is the model): the views
//! of frames from concurrent photos, tiles and videos are gathered into one engine
//! call, up to the batch the engine takes, waiting at most a configured delay for it
//! to fill.
//!
//! - Workers letterbox straight into the batch tensor they own (no copy per view), so
//!   one worker prepares the next batch while another's is in the engine.
//! - Fairness: every detect call is a source; a batch takes one view from each source in
//!   turn and the next batch starts where this one stopped, so a long video or a
//!   77-tile photo cannot starve a single photo.
//! - A batch holds views for one engine only: during a switch (spec A4) views that
//!   asked for the old engine run on it, new ones on the new one.
//! - A model that refuses a batch at run time is served one view per call (`call`).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use domain::detection::Candidate;
use domain::tiling::View;
use ports::{EngineError, InferenceEngine, Preprocessor, RgbFrame};

use crate::detect::FrameError;
use single_view::SingleView;

mod call;
mod single_view;

/// Histogram of the views each engine call carried.
pub const BATCH_SIZE: &str = "detections_batch_size";
/// Gauge of the views waiting for an engine call (the queue's depth).
pub const QUEUED_VIEWS: &str = "detections_batch_queued_views";

/// How views are gathered into engine calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchingConfig {
    /// Threads that gather, letterbox and run batches. Two overlap one batch's
    /// preprocessing with another's inference.
    pub workers: usize,
    /// How long a batch that is not full waits for more views (0: take what is queued;
    /// batches still grow while the engine is busy).
    pub max_delay: Duration,
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            max_delay: Duration::ZERO,
        }
    }
}

/// The views of one detect call, in order.
pub(crate) struct Submission {
    pub engine: Arc<dyn InferenceEngine>,
    /// Most views of this call one engine call may carry (the settings' batch size);
    /// views of other calls may fill the rest of the batch.
    pub cap: usize,
    pub threshold: f64,
    pub views: Vec<(Arc<RgbFrame>, View)>,
}

type Reply = (usize, Result<Vec<Candidate>, FrameError>);

struct Item {
    index: usize,
    frame: Arc<RgbFrame>,
    view: View,
}

struct Source {
    id: u64,
    engine: Arc<dyn InferenceEngine>,
    cap: usize,
    threshold: f64,
    items: VecDeque<Item>,
    reply: mpsc::Sender<Reply>,
    /// Views of this source in the batch being gathered.
    in_batch: usize,
}

#[derive(Default)]
struct Queue {
    sources: VecDeque<Source>,
    next_id: u64,
    closed: bool,
}

struct Taken {
    item: Item,
    threshold: f64,
    reply: mpsc::Sender<Reply>,
}

struct Batch {
    engine: Arc<dyn InferenceEngine>,
    cap: usize,
    items: Vec<Taken>,
}

struct BatchQueue {
    queue: Mutex<Queue>,
    ready: Condvar,
    preprocessor: Arc<dyn Preprocessor>,
    max_delay: Duration,
    /// Engines that refused a batch: one view per call for them.
    single_view: SingleView,
}

pub(crate) struct Batcher {
    shared: Arc<BatchQueue>,
    workers: Vec<JoinHandle<()>>,
}

impl Batcher {
    pub fn new(preprocessor: Arc<dyn Preprocessor>, config: BatchingConfig) -> Self {
        let shared = Arc::new(BatchQueue {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            preprocessor,
            max_delay: config.max_delay,
            single_view: SingleView::default(),
        });
        let workers = (0..config.workers.max(1))
            .map(|n| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("batch-{n}"))
                    .spawn(move || shared.work())
                    .expect("spawning a batch worker")
            })
            .collect();
        Self { shared, workers }
    }

    /// [`Self::run_reporting`] without the reports (the tests' shorthand).
    #[cfg(test)]
    pub fn run(&self, submission: Submission) -> Result<Vec<Vec<Candidate>>, FrameError> {
        self.run_reporting(submission, &mut |_| {})
    }

    /// Candidates of every view, in the submission's order, telling `on_done` how many
    /// views are done each time one is. Blocks until all are done.
    pub fn run_reporting(
        &self,
        submission: Submission,
        on_done: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<Candidate>>, FrameError> {
        let count = submission.views.len();
        if count == 0 {
            return Ok(Vec::new());
        }
        let (reply, replies) = mpsc::channel();
        let id = {
            let mut queue = self.shared.lock();
            let id = queue.next_id;
            queue.next_id += 1;
            queue.sources.push_back(Source {
                id,
                engine: submission.engine,
                cap: submission.cap.max(1),
                threshold: submission.threshold,
                items: submission
                    .views
                    .into_iter()
                    .enumerate()
                    .map(|(index, (frame, view))| Item { index, frame, view })
                    .collect(),
                reply,
                in_batch: 0,
            });
            queue.show_depth();
            id
        };
        self.shared.ready.notify_all();
        // Whatever ends this call (an error, a panic), its views leave the queue.
        let _withdraw = Withdraw {
            shared: &self.shared,
            id,
        };
        let mut results: Vec<Option<Vec<Candidate>>> = vec![None; count];
        for done in 1..=count {
            let (index, result) = replies.recv().map_err(|_| {
                FrameError::Engine(EngineError::Inference("the batch worker stopped".into()))
            })?;
            results[index] = Some(result?);
            on_done(done);
        }
        Ok(results.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Views waiting for a batch (tests).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.shared
            .lock()
            .sources
            .iter()
            .map(|s| s.items.len())
            .sum()
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

struct Withdraw<'a> {
    shared: &'a BatchQueue,
    id: u64,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.sources.retain(|s| s.id != self.id);
        queue.show_depth();
    }
}

impl BatchQueue {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn work(&self) {
        let mut tensor = None;
        while let Some(batch) = self.gather() {
            // A panic (a broken engine) fails this batch's views, not the worker.
            let _ = catch_unwind(AssertUnwindSafe(|| self.run(batch, &mut tensor)));
        }
    }

    /// The next batch: waits for a view, then fills up to the engine's batch, waiting
    /// up to `max_delay` for more while it is not full. `None` when closed.
    fn gather(&self) -> Option<Batch> {
        let mut queue = self.lock();
        let mut batch = loop {
            if queue.closed {
                return None;
            }
            if let Some(first) = queue.sources.front() {
                let cap = if self.single_view.contains(&first.engine) {
                    1
                } else {
                    first.engine.spec().batch.max()
                };
                break Batch {
                    engine: Arc::clone(&first.engine),
                    cap,
                    items: Vec::new(),
                };
            }
            queue = self
                .ready
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        };
        for source in &mut queue.sources {
            source.in_batch = 0;
        }
        let deadline = Instant::now() + self.max_delay;
        loop {
            queue.fill(&mut batch);
            let now = Instant::now();
            if batch.items.len() >= batch.cap || now >= deadline || queue.closed {
                break;
            }
            queue = self
                .ready
                .wait_timeout(queue, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        queue.show_depth();
        drop(queue);
        // Views left for another worker.
        self.ready.notify_one();
        Some(batch)
    }
}

impl Queue {
    /// Publishes how many views wait ([`QUEUED_VIEWS`]); called under the lock after
    /// each change, so the figure follows the queue.
    fn show_depth(&self) {
        let views: usize = self.sources.iter().map(|s| s.items.len()).sum();
        metrics::gauge!(QUEUED_VIEWS).set(views as f64);
    }

    /// Round robin: one view from each source that runs on the batch's engine and has
    /// fewer than its `cap` views in the batch, pass after pass, until the batch is full
    /// or nothing fits. Each visited source moves to the back, so the next batch starts with the
    /// sources this one did not reach.
    fn fill(&mut self, batch: &mut Batch) {
        loop {
            let mut took = false;
            for _ in 0..self.sources.len() {
                if batch.items.len() >= batch.cap {
                    return;
                }
                let Some(mut source) = self.sources.pop_front() else {
                    return;
                };
                if Arc::ptr_eq(&source.engine, &batch.engine)
                    && source.in_batch < source.cap
                    && let Some(item) = source.items.pop_front()
                {
                    source.in_batch += 1;
                    batch.items.push(Taken {
                        item,
                        threshold: source.threshold,
                        reply: source.reply.clone(),
                    });
                    took = true;
                }
                if !source.items.is_empty() {
                    self.sources.push_back(source);
                }
            }
            if !took {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
