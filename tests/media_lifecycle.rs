//! The media lifecycle, background jobs, the event stream, delivery that loses nothing
//! and graceful shutdown — over real HTTP, against the real binary and a stand-in for
//! the Loader and Annotations services (spec A3, A7, A8, A9, B).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::sse::Subscription;
use common::*;
use reqwest::blocking::multipart;
use serde_json::{Value, json};
use standin::StandIn;

const TOKEN: &str = "Bearer test-jwt-123";

fn start(tag: &str, annotations: &StandIn, extra: &str) -> Service {
    start_with(tag, &annotations_at(&annotations.url()), extra)
}

fn start_with(tag: &str, annotations_section: &str, extra: &str) -> Service {
    let dir = scratch(tag);
    let outbox = "[outbox]\nmax_attempts = 2\nfirst_delay_ms = 50\nmax_delay_ms = 100\nspool_retry_secs = 1\n";
    let config = media_config(
        &dir,
        &assets().join("fixtures"),
        "v8_static_640.onnx",
        "shutdown_grace_secs = 6",
        annotations_section,
        extra,
    );
    // The outbox's retry timings, short for the tests, join the `[outbox]` section.
    let config = config.replacen("[outbox]\n", outbox, 1);
    Service::start(dir, &config)
}

impl Service {
    fn detect_with_token(&self, photo: Vec<u8>) -> (u16, Value) {
        let form = multipart::Form::new()
            .part("file", multipart::Part::bytes(photo).file_name("field.png"));
        let response = self
            .client
            .post(self.url("/detect"))
            .header("Authorization", TOKEN)
            .multipart(form)
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }

    fn start_job(&self, media_id: &str) -> (u16, Value, Duration) {
        let started = Instant::now();
        let response = self
            .client
            .post(self.url(&format!("/detect/{media_id}")))
            .header("Authorization", TOKEN)
            .header("x-refresh-token", "refresh-1")
            .json(&json!({"probability_threshold": 0.3}))
            .send()
            .unwrap();
        let took = started.elapsed();
        (response.status().as_u16(), response.json().unwrap(), took)
    }

    fn job(&self, media_id: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(&format!("/detect/{media_id}")))
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    }

    fn spooled(&self) -> Vec<PathBuf> {
        json_files(&self.dir.join("spool"))
    }
}

/// The id of spec A8 for a file held whole (under 3072 bytes it is the whole content;
/// our PNGs are larger, so: size, first, middle and last KiB).
fn media_id_of(content: &[u8]) -> String {
    domain::media::MediaId::of_content(content).to_string()
}

#[test]
fn a_photo_with_a_token_is_stored_recorded_and_annotated_with_the_token_unchanged() {
    let annotations = stand_in();
    let service = start("lifecycle", &annotations, "");
    let photo = png(320, 240, 10);
    let id = media_id_of(&photo);
    let (status, detections) = service.detect_with_token(photo.clone());
    assert_eq!(status, 200, "{detections}");
    let detections = detections.as_array().unwrap().clone();
    assert!(!detections.is_empty());

    eventually(
        Duration::from_secs(10),
        "the annotation and final status",
        || {
            !annotations.calls_to("/annotations").is_empty()
                && annotations
                    .calls_to(&format!("/api/media/{id}/status"))
                    .len()
                    == 2
        },
    );
    let stored = service.dir.join("images").join(format!("{id}.png"));
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        photo,
        "stored under IMAGES_DIR by id"
    );

    let created = &annotations.calls_to("/api/media")[0];
    assert_eq!(created.method, "POST");
    let record = created.body.clone().unwrap();
    assert_eq!(record["Id"], id);
    assert_eq!(record["Name"], "field.png");
    assert_eq!(record["MediaType"], "Image");
    assert_eq!(record["MediaStatus"], 1);
    assert_eq!(
        Path::new(record["Path"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        stored.canonicalize().unwrap()
    );
    let statuses: Vec<Value> = annotations
        .calls_to(&format!("/api/media/{id}/status"))
        .iter()
        .map(|c| c.body.clone().unwrap()["mediaStatus"].clone())
        .collect();
    assert_eq!(statuses, [json!(2), json!(3)]);

    let annotation = &annotations.calls_to("/annotations")[0];
    let body = annotation.body.clone().unwrap();
    assert_eq!(body["mediaId"], id);
    assert_eq!(body["source"], 0);
    assert_eq!(body["videoTime"], "00:00:00");
    assert_eq!(body["detections"].as_array().unwrap(), &detections);
    assert!(body["image"].as_str().unwrap().len() > 100, "a base64 JPEG");
    for call in annotations.calls() {
        assert_eq!(
            call.header("authorization"),
            Some(TOKEN),
            "{} {}",
            call.method,
            call.path
        );
    }
}

#[test]
fn a_known_media_is_detected_in_the_background_with_events_job_status_and_409() {
    let annotations = stand_in();
    let service = start("job", &annotations, "");
    let images = service.dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let path = images.join("m1.png");
    std::fs::write(&path, png(200, 200, 30)).unwrap();
    annotations.set_media("m1", path.to_str().unwrap());
    // Hold the job at its first step so the second request finds it running.
    annotations.delay("/api/media/m1", Duration::from_millis(1500), Some(1));

    let events = Subscription::open(&service.url("/detect/stream?mediaId=m1"));
    let (status, body, took) = service.start_job("m1");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "started", "mediaId": "m1"}));
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    let (again, detail, _) = service.start_job("m1");
    assert_eq!(again, 409, "{detail}");
    assert!(detail["detail"].as_str().unwrap().contains("m1"));
    assert_eq!(service.job("m1").1["status"], "queued");

    let found = events.wait_for(Duration::from_secs(15), |e| {
        !e["annotations"].as_array().unwrap().is_empty()
    });
    assert_eq!(found["mediaId"], "m1");
    assert_eq!(found["mediaStatus"], "AIProcessing");
    let done = events.wait_for(Duration::from_secs(15), |e| {
        e["mediaStatus"] != "AIProcessing"
    });
    assert_eq!(done["mediaStatus"], "AIProcessed");
    assert_eq!(done["mediaPercent"], 100);
    let (_, job) = service.job("m1");
    assert_eq!(
        (job["status"].as_str(), job["percent"].as_u64()),
        (Some("processed"), Some(100))
    );
    // The user's stored settings were asked for with the token's user.
    eventually(Duration::from_secs(5), "the processed status", || {
        annotations
            .calls_to("/api/media/m1/status")
            .iter()
            .any(|c| c.body.clone().unwrap()["mediaStatus"] == 3)
    });
    // The annotation goes through the outbox, in a task of its own: it may reach the
    // Annotations service after the status does.
    eventually(Duration::from_secs(5), "the annotation", || {
        !annotations.calls_to("/annotations").is_empty()
    });
    assert_eq!(annotations.calls_to("/annotations").len(), 1);
    assert_eq!(service.job("nope").0, 404);
}

#[test]
fn a_media_path_outside_the_media_folders_fails_the_job_and_cancel_stops_one() {
    let annotations = stand_in();
    let service = start("outside", &annotations, "");
    let secret = service.dir.join("secret.png");
    std::fs::write(&secret, png(64, 64, 0)).unwrap();
    annotations.set_media("evil", secret.to_str().unwrap());
    let events = Subscription::open(&service.url("/detect/stream"));
    assert_eq!(service.start_job("evil").0, 200);
    let failed = events.wait_for(Duration::from_secs(10), |e| e["mediaId"] == "evil");
    assert_eq!(failed["mediaStatus"], "Error");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("outside the configured media folders"),
        "{failed}"
    );
    assert_eq!(service.job("evil").1["status"], "failed");

    annotations.set_media("slow", secret.to_str().unwrap());
    annotations.hang("/api/media/slow", Some(1));
    assert_eq!(service.start_job("slow").0, 200);
    let cancelled: Value = service
        .client
        .delete(service.url("/detect/slow"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    let event = events.wait_for(Duration::from_secs(10), |e| e["mediaId"] == "slow");
    assert_eq!(
        (event["mediaStatus"].as_str(), event["error"].as_str()),
        (Some("Error"), Some("cancelled"))
    );
}

#[test]
fn annotations_down_during_a_detection_are_spooled_and_arrive_later() {
    let annotations = stand_in();
    // Two tries fail (the sink is taken to be down); a second later the next round's
    // first try fails too, and its retry passes.
    annotations.fail("/annotations", 503, Some(3));
    let service = start("spool", &annotations, "");
    let events = Subscription::open(&service.url("/detect/stream"));
    let photo = png(300, 200, 50);
    let id = media_id_of(&photo);
    let (status, _) = service.detect_with_token(photo);
    assert_eq!(status, 200, "detection never waits on Annotations");
    let done = events.wait_for(Duration::from_secs(5), |e| {
        e["mediaId"] == id && e["mediaStatus"] != "AIProcessing"
    });
    assert_eq!(done["mediaStatus"], "AIProcessed");
    eventually(
        Duration::from_secs(10),
        "the annotation in the journal",
        || !service.spooled().is_empty(),
    );
    eventually(Duration::from_secs(15), "delivery from the journal", || {
        annotations.calls_to("/annotations").len() >= 4 && service.spooled().is_empty()
    });
    let metrics = service
        .client
        .get(service.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("detections_annotations_spooled_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("detections_annotations_sent_total"),
        "{metrics}"
    );
}

#[test]
fn sigterm_during_a_job_ends_it_with_an_error_spools_and_exits_within_the_grace() {
    let annotations = stand_in();
    annotations.hang("/annotations", None);
    let mut service = start("sigterm", &annotations, "");
    // An annotation stuck in the outbox: the sink hangs.
    assert_eq!(service.detect_with_token(png(100, 100, 70)).0, 200);
    // A job stuck at its first step.
    let images = service.dir.join("images");
    let path = images.join("m2.png");
    std::fs::write(&path, png(64, 64, 1)).unwrap();
    annotations.set_media("m2", path.to_str().unwrap());
    annotations.hang("/api/media/m2", None);
    let events = Subscription::open(&service.url("/detect/stream"));
    assert_eq!(service.start_job("m2").0, 200);
    std::thread::sleep(Duration::from_millis(300));

    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let frames = events.until_end(Duration::from_secs(10));
    let last = frames
        .iter()
        .filter(|f| f.event.is_none())
        .map(|f| f.json())
        .find(|e| e["mediaId"] == "m2")
        .expect("a final event for the running job");
    assert_eq!(last["mediaStatus"], "Error");
    assert_eq!(last["error"], "the service is shutting down");
    let exit = loop {
        if let Some(exit) = service.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(9),
            "still running after the grace"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    assert_eq!(
        service.spooled().len(),
        1,
        "the stuck annotation is still in the journal"
    );
}

#[test]
fn an_integrators_webhook_sink_is_chosen_by_configuration_alone() {
    let hook = stand_in();
    let section = format!(
        "[annotations]\nkind = \"webhook\"\nurl = \"{}/annotations\"\nsecret_header = [\"x-hook-secret\", \"s3cret\"]\n",
        hook.url()
    );
    let service = start_with("webhook", &section, "");
    let photo = png(120, 90, 90);
    let id = media_id_of(&photo);
    assert_eq!(service.detect_with_token(photo).0, 200);
    eventually(Duration::from_secs(10), "the webhook call", || {
        !hook.calls_to("/annotations").is_empty()
    });
    let call = &hook.calls_to("/annotations")[0];
    let body = call.body.clone().unwrap();
    assert_eq!(body["event"], "annotation");
    assert_eq!(body["annotation"]["mediaId"], id);
    assert_eq!(call.header("x-hook-secret"), Some("s3cret"));
    assert_eq!(
        call.header("authorization"),
        None,
        "user tokens stay with us"
    );
    // Media records stay local: nothing else reached the hook.
    assert_eq!(hook.calls().len(), 1);
}

#[test]
fn an_expiring_token_is_refreshed_and_the_users_stored_settings_apply() {
    let annotations = stand_in();
    let service = start("refresh", &annotations, "");
    let images = service.dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let path = images.join("r1.png");
    std::fs::write(&path, png(160, 120, 40)).unwrap();
    annotations.set_media("r1", path.to_str().unwrap());
    // The stored settings drop every fixture box (scores are at most 0.875).
    annotations.set_settings(json!({"ProbabilityThreshold": 0.95}));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiring = format!(
        "Bearer {}",
        standin::jwt(&json!({"nameid": "user-7", "exp": now + 30}))
    );
    let events = Subscription::open(&service.url("/detect/stream?mediaId=r1"));
    let response = service
        .client
        .post(service.url("/detect/r1"))
        .header("Authorization", &expiring)
        .header("x-refresh-token", "refresh-1")
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let done = events.wait_for(Duration::from_secs(15), |e| {
        e["mediaStatus"] != "AIProcessing"
    });
    assert_eq!(done["mediaStatus"], "AIProcessed");

    let refresh = &annotations.calls_to("/auth/refresh")[0];
    assert_eq!(
        refresh.body.clone().unwrap(),
        json!({"refreshToken": "refresh-1"})
    );
    let fresh = format!("Bearer {}", standin::default_token());
    // After the refresh every call carries the new token and the new token's user.
    let settings = annotations.calls_to("/api/users/");
    assert_eq!(settings.len(), 1);
    assert_eq!(settings[0].path, "/api/users/standin-user/ai-settings");
    assert_eq!(settings[0].header("authorization"), Some(fresh.as_str()));
    assert_eq!(
        annotations.calls_to("/api/media/r1")[0].header("authorization"),
        Some(fresh.as_str())
    );
    // The stored threshold applied: nothing was found, so nothing was annotated.
    assert!(annotations.calls_to("/annotations").is_empty());
}
