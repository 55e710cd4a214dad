//! The stand-in over real HTTP: service routes, recording, control rules, stop.

use std::time::{Duration, Instant};

use reqwest::blocking::{Client, multipart};
use serde_json::{Value, json};

use super::*;

fn start(tag: &str) -> (StandIn, PathBuf) {
    let dir = std::env::temp_dir().join(format!("standin-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let standin = StandIn::start(StandInConfig {
        models_dir: dir.clone(),
        bind: "127.0.0.1:0".parse().unwrap(),
    })
    .unwrap();
    (standin, dir)
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn load(standin: &StandIn, name: &str) -> reqwest::blocking::Response {
    client()
        .post(format!("{}/load/{name}", standin.url()))
        .json(&json!({"filename": name, "folder": "models"}))
        .send()
        .unwrap()
}

fn control(standin: &StandIn, what: &str, body: Value) -> Value {
    let response = client()
        .post(format!("{}/_standin/{what}", standin.url()))
        .json(&body)
        .send()
        .unwrap();
    assert!(response.status().is_success(), "{what}: {response:?}");
    response.json().unwrap()
}

#[test]
fn load_serves_the_file_and_404s_a_missing_one() {
    let (standin, dir) = start("load");
    std::fs::write(dir.join("m.onnx"), b"model bytes").unwrap();
    let found = load(&standin, "m.onnx");
    assert_eq!(found.status(), 200);
    assert_eq!(found.bytes().unwrap().as_ref(), b"model bytes");
    assert_eq!(load(&standin, "none.onnx").status(), 404);
    let no_body = client()
        .post(format!("{}/load/m.onnx", standin.url()))
        .send()
        .unwrap();
    assert_eq!(
        no_body.status(),
        422,
        "the Loader contract needs the JSON body"
    );
}

#[test]
fn upload_stores_the_data_part_where_load_finds_it() {
    let (standin, dir) = start("upload");
    let form = multipart::Form::new()
        .part(
            "data",
            multipart::Part::bytes(b"engine".to_vec()).file_name("e.engine"),
        )
        .text("folder", "models");
    let response = client()
        .post(format!("{}/upload/e.engine", standin.url()))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(std::fs::read(dir.join("e.engine")).unwrap(), b"engine");
    assert_eq!(
        load(&standin, "e.engine").bytes().unwrap().as_ref(),
        b"engine"
    );
    let without_data = client()
        .post(format!("{}/upload/x.engine", standin.url()))
        .multipart(multipart::Form::new().text("folder", "models"))
        .send()
        .unwrap();
    assert_eq!(without_data.status(), 400);
}

#[test]
fn every_call_is_recorded_with_headers_and_json_body() {
    let (standin, _dir) = start("record");
    let response = client()
        .post(format!("{}/annotations?x=1", standin.url()))
        .header("Authorization", "Bearer abc")
        .header("Idempotency-Key", "k-1")
        .json(&json!({"mediaId": "m1", "detections": []}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    load(&standin, "missing.onnx");
    let calls = standin.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, "/annotations");
    assert_eq!(calls[0].query.as_deref(), Some("x=1"));
    assert_eq!(calls[0].header("Authorization"), Some("Bearer abc"));
    assert_eq!(calls[0].idempotency_key(), Some("k-1"));
    assert_eq!(
        calls[0].body,
        Some(json!({"mediaId": "m1", "detections": []}))
    );
    assert_eq!(calls[1].path, "/load/missing.onnx");

    let over_http: Vec<Call> = client()
        .get(format!("{}/_standin/calls?path=/load", standin.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(over_http, vec![calls[1].clone()]);
    assert_eq!(standin.calls().len(), 2, "control calls are not recorded");
}

#[test]
fn media_settings_and_refresh_answer_as_the_annotations_service() {
    let (standin, _dir) = start("annotations");
    let created = client()
        .post(format!("{}/api/media", standin.url()))
        .json(&json!({"Id": "abc", "Name": "a.jpg", "Path": "/data/images/abc.jpg", "MediaType": "Image", "MediaStatus": 1, "UserId": "u"}))
        .send()
        .unwrap();
    assert_eq!(created.status(), 201);
    let status = client()
        .put(format!("{}/api/media/abc/status", standin.url()))
        .json(&json!({"mediaStatus": 2}))
        .send()
        .unwrap();
    assert_eq!(status.status(), 200);
    let media: Value = client()
        .get(format!("{}/api/media/abc", standin.url()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(media["id"], "abc");
    assert_eq!(media["path"], "/data/images/abc.jpg");
    assert_eq!(media["mediaStatus"], 2);
    let unknown = client()
        .get(format!("{}/api/media/nope", standin.url()))
        .send()
        .unwrap();
    assert_eq!(unknown.status(), 404);

    control(
        &standin,
        "media",
        json!({"id": "v1", "path": "/data/videos/v1.mp4"}),
    );
    assert_eq!(standin.media("v1").unwrap()["path"], "/data/videos/v1.mp4");

    let settings = |standin: &StandIn| -> Value {
        client()
            .get(format!("{}/api/users/u1/ai-settings", standin.url()))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(settings(&standin), json!({}));
    control(&standin, "settings", json!({"ProbabilityThreshold": 0.5}));
    assert_eq!(settings(&standin), json!({"ProbabilityThreshold": 0.5}));

    let refresh = |standin: &StandIn| -> Value {
        client()
            .post(format!("{}/auth/refresh", standin.url()))
            .json(&json!({"refreshToken": "r"}))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(refresh(&standin)["token"], default_token());
    control(&standin, "token", json!({"token": "t2"}));
    assert_eq!(refresh(&standin)["token"], "t2");

    control(&standin, "reset", json!({}));
    assert!(standin.calls().is_empty());
    assert_eq!(settings(&standin), json!({}));
}

#[test]
fn fail_rules_count_down_over_http() {
    let (standin, dir) = start("fail");
    std::fs::write(dir.join("m.onnx"), b"m").unwrap();
    let rules = control(
        &standin,
        "fail",
        json!({"path_prefix": "/load", "status": 503, "times": 2}),
    );
    assert_eq!(rules[0]["times"], 2);
    let first = load(&standin, "m.onnx");
    assert_eq!(first.status(), 503);
    assert!(first.json::<Value>().unwrap()["detail"].is_string());
    assert_eq!(load(&standin, "m.onnx").status(), 503);
    assert_eq!(load(&standin, "m.onnx").status(), 200);
    assert!(standin.shared().rules().is_empty());
    assert_eq!(
        standin.calls_to("/load").len(),
        3,
        "failed calls are recorded"
    );
}

#[test]
fn hang_never_answers_until_its_count_runs_out() {
    let (standin, _dir) = start("hang");
    control(
        &standin,
        "hang",
        json!({"path_prefix": "/annotations", "times": 1}),
    );
    let quick = Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let post = || {
        quick
            .post(format!("{}/annotations", standin.url()))
            .json(&json!({}))
            .send()
    };
    let hung = post().expect_err("a hung call times out");
    assert!(hung.is_timeout(), "{hung:?}");
    assert_eq!(post().unwrap().status(), 201);
    assert_eq!(standin.calls_to("/annotations").len(), 2);
}

#[test]
fn delay_slows_the_answer() {
    let (standin, dir) = start("delay");
    std::fs::write(dir.join("m.onnx"), b"m").unwrap();
    control(
        &standin,
        "delay",
        json!({"path_prefix": "/load", "millis": 400, "times": 1}),
    );
    let started = Instant::now();
    assert_eq!(load(&standin, "m.onnx").status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let started = Instant::now();
    load(&standin, "m.onnx");
    assert!(started.elapsed() < Duration::from_millis(400));
}

#[test]
fn stop_refuses_later_connections() {
    let (mut standin, _dir) = start("stop");
    let address = standin.address();
    assert!(std::net::TcpStream::connect(address).is_ok());
    standin.stop();
    let refused = std::net::TcpStream::connect(address).expect_err("refused");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    standin.stop();
}

#[tokio::test]
async fn works_from_inside_an_async_test() {
    let (mut standin, _dir) = start("async");
    standin.fail("/annotations", 500, Some(1));
    let status = reqwest::Client::new()
        .post(format!("{}/annotations", standin.url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 500);
    standin.stop();
}
