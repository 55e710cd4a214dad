//! A crash loses no annotation (spec B): the real binary is killed with SIGKILL while
//! the Annotations stand-in answers 503, then restarted with it healthy; every
//! annotation accepted before the kill arrives, each under one `Idempotency-Key`.
//! The video test makes its clip with `ffmpeg`, which is required.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::sse::Subscription;
use common::*;
use reqwest::blocking::multipart;
use serde_json::{Value, json};
use standin::StandIn;

const TOKEN: &str = "Bearer test-jwt-123";

/// The default retries (5 tries from 200 ms: seconds in all, as in production), and a
/// short wait between rounds once the sink is found down.
const OUTBOX: &str = "[outbox]\nspool_retry_secs = 1\n";

fn config(dir: &Path, annotations: &StandIn, model: &str, models: &Path) -> String {
    media_config(
        dir,
        models,
        model,
        "",
        &annotations_at(&annotations.url()),
        "",
    )
    .replacen("[outbox]\n", OUTBOX, 1)
}

/// SIGKILL: no shutdown code runs.
fn kill(service: &mut Service) {
    service.child.kill().unwrap();
    service.child.wait().unwrap();
}

/// The successful annotation calls grouped by idempotency key: key → bodies. Every
/// call must carry a key, and one key must always carry the same annotation.
fn by_key(stand_in: &StandIn) -> BTreeMap<String, Vec<Value>> {
    let mut keys: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for call in stand_in.calls_to("/annotations") {
        let key = call
            .idempotency_key()
            .expect("every annotation carries an Idempotency-Key")
            .to_string();
        assert_eq!(call.header("authorization"), Some(TOKEN));
        keys.entry(key).or_default().push(call.body.unwrap());
    }
    for (key, bodies) in &keys {
        assert!(
            bodies.iter().all(|b| *b == bodies[0]),
            "key {key} carried different annotations"
        );
    }
    keys
}

#[test]
fn six_photos_accepted_before_a_sigkill_all_arrive_after_the_restart() {
    let annotations = stand_in();
    annotations.fail("/annotations", 503, None);
    let dir = scratch("crash-photos");
    let fixtures = assets().join("fixtures");
    let config = config(&dir, &annotations, "v8_static_640.onnx", &fixtures);
    let mut service = Service::start(dir.clone(), &config);

    let mut ids = Vec::new();
    for i in 0..6u8 {
        let photo = png(320, 240, 20 + i * 30);
        ids.push(domain::media::MediaId::of_content(&photo).to_string());
        let form = multipart::Form::new()
            .part("file", multipart::Part::bytes(photo).file_name("field.png"));
        let response = service
            .client
            .post(service.url("/detect"))
            .header("Authorization", TOKEN)
            .multipart(form)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        let detections: Value = response.json().unwrap();
        assert!(!detections.as_array().unwrap().is_empty(), "an annotation");
    }
    std::thread::sleep(Duration::from_secs(1));
    kill(&mut service);
    assert!(
        annotations
            .calls_to("/annotations")
            .iter()
            .all(|c| c.idempotency_key().is_some()),
        "the tries before the kill carried keys too"
    );

    annotations.reset();
    let restarted = Service::start(dir.clone(), &config);
    eventually(
        Duration::from_secs(30),
        "six annotations after the restart",
        || by_key(&annotations).len() >= 6,
    );
    eventually(Duration::from_secs(5), "an empty journal", || {
        json_files(&dir.join("spool")).is_empty()
    });
    let keys = by_key(&annotations);
    assert_eq!(keys.len(), 6, "one key per annotation: {:?}", keys.keys());
    let arrived: BTreeSet<String> = keys
        .values()
        .map(|b| b[0]["mediaId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(arrived, ids.iter().cloned().collect::<BTreeSet<_>>());
    // Sent in the order they were accepted.
    let mut order: Vec<String> = Vec::new();
    for call in annotations.calls_to("/annotations") {
        let id = call.body.unwrap()["mediaId"].as_str().unwrap().to_string();
        if !order.contains(&id) {
            order.push(id);
        }
    }
    assert_eq!(order, ids);
    drop(restarted);
}

fn with_annotations(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| !e["annotations"].as_array().unwrap().is_empty())
        .map(|e| e["annotations"].clone())
        .collect()
}

#[test]
fn a_sigkill_during_a_video_job_loses_no_annotation_accepted_before_it() {
    let annotations = stand_in();
    annotations.fail("/annotations", 503, None);
    let dir = scratch("crash-video");
    std::fs::create_dir_all(dir.join("videos")).unwrap();
    let config = config(&dir, &annotations, "azaion.onnx", &assets().join("models"));
    let mut service = Service::start(dir.clone(), &config);
    let clip = dir.join("videos/long.mp4");
    person_clip(&clip, 20, 25, "mod(t*200,450)");
    annotations.set_media("long", clip.to_str().unwrap());

    let events = Subscription::open(&service.url("/detect/stream?mediaId=long"));
    let settings = json!({"frame_period_recognition": 1, "frame_recognition_seconds": 0.0});
    let response = service
        .client
        .post(service.url("/detect/long"))
        .header("Authorization", TOKEN)
        .json(&settings)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);

    // Three annotations announced; the job goes on for another second, then the kill.
    let mut seen = Vec::new();
    let started = Instant::now();
    while with_annotations(&seen).len() < 3 {
        assert!(started.elapsed() < Duration::from_secs(90), "{seen:?}");
        let (more, ended) = events.events_for(Duration::from_millis(200));
        assert!(!ended, "the stream ended early: {seen:?}");
        seen.extend(more);
    }
    let early = with_annotations(&seen);
    seen.extend(events.events_for(Duration::from_secs(1)).0);
    assert!(
        seen.last().unwrap()["mediaStatus"] == "AIProcessing",
        "still running"
    );
    let journaled = service.counter("detections_annotations_journaled_total");
    kill(&mut service);
    let (rest, _) = events.events_for(Duration::from_secs(5));
    seen.extend(rest);
    let announced = with_annotations(&seen);
    assert!(
        journaled >= early.len() as u64,
        "{journaled} journaled, {} announced a second before the kill",
        early.len()
    );

    annotations.reset();
    let restarted = Service::start(dir.clone(), &config);
    eventually(Duration::from_secs(30), "the journal delivered", || {
        by_key(&annotations).len() as u64 >= journaled && json_files(&dir.join("spool")).is_empty()
    });
    let keys = by_key(&annotations);
    eprintln!(
        "{} annotations announced a second before the kill, {journaled} journaled at the \
         kill, {} announced in all; {} arrived after the restart",
        early.len(),
        announced.len(),
        keys.len()
    );
    let arrived: Vec<&Value> = keys.values().map(|b| &b[0]["detections"]).collect();
    for (i, detections) in early.iter().enumerate() {
        assert!(
            arrived.contains(&detections),
            "annotation {i}, announced a second before the kill, never arrived"
        );
    }
    for detections in &arrived {
        assert!(
            announced.contains(detections),
            "an annotation that was never announced arrived: {detections}"
        );
    }
    assert!(
        keys.len() <= announced.len(),
        "{} keys for {} announced annotations",
        keys.len(),
        announced.len()
    );
    drop(restarted);
}
