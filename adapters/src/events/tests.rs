use std::time::{Duration, Instant};

use domain::availability::Availability;
use ports::{DetectionEvent, Health, MediaEventStatus};

use super::*;

fn detection(media: &str, percent: u8) -> StreamEvent {
    StreamEvent::Detection(DetectionEvent {
        annotations: Vec::new(),
        media_id: domain::media::MediaId::parse(media).unwrap(),
        media_status: MediaEventStatus::AiProcessing,
        media_percent: percent,
        error: None,
    })
}

fn availability() -> StreamEvent {
    StreamEvent::Availability {
        health: Health {
            availability: Availability::Enabled,
            engine_type: Some(ports::EngineKind::Onnx),
            precision: None,
        },
        replica: None,
    }
}

fn bus(replay_capacity: usize, subscriber_queue: usize) -> EventBus {
    EventBus::new(EventBusConfig {
        replay_capacity,
        subscriber_queue,
    })
}

/// The next item at once, or a failure if none is ready.
async fn ready(subscription: &mut EventSubscription) -> Option<StreamItem> {
    tokio::time::timeout(Duration::from_secs(5), subscription.next())
        .await
        .expect("an item or the end is ready")
}

async fn id_of(subscription: &mut EventSubscription) -> u64 {
    match ready(subscription).await {
        Some(StreamItem::Event(event)) => event.id,
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn nothing_ready(subscription: &mut EventSubscription) {
    assert!(
        tokio::time::timeout(Duration::from_millis(50), subscription.next())
            .await
            .is_err(),
        "no item expected"
    );
}

#[test]
fn defaults_follow_the_spec() {
    let config = EventBusConfig::default();
    assert_eq!(config.replay_capacity, 1000);
    assert_eq!(config.subscriber_queue, 100);
}

#[tokio::test]
async fn ids_increase_from_one_and_order_is_kept() {
    let bus = bus(10, 10);
    let mut subscription = bus.subscribe(SubscribeRequest::default());
    assert_eq!(bus.publish_numbered(detection("a", 1)), 1);
    assert_eq!(bus.publish_numbered(availability()), 2);
    assert_eq!(bus.publish_numbered(detection("b", 2)), 3);
    let mut seen = Vec::new();
    for _ in 0..3 {
        match ready(&mut subscription).await {
            Some(StreamItem::Event(event)) => seen.push((event.id, event.event.clone())),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        seen,
        vec![
            (1, detection("a", 1)),
            (2, availability()),
            (3, detection("b", 2))
        ]
    );
    nothing_ready(&mut subscription).await;
}

#[tokio::test]
async fn without_last_event_id_only_new_events_come() {
    let bus = bus(10, 10);
    bus.publish_numbered(detection("a", 1));
    let mut subscription = bus.subscribe(SubscribeRequest::default());
    nothing_ready(&mut subscription).await;
    bus.publish_numbered(detection("a", 2));
    assert_eq!(id_of(&mut subscription).await, 2);
}

#[tokio::test]
async fn reconnect_replays_after_the_last_id_without_gap_or_duplicate() {
    let bus = bus(100, 100);
    let mut first = bus.subscribe(SubscribeRequest::default());
    for i in 0..5 {
        bus.publish_numbered(detection("a", i));
    }
    assert_eq!(id_of(&mut first).await, 1);
    assert_eq!(id_of(&mut first).await, 2);
    drop(first);
    bus.publish_numbered(detection("a", 9));
    let mut second = bus.subscribe(SubscribeRequest {
        after: Some(2),
        media_id: None,
    });
    bus.publish_numbered(detection("a", 10));
    for expected in 3..=7 {
        assert_eq!(id_of(&mut second).await, expected);
    }
    nothing_ready(&mut second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_meets_live_events_while_publishing_goes_on() {
    let bus = Arc::new(bus(100_000, 100_000));
    const TOTAL: u64 = 20_000;
    let publisher = {
        let bus = Arc::clone(&bus);
        std::thread::spawn(move || {
            for i in 0..TOTAL {
                bus.publish_numbered(detection("a", (i % 100) as u8));
            }
        })
    };
    // Reconnect repeatedly from wherever the previous subscription stopped.
    let mut last = 0;
    while last < TOTAL {
        let mut subscription = bus.subscribe(SubscribeRequest {
            after: Some(last),
            media_id: None,
        });
        for _ in 0..1000 {
            if last == TOTAL {
                break;
            }
            let id = id_of(&mut subscription).await;
            assert_eq!(id, last + 1, "no gap, no duplicate");
            last = id;
        }
    }
    publisher.join().unwrap();
}

#[tokio::test]
async fn last_event_id_before_the_buffer_reports_what_fell_out() {
    let bus = bus(3, 10);
    for i in 0..10 {
        bus.publish_numbered(detection("a", i));
    }
    // Buffer holds 8, 9, 10; 3..=7 are gone.
    let mut subscription = bus.subscribe(SubscribeRequest {
        after: Some(2),
        media_id: None,
    });
    assert_eq!(
        ready(&mut subscription).await,
        Some(StreamItem::Lagged { missed: 5 })
    );
    for expected in 8..=10 {
        assert_eq!(id_of(&mut subscription).await, expected);
    }
    nothing_ready(&mut subscription).await;
}

#[tokio::test]
async fn last_event_id_from_before_a_restart_replays_the_whole_buffer() {
    let bus = bus(10, 10);
    bus.publish_numbered(detection("a", 1));
    bus.publish_numbered(detection("a", 2));
    let mut subscription = bus.subscribe(SubscribeRequest {
        after: Some(5000),
        media_id: None,
    });
    assert_eq!(id_of(&mut subscription).await, 1);
    assert_eq!(id_of(&mut subscription).await, 2);
}

#[tokio::test]
async fn media_filter_keeps_that_media_and_availability() {
    let bus = bus(10, 10);
    bus.publish_numbered(detection("a", 1)); // 1
    bus.publish_numbered(detection("b", 1)); // 2
    let mut subscription = bus.subscribe(SubscribeRequest {
        after: Some(0),
        media_id: Some("b".into()),
    });
    bus.publish_numbered(detection("a", 2)); // 3
    bus.publish_numbered(availability()); // 4
    bus.publish_numbered(detection("b", 2)); // 5
    assert_eq!(id_of(&mut subscription).await, 2);
    assert_eq!(id_of(&mut subscription).await, 4);
    assert_eq!(id_of(&mut subscription).await, 5);
    nothing_ready(&mut subscription).await;
}

#[tokio::test]
async fn a_slow_subscriber_is_told_exactly_how_many_it_lost() {
    let bus = bus(0, 4);
    let mut subscription = bus.subscribe(SubscribeRequest::default());
    for i in 0..10 {
        bus.publish_numbered(detection("a", i));
    }
    assert_eq!(
        ready(&mut subscription).await,
        Some(StreamItem::Lagged { missed: 6 })
    );
    for expected in 7..=10 {
        assert_eq!(id_of(&mut subscription).await, expected);
    }
    // Losing again later is reported again, with only the new count.
    assert_eq!(id_of_after_publishing(&bus, &mut subscription, 5).await, 1);
}

/// Publishes `n` events to a queue of 4 and answers the lagged count.
async fn id_of_after_publishing(
    bus: &EventBus,
    subscription: &mut EventSubscription,
    n: u8,
) -> u64 {
    for i in 0..n {
        bus.publish_numbered(detection("a", i));
    }
    match ready(subscription).await {
        Some(StreamItem::Lagged { missed }) => missed,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn filtered_out_events_do_not_fill_a_queue() {
    let bus = bus(0, 2);
    let mut subscription = bus.subscribe(SubscribeRequest {
        after: None,
        media_id: Some("b".into()),
    });
    for i in 0..50 {
        bus.publish_numbered(detection("a", i));
    }
    bus.publish_numbered(detection("b", 1));
    assert_eq!(id_of(&mut subscription).await, 51);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_slows_no_one() {
    const TOTAL: u64 = 100_000;
    let bus = Arc::new(EventBus::default());
    let _stalled = bus.subscribe(SubscribeRequest::default());
    let mut reader = bus.subscribe(SubscribeRequest::default());
    // The reader's progress: the publisher keeps within its queue of it (so it must get
    // everything), while the stalled subscriber is never waited for.
    let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let publisher = {
        let bus = Arc::clone(&bus);
        let read = Arc::clone(&read);
        std::thread::spawn(move || {
            let start = Instant::now();
            for i in 0..TOTAL {
                while i - read.load(Ordering::Acquire) >= 50 {
                    std::thread::yield_now();
                }
                bus.publish_numbered(detection("a", (i % 100) as u8));
            }
            start.elapsed()
        })
    };
    let mut expected = 1;
    let mut lagged = 0;
    while expected <= TOTAL {
        match ready(&mut reader).await {
            Some(StreamItem::Event(event)) => {
                assert_eq!(event.id, expected);
                read.store(expected, Ordering::Release);
                expected += 1;
            }
            Some(StreamItem::Lagged { missed }) => {
                lagged += missed;
                expected += missed;
                read.store(expected - 1, Ordering::Release);
            }
            None => panic!("ended early"),
        }
    }
    let elapsed = publisher.join().unwrap();
    assert!(
        elapsed < Duration::from_secs(20),
        "publishing took {elapsed:?}"
    );
    assert_eq!(lagged, 0, "the reading subscriber lost events");
}

#[tokio::test]
async fn close_ends_every_stream_after_what_was_queued() {
    let bus = bus(10, 10);
    let mut subscription = bus.subscribe(SubscribeRequest::default());
    let waiting = {
        let mut other = bus.subscribe(SubscribeRequest::default());
        tokio::spawn(async move { other.next().await })
    };
    tokio::task::yield_now().await;
    bus.publish_numbered(detection("a", 1));
    bus.close();
    assert_eq!(id_of(&mut subscription).await, 1);
    assert_eq!(ready(&mut subscription).await, None);
    assert!(matches!(waiting.await.unwrap(), Some(StreamItem::Event(_))));
    let mut late = bus.subscribe(SubscribeRequest {
        after: Some(0),
        media_id: None,
    });
    assert_eq!(ready(&mut late).await, None);
}

#[tokio::test]
async fn close_wakes_a_waiting_subscriber() {
    let bus = Arc::new(bus(10, 10));
    let mut subscription = bus.subscribe(SubscribeRequest::default());
    let mut next = Box::pin(subscription.next());
    // Polled once, so it is waiting (its waker registered) when the bus closes.
    tokio::select! {
        biased;
        _ = &mut next => panic!("an event before any was published"),
        () = std::future::ready(()) => {}
    }
    bus.close();
    let ended = tokio::time::timeout(Duration::from_secs(5), next)
        .await
        .expect("woken");
    assert_eq!(ended, None);
}

#[tokio::test]
async fn subscribers_are_counted_until_dropped() {
    let bus = bus(10, 10);
    assert_eq!(bus.subscribers(), 0);
    let first = bus.subscribe(SubscribeRequest::default());
    let second = bus.subscribe(SubscribeRequest::default());
    assert_eq!(bus.subscribers(), 2);
    drop(first);
    assert_eq!(bus.subscribers(), 1);
    drop(second);
    assert_eq!(bus.subscribers(), 0);
    // A dropped subscriber no longer receives pushes.
    bus.publish_numbered(detection("a", 1));
    assert!(lock(&bus.shared.state).subscribers.is_empty());
}
