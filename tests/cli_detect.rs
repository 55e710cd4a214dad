//! `detections detect` on videos and tiled photos: JSON lines on stdout, a progress
//! bar on stderr only when stderr is a terminal.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

#[test]
fn a_video_gives_one_line_per_kept_frame_and_a_pipe_gets_no_progress_bar() {
    let dir = scratch("cli-video");
    let clip = dir.join("walk.mp4");
    // The person moves every frame: the tracking gate keeps frames one second apart.
    person_clip(&clip, 3, 10, "mod(t*200,450)");
    let config = config_file(&dir, &assets().join("models"), "azaion.onnx", "");
    let output = run(binary()
        .arg("--config")
        .arg(&config)
        .args([
            "detect",
            "--settings",
            r#"{"frame_recognition_seconds": 1}"#,
        ])
        .arg(&clip));
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    let frames: Vec<u64> = lines.iter().map(|l| l["frame"].as_u64().unwrap()).collect();
    assert!(
        frames.len() >= 3,
        "one a second over three seconds: {lines:?}"
    );
    assert!(frames.windows(2).all(|w| w[1] >= w[0] + 10), "{frames:?}");
    for line in &lines {
        assert_eq!(line["file"], clip.display().to_string());
        let people = line["detections"].as_array().unwrap();
        assert!(!people.is_empty(), "the person is found: {line}");
        assert!(line["time"].as_f64().is_some(), "{line}");
    }
    // Not a terminal: the log lines only, no bar, no terminal control codes.
    let logs = stderr(&output);
    assert!(
        !logs.contains(" frames") && !logs.contains('\x1b') && !logs.contains('\r'),
        "no bar in a pipe: {logs}"
    );
}

#[test]
fn on_a_terminal_a_video_and_a_tiled_photo_show_their_progress() {
    let dir = scratch("cli-progress");
    let clip = dir.join("still.mp4");
    still_clip(
        &assets().join("photos/bus.jpg"),
        &clip,
        20,
        Some("scale=320:-2"),
    );
    let photo = assets().join("photos/big_5472x3648.jpg");
    let config = config_file(&dir, &assets().join("fixtures"), "v8_static_640.onnx", "");
    let out = dir.join("out.jsonl");
    // `script` gives the program a terminal; stdout goes to a file, so what `script`
    // shows is stderr alone.
    let inner = format!(
        "'{bin}' --config '{config}' detect '{clip}' '{photo}' > '{out}'",
        bin = env!("CARGO_BIN_EXE_detections"),
        config = config.display(),
        clip = clip.display(),
        photo = photo.display(),
        out = out.display(),
    );
    let mut script = Command::new("script");
    // As `binary()` does: no configuration from the test's environment leaks in.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DETECTIONS_") {
            script.env_remove(key);
        }
    }
    let output = script
        .args(["-qec", &inner, "/dev/null"])
        .env("TERM", "xterm")
        .env("COLUMNS", "160")
        .output()
        .expect("`script` (util-linux) runs");
    let terminal = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{terminal}");
    // 20 frames, every 4th analysed (frame_period_recognition's default).
    assert!(
        terminal.contains("5/5 frames"),
        "the video's bar ends at every analysed frame: {terminal}"
    );
    let tiles = terminal
        .split(['\r', '\n'])
        .filter_map(|l| l.split(" tiles").next()?.rsplit(' ').next())
        .rfind(|done| done.contains('/'))
        .unwrap_or("");
    let (done, total) = tiles.split_once('/').unwrap_or(("", ""));
    assert!(
        !total.is_empty() && done == total && total != "1",
        "the tiled photo's bar ends at every tile: {tiles:?} in {terminal}"
    );
    assert!(terminal.contains("still.mp4"), "{terminal}");
    // stdout is still only JSON: one line for the kept video frame, one for the photo.
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(lines.iter().any(|l| l["frame"] == 0), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l["file"] == photo.display().to_string() && l.get("frame").is_none()),
        "{text}"
    );
}
