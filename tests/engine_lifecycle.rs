//! The engine's start-up and availability (spec A1, A4) as a client sees them over
//! real HTTP, with the real binary fetching its model from a stand-in Loader
//! (`standin`, spec A9) that can be slowed, made to fail, or stopped.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use standin::{StandIn, StandInConfig};

const MODEL: &str = "v8_static_640.onnx";

/// A stand-in Loader serving a copy of the fixture model.
fn loader(dir: &Path) -> StandIn {
    let models = dir.join("loader-models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::copy(assets().join("fixtures").join(MODEL), models.join(MODEL)).unwrap();
    StandIn::start(StandInConfig {
        models_dir: models,
        bind: "127.0.0.1:0".parse().unwrap(),
    })
    .unwrap()
}

/// The service on port 0, its model from the Loader at `loader_url` with `retries`
/// extra tries, and no pause before a retry after a failed start.
fn start(dir: &Path, loader_url: &str, retries: u32) -> Service {
    let text = format!(
        "[server]\nbind = \"127.0.0.1:0\"\n\
         [classes]\npath = {classes:?}\n\
         [model]\nname = {MODEL:?}\nstart_wait_secs = 30\nretry_interval_secs = 0\n\
         [model_source]\nkind = \"loader\"\nurl = {loader_url:?}\n\
         download_dir = {download:?}\ntimeout_secs = 10\nretries = {retries}\n\
         [engine]\nkind = \"onnx\"\nlibrary = {library:?}\n\
         [annotations]\nkind = \"file\"\npath = {annotations:?}\n",
        classes = repo().join("classes.json").display().to_string(),
        download = dir.join("downloads").display().to_string(),
        library = ort_library().display().to_string(),
        annotations = dir.join("annotations.jsonl").display().to_string(),
    );
    let config = dir.join("detections.toml");
    std::fs::write(&config, text).unwrap();
    Service::with_file(dir.to_path_buf(), &config)
}

/// What every test here asks for: `POST /detect` of a grey 64×48 photo.
trait GreyPhoto {
    fn detect_grey(&self) -> (u16, Value);
    fn assert_detects(&self);
    fn assert_enabled(&self);
}

impl GreyPhoto for Service {
    fn detect_grey(&self) -> (u16, Value) {
        self.detect(png(64, 48, 90), "grey.png", None)
    }

    fn assert_detects(&self) {
        let (status, body) = self.detect_grey();
        assert_eq!(status, 200, "{body}");
        assert!(body.is_array(), "{body}");
    }

    fn assert_enabled(&self) {
        let health = self.health();
        assert_eq!(health["aiAvailability"], "Enabled", "{health}");
        assert_eq!(health["engineType"], "onnx", "{health}");
        assert_eq!(health["errorMessage"], Value::Null, "{health}");
    }
}

#[test]
fn health_is_none_until_the_first_detection_then_enabled_with_the_engine_type() {
    let dir = scratch("lifecycle-lazy");
    let loader = loader(&dir);
    let service = start(&dir, &loader.url(), 0);

    for _ in 0..3 {
        assert_eq!(
            service.health(),
            json!({"status":"healthy","aiAvailability":"None","errorMessage":null,"engineType":null})
        );
    }
    assert!(
        loader.calls_to("/load").is_empty(),
        "/health must not start the engine"
    );

    service.assert_detects();
    service.assert_enabled();
    let loads = loader.calls_to("/load");
    assert_eq!(loads.len(), 1, "{loads:?}");
    assert_eq!(loads[0].path, format!("/load/{MODEL}"));
    assert_eq!(
        loads[0].body,
        Some(json!({"filename": MODEL, "folder": "models"}))
    );

    service.assert_detects();
    assert_eq!(
        loader.calls_to("/load").len(),
        1,
        "an enabled engine is not loaded again"
    );
}

#[test]
fn downloading_is_visible_while_the_loader_is_slow() {
    let dir = scratch("lifecycle-downloading");
    let loader = loader(&dir);
    loader.delay("/load", Duration::from_millis(1500), Some(1));
    let service = start(&dir, &loader.url(), 0);

    std::thread::scope(|scope| {
        let detection = scope.spawn(|| service.detect_grey());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while Instant::now() < deadline && !detection.is_finished() {
            let asked = Instant::now();
            let health = service.health();
            assert!(
                asked.elapsed() < Duration::from_millis(500),
                "/health waited {:?} during start-up",
                asked.elapsed()
            );
            let state = health["aiAvailability"].as_str().unwrap().to_string();
            if seen.last() != Some(&state) {
                seen.push(state);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let (status, body) = detection.join().unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(
            seen.iter().any(|s| s == "Downloading"),
            "states seen while the Loader was slow: {seen:?}"
        );
    });
    service.assert_enabled();
}

#[test]
fn a_loader_failure_answers_503_naming_error_and_the_next_request_retries() {
    let dir = scratch("lifecycle-error");
    let loader = loader(&dir);
    loader.fail("/load", 503, Some(1));
    let service = start(&dir, &loader.url(), 0);

    let (status, body) = service.detect_grey();
    assert_eq!(status, 503, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("Error") && detail.contains("503"),
        "the detail names the state and the reason: {body}"
    );
    let health = service.health();
    assert_eq!(health["aiAvailability"], "Error", "{health}");
    assert!(
        health["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("503")),
        "{health}"
    );
    assert_eq!(health["engineType"], Value::Null, "{health}");

    service.assert_detects();
    service.assert_enabled();
    assert_eq!(loader.calls_to("/load").len(), 2);
}

#[test]
fn more_loader_failures_than_retries_is_error_and_fewer_are_absorbed() {
    let dir = scratch("lifecycle-retries");
    let loader = loader(&dir);
    // One try plus one retry, both answered 503: the start fails.
    loader.fail("/load", 503, Some(2));
    let service = start(&dir, &loader.url(), 1);
    let (status, body) = service.detect_grey();
    assert_eq!(status, 503, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("Error")),
        "{body}"
    );
    assert_eq!(loader.calls_to("/load").len(), 2);

    // One 503, then the retry gets the model: the client never notices.
    loader.fail("/load", 503, Some(1));
    service.assert_detects();
    service.assert_enabled();
    assert_eq!(loader.calls_to("/load").len(), 4);
}

#[test]
fn the_loader_going_away_after_start_up_changes_nothing() {
    let dir = scratch("lifecycle-loader-gone");
    let mut loader = loader(&dir);
    let service = start(&dir, &loader.url(), 0);
    service.assert_detects();
    service.assert_enabled();

    let address = loader.address();
    loader.stop();
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "the Loader is gone"
    );
    for _ in 0..2 {
        service.assert_detects();
        service.assert_enabled();
    }
}

#[test]
fn a_model_the_loader_does_not_have_is_error_naming_the_model() {
    let dir = scratch("lifecycle-missing-model");
    let loader = loader(&dir);
    std::fs::remove_file(loader.shared().models_dir().join(MODEL)).unwrap();
    let service = start(&dir, &loader.url(), 3);

    let (status, body) = service.detect_grey();
    assert_eq!(status, 503, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("Error") && detail.contains(MODEL), "{body}");
    assert_eq!(
        loader.calls_to("/load").len(),
        1,
        "a 404 is final: no retries"
    );
    assert_eq!(service.health()["aiAvailability"], "Error");
}
