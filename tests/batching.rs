//! Dynamic batching across requests, through the real binary: concurrent `POST /detect`
//! requests share engine calls (`detections_batch_size` in /metrics) and each still
//! gets the answer it gets alone.

mod common;

use std::sync::{Arc, Barrier};

use common::{Service, assets, media_config, scratch};
use serde_json::Value;

const REQUESTS: usize = 8;

fn photo() -> Vec<u8> {
    std::fs::read(assets().join("photos/coffee.png")).unwrap()
}

fn detect(service: &Service, bytes: Vec<u8>) -> (u16, Value) {
    service.detect(bytes, "coffee.png", None)
}

/// `name value` of a metric line without labels.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in:\n{text}"))
}

#[test]
fn concurrent_requests_share_engine_calls_and_keep_their_answers() {
    let dir = scratch("batching");
    // One worker and a long delay: the eight requests arrive while the first batch waits,
    // so they share calls however slow this machine is; a full batch (8) leaves at once.
    let config = media_config(
        &dir,
        &assets().join("fixtures"),
        "v8_dynamic_batch_640.onnx",
        "",
        "",
        "[detection]\nmax_running = 8\nbatch_workers = 1\nbatch_delay_ms = 2000\n",
    );
    let service = Arc::new(Service::start(dir, &config));
    let (status, alone) = detect(&service, photo());
    assert_eq!(status, 200, "{alone}");
    assert!(
        !alone.as_array().unwrap().is_empty(),
        "the fixture finds boxes"
    );
    let metrics = |service: &Service| {
        service
            .client
            .get(service.url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let before = metrics(&service);
    let calls_before = metric(&before, "detections_batch_size_count");
    let views_before = metric(&before, "detections_batch_size_sum");

    let start = Arc::new(Barrier::new(REQUESTS));
    let answers: Vec<_> = (0..REQUESTS)
        .map(|_| {
            let service = Arc::clone(&service);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                detect(&service, photo())
            })
        })
        .collect();
    for answer in answers {
        let (status, body) = answer.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body, alone,
            "a batched request gets the answer it gets alone"
        );
    }

    let after = metrics(&service);
    let calls = metric(&after, "detections_batch_size_count") - calls_before;
    let views = metric(&after, "detections_batch_size_sum") - views_before;
    assert_eq!(views, REQUESTS as f64, "one view per photo");
    assert!(
        calls < REQUESTS as f64,
        "{REQUESTS} concurrent photos took {calls} engine calls: none was shared"
    );
}
