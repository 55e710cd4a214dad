//! The in-memory event bus behind the SSE stream (spec A7, B "SSE you can rely on").
//!
//! Every published event gets the next id (from 1) and goes into a bounded replay ring
//! and into the queue of every live subscriber whose filter it passes. A subscriber's
//! queue is bounded: when it is full the oldest queued event is dropped and counted, and
//! the subscriber's next item is [`StreamItem::Lagged`] with that count. `publish` only
//! takes short mutexes (the bus state, then each subscriber's queue for a push); it never
//! waits on a subscriber.
//!
//! Subscribing replays the buffered events after `after` and registers the subscriber's
//! queue under the same lock that `publish` holds, so replay and live events meet with
//! no gap and no duplicate.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use ports::{
    EventPublisher, EventReceiver, EventSubscription, Sequenced, StreamEvent, StreamItem,
    SubscribeRequest,
};
use tokio::sync::Notify;

/// Name of the gauge of connected SSE subscribers.
pub const CLIENTS_GAUGE: &str = "detections_sse_clients";

/// Sizes of the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventBusConfig {
    /// Events kept for replay after reconnect (`Last-Event-ID`).
    pub replay_capacity: usize,
    /// Events one subscriber may have queued before it loses the oldest (spec A7: 100).
    pub subscriber_queue: usize,
}

impl Default for EventBusConfig {
    fn default() -> Self {
        Self {
            replay_capacity: 1000,
            subscriber_queue: 100,
        }
    }
}

/// The in-memory [`EventPublisher`].
pub struct EventBus {
    shared: Arc<BusState>,
}

struct BusState {
    config: EventBusConfig,
    state: Mutex<State>,
    /// Receivers not yet dropped.
    live: AtomicUsize,
}

struct State {
    next_id: u64,
    ring: VecDeque<Arc<Sequenced>>,
    subscribers: Vec<Arc<Queue>>,
    closed: bool,
}

/// One subscriber's bounded queue of live events.
struct Queue {
    media_id: Option<String>,
    inner: Mutex<QueueInner>,
    notify: Notify,
}

#[derive(Default)]
struct QueueInner {
    items: VecDeque<Arc<Sequenced>>,
    missed: u64,
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves consistent data (each critical
    // section is a few pushes and pops), so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn passes(filter: Option<&str>, event: &StreamEvent) -> bool {
    match (filter, event.media_id()) {
        (Some(wanted), Some(media)) => wanted == media,
        _ => true,
    }
}

impl EventBus {
    pub fn new(config: EventBusConfig) -> Self {
        Self {
            shared: Arc::new(BusState {
                config,
                state: Mutex::new(State {
                    next_id: 1,
                    ring: VecDeque::with_capacity(config.replay_capacity.min(4096)),
                    subscribers: Vec::new(),
                    closed: false,
                }),
                live: AtomicUsize::new(0),
            }),
        }
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(EventBusConfig::default())
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("config", &self.shared.config)
            .field("subscribers", &self.subscribers())
            .finish()
    }
}

impl BusState {
    fn set_gauge(&self) {
        metrics::gauge!(CLIENTS_GAUGE).set(self.live.load(Ordering::Relaxed) as f64);
    }
}

impl EventBus {
    /// [`EventPublisher::publish`], answering the number the event got.
    pub fn publish_numbered(&self, event: StreamEvent) -> u64 {
        let capacity = self.shared.config.subscriber_queue;
        let mut state = lock(&self.shared.state);
        let id = state.next_id;
        state.next_id += 1;
        let sequenced = Arc::new(Sequenced { id, event });
        if self.shared.config.replay_capacity > 0 {
            if state.ring.len() == self.shared.config.replay_capacity {
                state.ring.pop_front();
            }
            state.ring.push_back(Arc::clone(&sequenced));
        }
        for queue in &state.subscribers {
            if !passes(queue.media_id.as_deref(), &sequenced.event) {
                continue;
            }
            let mut inner = lock(&queue.inner);
            inner.items.push_back(Arc::clone(&sequenced));
            while inner.items.len() > capacity {
                inner.items.pop_front();
                inner.missed += 1;
            }
            drop(inner);
            queue.notify.notify_one();
        }
        id
    }
}

impl EventPublisher for EventBus {
    fn publish(&self, event: StreamEvent) {
        self.publish_numbered(event);
    }

    fn subscribe(&self, request: SubscribeRequest) -> EventSubscription {
        let queue = Arc::new(Queue {
            media_id: request.media_id,
            inner: Mutex::new(QueueInner::default()),
            notify: Notify::new(),
        });
        let mut pending = VecDeque::new();
        {
            let mut state = lock(&self.shared.state);
            if state.closed {
                lock(&queue.inner).closed = true;
            } else {
                let last = state.next_id - 1;
                if let Some(after) = request.after {
                    // An id this run has not reached comes from before a restart: the
                    // client's position is unknown, so it gets everything still buffered.
                    let after = if after > last { 0 } else { after };
                    let first_kept = state.ring.front().map_or(state.next_id, |e| e.id);
                    let fell_out = first_kept.saturating_sub(after + 1);
                    if fell_out > 0 {
                        pending.push_back(StreamItem::Lagged { missed: fell_out });
                    }
                    pending.extend(
                        state
                            .ring
                            .iter()
                            .filter(|e| e.id > after)
                            .filter(|e| passes(queue.media_id.as_deref(), &e.event))
                            .map(|e| StreamItem::Event(Arc::clone(e))),
                    );
                }
                state.subscribers.push(Arc::clone(&queue));
            }
        }
        self.shared.live.fetch_add(1, Ordering::Relaxed);
        self.shared.set_gauge();
        EventSubscription::new(BusReceiver {
            shared: Arc::clone(&self.shared),
            queue,
            pending,
        })
    }

    fn close(&self) {
        let mut state = lock(&self.shared.state);
        state.closed = true;
        for queue in state.subscribers.drain(..) {
            lock(&queue.inner).closed = true;
            queue.notify.notify_one();
        }
    }

    fn subscribers(&self) -> usize {
        self.shared.live.load(Ordering::Relaxed)
    }
}

struct BusReceiver {
    shared: Arc<BusState>,
    queue: Arc<Queue>,
    /// Replay (and its lagged notice), read before the live queue.
    pending: VecDeque<StreamItem>,
}

#[async_trait]
impl EventReceiver for BusReceiver {
    async fn next(&mut self) -> Option<StreamItem> {
        if let Some(item) = self.pending.pop_front() {
            return Some(item);
        }
        loop {
            {
                let mut inner = lock(&self.queue.inner);
                if inner.missed > 0 {
                    let missed = std::mem::take(&mut inner.missed);
                    return Some(StreamItem::Lagged { missed });
                }
                if let Some(event) = inner.items.pop_front() {
                    return Some(StreamItem::Event(event));
                }
                if inner.closed {
                    return None;
                }
            }
            // A push between the unlock above and this wait leaves a permit, so no
            // wake-up is lost.
            self.queue.notify.notified().await;
        }
    }
}

impl Drop for BusReceiver {
    fn drop(&mut self) {
        {
            let mut state = lock(&self.shared.state);
            state
                .subscribers
                .retain(|queue| !Arc::ptr_eq(queue, &self.queue));
        }
        self.shared.live.fetch_sub(1, Ordering::Relaxed);
        self.shared.set_gauge();
    }
}

#[cfg(test)]
mod tests;
