//! The operational surface over real HTTP against the real binary: availability
//! events on the stream, Prometheus metrics, the OpenAPI document, request ids.

mod common;

use std::time::Duration;

use common::sse::Subscription;
use common::*;
use reqwest::blocking::{Client, multipart};
use serde_json::Value;

struct Service {
    child: std::process::Child,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(tag: &str) -> Service {
    let dir = scratch(tag);
    let config = config_file(
        &dir,
        &assets().join("fixtures"),
        "v8_static_640.onnx",
        &format!(
            "{LOCAL_PORT_0}[outbox]\nspool_dir = {:?}\n",
            dir.join("spool").display().to_string()
        ),
    );
    let (child, address) = serve(&config);
    Service {
        child,
        base: format!("http://{address}"),
    }
}

fn detect(base: &str) -> reqwest::blocking::Response {
    let mut png = Vec::new();
    image::RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    Client::new()
        .post(format!("{base}/detect"))
        .header("x-request-id", "client-chosen-42")
        .multipart(
            multipart::Form::new().part("file", multipart::Part::bytes(png).file_name("a.png")),
        )
        .send()
        .unwrap()
}

#[test]
fn every_engine_transition_is_an_availability_event_and_detections_follow() {
    let service = start("availability");
    let raw = Subscription::open(&format!("{}/detect/stream", service.base));
    let answer = detect(&service.base);
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-request-id"], "client-chosen-42");
    let frames = std::iter::from_fn(|| Some(raw.next_frame(Duration::from_secs(10))))
        .take_while(|f| f.event.as_deref() == Some("availability") || f.event.is_none())
        .take(5)
        .collect::<Vec<_>>();
    let states: Vec<String> = frames
        .iter()
        .filter(|f| f.event.as_deref() == Some("availability"))
        .map(|f| f.json()["aiAvailability"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["Downloading", "Converting", "Enabled"]);
    let enabled = frames[2].json();
    assert_eq!(enabled["engineType"], "onnx");
    assert_eq!(enabled["status"], "healthy");
    let ids: Vec<u64> = frames
        .iter()
        .map(|f| f.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[1] > w[0]), "ids increase: {ids:?}");
    let found = frames[3].json();
    assert_eq!(found["mediaStatus"], "AIProcessing");
    assert!(!found["annotations"].as_array().unwrap().is_empty());
    let processed = frames[4].json();
    assert_eq!(processed["mediaStatus"], "AIProcessed");
    assert_eq!(processed["mediaPercent"], 100);
}

#[test]
fn metrics_cover_requests_engine_inference_and_delivery() {
    let service = start("metrics");
    let _stream = Subscription::open(&format!("{}/detect/stream", service.base));
    assert_eq!(detect(&service.base).status(), 200);
    let response = Client::new()
        .get(format!("{}/metrics", service.base))
        .send()
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().unwrap();
    for metric in [
        "detections_http_requests_total{method=\"POST\",route=\"/detect\",status=\"200\"} 1",
        "detections_http_request_duration_seconds_bucket",
        "detections_frame_seconds_count 1",
        "detections_active_inferences 0",
        "detections_engine_state 200",
        "detections_sse_clients 1",
    ] {
        assert!(text.contains(metric), "{metric} missing in:\n{text}");
    }
}

#[test]
fn the_openapi_document_covers_every_route() {
    let service = start("openapi");
    let doc: Value = Client::new()
        .get(format!("{}/openapi.json", service.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/ready", "get"),
        ("/classes", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/detect", "post"),
        ("/detect/stream", "get"),
        ("/detect/video", "post"),
        ("/detect/{media_id}", "post"),
        ("/detect/{media_id}", "get"),
        ("/detect/{media_id}", "delete"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "DetectionDto",
        "DetectionEvent",
        "HealthBody",
        "Detail",
        "JobBody",
        "Started",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
    // A response without a client id still gets one.
    let health = Client::new()
        .get(format!("{}/health", service.base))
        .send()
        .unwrap();
    assert!(!health.headers()["x-request-id"].is_empty());
}

#[test]
fn the_request_time_limit_never_cuts_an_event_stream() {
    let dir = scratch("sse-timeout");
    let config = config_file(
        &dir,
        &assets().join("fixtures"),
        "v8_static_640.onnx",
        &format!(
            "[server]\nbind = \"127.0.0.1:0\"\nrequest_timeout_secs = 1\n[outbox]\nspool_dir = {:?}\n",
            dir.join("spool").display().to_string()
        ),
    );
    let (child, address) = serve(&config);
    let service = Service {
        child,
        base: format!("http://{address}"),
    };
    let stream = Subscription::open(&format!("{}/detect/stream", service.base));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(detect(&service.base).status(), 200);
    let done = stream.wait_for(Duration::from_secs(10), |e| {
        e["mediaStatus"] == "AIProcessed"
    });
    assert_eq!(done["mediaPercent"], 100);
}
