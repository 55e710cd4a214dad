//! `POST /detect` over real HTTP against the real binary (spec A1, A2): the lazy
//! engine start seen through `/health`, detections as a JSON array, and every client
//! mistake answered with a 4xx and a `{"detail": …}` body.

mod common;

use common::*;
use reqwest::blocking::multipart;
use serde_json::Value;

fn start(tag: &str, extra: &str) -> Service {
    let dir = scratch(tag);
    let config = config_file(
        &dir,
        &assets().join("fixtures"),
        "v8_static_640.onnx",
        &format!("{LOCAL_PORT_0}{extra}"),
    );
    Service::with_file(dir, &config)
}

fn png(w: u32, h: u32) -> Vec<u8> {
    common::png(w, h, 90)
}

/// `POST /detect` of `form`: the status and the JSON answer.
fn detect(service: &Service, form: multipart::Form) -> (u16, Value) {
    service.post_form("/detect", form)
}

fn file_form(bytes: Vec<u8>, name: &str) -> multipart::Form {
    multipart::Form::new().part(
        "file",
        multipart::Part::bytes(bytes).file_name(name.to_string()),
    )
}

#[test]
fn the_first_detection_starts_the_engine_and_answers_an_array() {
    let service = start("http-first", "");
    assert_eq!(service.health()["aiAvailability"], "None");
    let (status, body) = detect(&service, file_form(png(640, 640), "grey.png"));
    assert_eq!(status, 200, "{body}");
    let detections = body.as_array().expect("a JSON array");
    assert_eq!(detections.len(), 3, "{body}");
    let first = &detections[0];
    for key in [
        "centerX",
        "centerY",
        "width",
        "height",
        "classNum",
        "label",
        "confidence",
    ] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    assert_eq!(first["label"], "Normal");
    let health = service.health();
    assert_eq!(health["aiAvailability"], "Enabled");
    assert_eq!(health["engineType"], "onnx");
}

#[test]
fn ready_follows_the_engine_and_classes_lists_classes_json() {
    let service = start("http-ready", "");
    let ready = |s: &Service| {
        s.client
            .get(format!("{}/ready", s.base))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ready(&service), 503, "no engine before the first detection");
    assert_eq!(detect(&service, file_form(png(64, 64), "g.png")).0, 200);
    assert_eq!(ready(&service), 200);
    let classes: Value = service
        .client
        .get(format!("{}/classes", service.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(classes[0]["Id"], 0);
    assert_eq!(classes[0]["Name"], "Normal");
    assert_eq!(classes[1]["Name"], "Fall");
    assert_eq!(classes[1]["Color"], "#e74c3c");
}

#[test]
fn settings_in_the_config_part_apply() {
    let service = start("http-config", "");
    let form =
        file_form(png(640, 640), "grey.png").text("config", r#"{"probabilityThreshold": 0.8}"#);
    let (status, body) = detect(&service, form);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body.as_array().unwrap().len(),
        1,
        "only the 0.875 box is above 0.8: {body}"
    );
}

fn assert_detail(status: u16, body: &Value, want_status: u16, fragment: &str) {
    assert_eq!(status, want_status, "{body}");
    let detail = body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("a detail in {body}"));
    assert!(
        detail.contains(fragment),
        "{detail:?} should mention {fragment:?}"
    );
}

#[test]
fn client_mistakes_are_400_with_a_reason() {
    let service = start("http-mistakes", "");
    let (s, b) = detect(&service, multipart::Form::new().text("config", "{}"));
    assert_detail(s, &b, 400, "file");
    let (s, b) = detect(&service, file_form(Vec::new(), "empty.png"));
    assert_detail(s, &b, 400, "empty");
    let (s, b) = detect(
        &service,
        file_form(b"\x13\x37 not an image at all".repeat(20), "x.jpg"),
    );
    assert_detail(s, &b, 400, "image");
    let (s, b) = detect(
        &service,
        file_form(png(64, 64), "g.png").text("config", "{not json"),
    );
    assert_detail(s, &b, 400, "config");
    let (s, b) = detect(
        &service,
        file_form(png(64, 64), "g.png").text("config", r#"{"probability_threshold": 1.5}"#),
    );
    assert_detail(s, &b, 400, "probability_threshold");
    let (s, b) = detect(
        &service,
        file_form(png(64, 64), "g.png").text("config", r#"{"model_batch_size": "many"}"#),
    );
    assert_detail(s, &b, 400, "model_batch_size");
}

#[test]
fn a_truncated_multipart_body_is_400() {
    let service = start("http-truncated", "");
    let body =
        "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nabc";
    let response = service
        .client
        .post(format!("{}/detect", service.base))
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body(body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let json: Value = response.json().unwrap();
    assert_detail(status, &json, 400, "multipart");
}

#[test]
fn a_500_mb_upload_is_413_while_it_streams_and_memory_does_not_grow() {
    use std::io::{Read, Write};
    let service = start("http-limit", "max_body_bytes = 100000\n");
    // Warm the process up so later growth would be the upload's.
    assert_eq!(service.health()["status"], "healthy");
    let before = rss_kib(service.child.id());
    let address = service.base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    let size = 500 * 1024 * 1024;
    write!(
        stream,
        "POST /detect HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: {size}\r\n\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n\r\n"
    )
    .unwrap();
    // Read while writing: the answer comes long before the body would end.
    let mut reader = stream.try_clone().unwrap();
    let answer = std::thread::spawn(move || {
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buffer) {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buffer[..n]);
            if received.windows(4).any(|w| w == b"\r\n\r\n") && received.ends_with(b"}") {
                break;
            }
        }
        String::from_utf8_lossy(&received).into_owned()
    });
    let chunk = vec![7u8; 64 * 1024];
    let mut sent = 0;
    while sent < size && stream.write_all(&chunk).is_ok() {
        sent += chunk.len();
    }
    let answer = answer.join().unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"detail\""), "{answer}");
    assert!(
        sent < size,
        "refused before the whole body was sent ({sent} bytes)"
    );
    let after = rss_kib(service.child.id());
    assert!(
        after < before + 32 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    // The service is still there for the next client.
    assert_eq!(service.health()["status"], "healthy");
}

/// Resident set size of a process, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn a_model_that_cannot_start_is_503_with_the_state() {
    let dir = scratch("http-nomodel");
    let config = config_file(
        &dir,
        &dir.join("no-models-here"),
        "absent.onnx",
        LOCAL_PORT_0,
    );
    let service = Service::with_file(dir, &config);
    let (s, b) = detect(&service, file_form(png(64, 64), "g.png"));
    assert_detail(s, &b, 503, "Error");
    assert!(b["detail"].as_str().unwrap().contains("absent.onnx"), "{b}");
    assert_eq!(service.health()["aiAvailability"], "Error");
}
