//! The process around the pipeline: configuration, classes.json, `/health` on the
//! embedded defaults.

mod common;

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

#[test]
fn serve_answers_health_at_once_without_starting_the_engine() {
    let dir = scratch("serve-health");
    let config = config_file(&dir, &assets().join("models"), "azaion.onnx", LOCAL_PORT_0);
    let (mut child, address) = serve(&config);
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

#[test]
fn log_format_json_writes_one_json_object_per_line() {
    let dir = scratch("json-logs");
    let image = dir.join("g.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3]))
        .save(&image)
        .unwrap();
    let config = config_file(&dir, &assets().join("fixtures"), "v8_static_640.onnx", "");
    let output = run(binary()
        .arg("--config")
        .arg(config)
        .env("LOG_FORMAT", "json")
        .arg("detect")
        .arg(&image));
    assert!(output.status.success(), "{}", stderr(&output));
    let logs = stderr(&output);
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "engine enabled"),
        "{logs}"
    );
}
