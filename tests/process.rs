//! The process around the pipeline: configuration, classes.json, `/health` on the
//! embedded defaults.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn print_config_shows_the_effective_configuration() {
    let output = run(binary()
        .arg("--print-config")
        .env("LOADER_URL", "http://loader:1"));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("kind = \"loader\""), "{text}");
    assert!(text.contains("url = \"http://loader:1\""), "{text}");
    assert!(text.contains("[engine]"), "{text}");
}

#[test]
fn an_unknown_key_stops_with_exit_code_2_naming_key_and_file() {
    let dir = scratch("unknown-key");
    let file = dir.join("bad.toml");
    std::fs::write(&file, "[server]\nport = 1\n").unwrap();
    let output = run(binary().arg("--config").arg(&file).arg("--print-config"));
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("port") && message.contains("bad.toml"),
        "{message}"
    );
}

#[test]
fn a_bad_environment_value_stops_with_exit_code_2_naming_the_variable() {
    let output = run(binary()
        .arg("--print-config")
        .env("DETECTIONS_SERVER__SHUTDOWN_GRACE_SECS", "soon"));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("DETECTIONS_SERVER__SHUTDOWN_GRACE_SECS"),
        "{}",
        stderr(&output)
    );
}

fn with_classes(tag: &str, classes: Option<&str>) -> std::process::Output {
    let dir = scratch(tag);
    let path = dir.join("classes.json");
    if let Some(text) = classes {
        std::fs::write(&path, text).unwrap();
    }
    run(binary()
        .current_dir(&dir)
        .env("DETECTIONS_CLASSES__PATH", &path)
        .args(["detect", "nothing.jpg"]))
}

#[test]
fn classes_json_problems_name_the_file_and_the_entry() {
    let missing = with_classes("classes-missing", None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("classes.json"),
        "{}",
        stderr(&missing)
    );

    let bad_json = with_classes("classes-json", Some("[{\"Id\": 0,"));
    assert_eq!(bad_json.status.code(), Some(2));
    assert!(stderr(&bad_json).contains("line"), "{}", stderr(&bad_json));

    let duplicate = with_classes(
        "classes-dup",
        Some(
            r##"[{"Id":0,"Name":"A","Color":"#000000","MaxSizeM":1},{"Id":0,"Name":"B","Color":"#000000","MaxSizeM":1}]"##,
        ),
    );
    assert_eq!(duplicate.status.code(), Some(2));
    let message = stderr(&duplicate);
    assert!(
        message.contains("entry 1") && message.to_lowercase().contains("duplicate"),
        "{message}"
    );

    let colour = with_classes(
        "classes-colour",
        Some(r##"[{"Id":0,"Name":"A","Color":"red","MaxSizeM":1}]"##),
    );
    assert_eq!(colour.status.code(), Some(2));
    assert!(stderr(&colour).contains("entry 0"), "{}", stderr(&colour));
}

/// Starts `serve` on an ephemeral port and returns the child and its address.
fn serve(dir: &std::path::Path) -> (std::process::Child, String) {
    let config = config_file(
        dir,
        &assets().join("models"),
        "azaion.onnx",
        "[server]\nbind = \"127.0.0.1:0\"\n",
    );
    let mut child = binary()
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(at) = line.find("address=") {
            let address = line[at + 8..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, address);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the service did not report its address");
}

fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[test]
fn serve_answers_health_at_once_without_starting_the_engine() {
    let dir = scratch("serve-health");
    let (mut child, address) = serve(&dir);
    let started = Instant::now();
    let (status, body) = get(&address, "/health");
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        health,
        serde_json::json!({"status":"healthy","aiAvailability":"None","errorMessage":null,"engineType":null})
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}
