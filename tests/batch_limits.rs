//! A model whose input declares a dynamic batch but whose graph runs only at batch 1
//! (`e2e_batch1_only.onnx`: in `[batch, 3, 640, 640]`, out `[1, 300, 6]`, as end-to-end
//! exports with NMS inside come), through the real binary: concurrent photos and a
//! video all get their detections (spec A11 "Batching"), whether the batch is derived
//! from the model's shapes or forced by `[engine] max_batch` (then the batcher falls
//! back to one view per call at run time and says so once).

mod common;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{Service, assets, fixture_entry, media_config, scratch, still_clip};
use serde_json::{Value, json};

const MODEL: &str = "e2e_batch1_only.onnx";
const PHOTOS: usize = 4;
/// The batcher's warning when a model refuses a batch.
const WARNING: &str = "the model refused a batch";

/// One worker and a long delay, so concurrent views would share calls however slow
/// this machine is; logs also to `<dir>/logs`.
fn start(tag: &str, engine_extra: &str) -> Service {
    let dir = scratch(tag);
    let config = media_config(
        &dir,
        &assets().join("fixtures"),
        MODEL,
        "",
        "",
        &format!(
            "[detection]\nmax_running = 8\nbatch_workers = 1\nbatch_delay_ms = 2000\n\
             [logging]\ndir = {:?}\n",
            dir.join("logs").display().to_string()
        ),
    )
    .replacen("[engine]\n", &format!("[engine]\n{engine_extra}"), 1);
    Service::start(dir, &config)
}

/// A 640×640 grey PNG: the model input exactly, so boxes map back without scaling.
fn photo() -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(640, 640, image::Rgb([90, 90, 90]))
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

/// Two seconds of the same 640×640 grey frame, 25 fps.
fn video(dir: &Path) -> Vec<u8> {
    let still = dir.join("still.png");
    std::fs::write(&still, photo()).unwrap();
    still_clip(&still, &dir.join("still.mp4"), 50, None)
}

/// `POST /detect` with settings that let one request batch its views (four frames).
fn detect(service: &Service, bytes: Vec<u8>, name: &str) -> (u16, Value) {
    service.detect(bytes, name, Some(json!({"model_batch_size": 4})))
}

/// The fixture's kept rows (manifest), normalised to the 640×640 frame: `cx, cy, w, h,
/// confidence, class`, by confidence. None overlaps another, so overlap removal keeps all.
fn expected() -> Vec<[f64; 6]> {
    let entry = fixture_entry(MODEL);
    let boxes: Vec<[f64; 6]> = serde_json::from_value(entry["boxes"].clone()).unwrap();
    let kept: Vec<usize> = serde_json::from_value(entry["kept_default"].clone()).unwrap();
    kept.iter()
        .map(|&i| {
            let [x1, y1, x2, y2, score, class] = boxes[i];
            let n = |v: f64| v / 640.0;
            let (cx, cy) = (n(x1 + x2) / 2.0, n(y1 + y2) / 2.0);
            [cx, cy, n(x2 - x1), n(y2 - y1), score, class]
        })
        .collect()
}

fn assert_detections(status: u16, body: &Value) {
    assert_eq!(status, 200, "{body}");
    let got: Vec<[f64; 6]> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            [
                "centerX",
                "centerY",
                "width",
                "height",
                "confidence",
                "classNum",
            ]
            .map(|key| d[key].as_f64().unwrap())
        })
        .collect();
    let want = expected();
    assert!(want.len() >= 3, "the fixture keeps several boxes");
    assert_eq!(got.len(), want.len(), "{body}");
    for (got, want) in got.iter().zip(&want) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "got {got:?}, want {want:?}");
        }
    }
}

/// Four photos at once; each must get the fixture's boxes.
fn concurrent_photos(service: &Arc<Service>) {
    let start = Arc::new(Barrier::new(PHOTOS));
    let answers: Vec<_> = (0..PHOTOS)
        .map(|_| {
            let (service, start) = (Arc::clone(service), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                detect(&service, photo(), "grey.png")
            })
        })
        .collect();
    for answer in answers {
        let (status, body) = answer.join().unwrap();
        assert_detections(status, &body);
    }
}

/// `(engine calls, views)` so far, from `detections_batch_size` in /metrics.
fn calls_and_views(service: &Service) -> (f64, f64) {
    let text = service
        .client
        .get(service.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let metric = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    };
    (
        metric("detections_batch_size_count"),
        metric("detections_batch_size_sum"),
    )
}

/// Every line the service logged to its files.
fn logs(service: &Service) -> String {
    let Ok(files) = std::fs::read_dir(service.dir.join("logs")) else {
        return String::new();
    };
    files
        .filter_map(|f| std::fs::read_to_string(f.ok()?.path()).ok())
        .collect()
}

/// How often `WARNING` was logged, once the log file has caught up (the file writer
/// runs on a thread of its own).
fn warnings(service: &Service, at_least: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let count = logs(service).matches(WARNING).count();
        if count >= at_least || Instant::now() > deadline {
            return count;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_model_that_runs_only_at_batch_one_serves_concurrent_photos_and_a_video() {
    let service = Arc::new(start("batch1-derived", ""));
    concurrent_photos(&service);
    let (status, body) = detect(&service, video(&service.dir), "still.mp4");
    assert_detections(status, &body);

    let (calls, views) = calls_and_views(&service);
    assert!(calls >= PHOTOS as f64, "{calls} calls");
    assert_eq!(calls, views, "the derived batch is 1: one view per call");
    assert_eq!(
        warnings(&service, 0),
        0,
        "nothing to fall back from:\n{}",
        logs(&service)
    );
}

#[test]
fn max_batch_forcing_a_batch_the_model_refuses_falls_back_to_one_view_per_call() {
    let service = Arc::new(start("batch1-forced", "max_batch = 4\n"));
    concurrent_photos(&service);
    let (status, body) = detect(&service, video(&service.dir), "still.mp4");
    assert_detections(status, &body);
    // Later batches go one view per call: no second refusal, no second warning.
    concurrent_photos(&service);
    let (status, body) = detect(&service, video(&service.dir), "still.mp4");
    assert_detections(status, &body);

    let count = warnings(&service, 1);
    std::thread::sleep(Duration::from_millis(300));
    let log = logs(&service);
    assert_eq!(count, 1, "the warning once:\n{log}");
    assert_eq!(log.matches(WARNING).count(), 1, "the warning once:\n{log}");
    let line = log.lines().find(|l| l.contains(WARNING)).unwrap();
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("Dimension of input 0 must be 1"),
        "the reason is logged: {line}"
    );
}
