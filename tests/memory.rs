//! Memory that stays bounded when uploads flood in (ARCHITECTURE.md "Memory plan"): the
//! real binary, its resident memory read from /proc while clients upload.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const MIB: u64 = 1024 * 1024;

/// A /proc/<pid>/status field, in bytes.
fn status_bytes(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Samples the process's resident memory every 10 ms until stopped; the highest seen.
struct PeakRss {
    stop: Arc<AtomicBool>,
    sampler: thread::JoinHandle<u64>,
}

impl PeakRss {
    fn watch(pid: u32) -> PeakRss {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let sampler = thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(status_bytes(pid, "VmRSS:"));
                thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        PeakRss { stop, sampler }
    }

    fn peak(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap()
    }
}

fn start(tag: &str, models: &std::path::Path, model: &str, server: &str) -> Service {
    let dir = scratch(tag);
    let config = media_config(
        &dir,
        models,
        model,
        server,
        "[annotations]\nkind = \"file\"\npath = \"annotations.jsonl\"",
        "",
    );
    Service::start(dir, &config)
}

#[test]
fn a_flood_of_large_uploads_is_shed_within_the_memory_budget() {
    let service = Arc::new(start(
        "memory-flood",
        &assets().join("fixtures"),
        "v8_static_640.onnx",
        "body_memory_budget_bytes = 268435456\n",
    ));
    let pid = service.child.id();
    // Warm: the engine loaded, one photo detected.
    let photo = png(640, 640, 120);
    assert_eq!(service.detect(photo.clone(), "warm.png", None).0, 200);
    thread::sleep(Duration::from_millis(300));
    let idle = status_bytes(pid, "VmRSS:");

    let health = {
        let service = Arc::clone(&service);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = thread::spawn(move || {
            let address = service.base.trim_start_matches("http://").to_string();
            let mut slowest = Duration::ZERO;
            while !flag.load(Ordering::Relaxed) {
                let asked = Instant::now();
                assert_eq!(get(&address, "/health").0, 200);
                slowest = slowest.max(asked.elapsed());
                thread::sleep(Duration::from_millis(50));
            }
            slowest
        });
        (stop, handle)
    };
    let rss = PeakRss::watch(pid);
    // 30 clients at once, 90 MiB each of something that is no image.
    // One buffer for all clients (a copy each would be 2.7 GB in this process).
    let body: &'static [u8] = Vec::leak(vec![7u8; (90 * MIB) as usize]);
    let clients: Vec<_> = (0..30)
        .map(|i| {
            let service = Arc::clone(&service);
            thread::spawn(move || {
                let form = reqwest::blocking::multipart::Form::new().part(
                    "file",
                    reqwest::blocking::multipart::Part::bytes(body)
                        .file_name(format!("blob-{i}.bin")),
                );
                let response = service
                    .client
                    .post(service.url("/detect"))
                    .multipart(form)
                    .send()
                    .unwrap_or_else(|e| panic!("client {i}: no answer: {e}"));
                let status = response.status().as_u16();
                let retry_after = response.headers().get("retry-after").is_some();
                let body = response.text().unwrap_or_default();
                (status, retry_after, body)
            })
        })
        .collect();
    let answers: Vec<(u16, bool, String)> =
        clients.into_iter().map(|c| c.join().unwrap()).collect();
    let peak = rss.peak();
    health.0.store(true, Ordering::Relaxed);
    let slowest_health = health.1.join().unwrap();

    let shed = answers.iter().filter(|a| a.0 == 503).count();
    for (status, retry_after, body) in &answers {
        assert!(
            *status == 400 || (*status == 503 && *retry_after),
            "{status} (Retry-After: {retry_after}): {body}"
        );
    }
    assert!(shed > 0, "nothing was shed: {answers:?}");
    assert!(answers.iter().any(|a| a.0 == 400), "nothing was admitted");
    let margin = 96 * MIB;
    eprintln!(
        "idle {} MiB, peak {} MiB over 30 × 90 MiB uploads ({shed} shed), slowest /health {slowest_health:?}",
        idle / MIB,
        peak / MIB
    );
    assert!(
        peak < idle + 256 * MIB + margin,
        "peak RSS {} MiB, idle {} MiB",
        peak / MIB,
        idle / MIB
    );
    assert!(
        slowest_health < Duration::from_secs(1),
        "/health took {slowest_health:?}"
    );
    assert!(service.counter("detections_requests_shed_total") >= shed as u64);
    // Right after the flood, a photo is detected.
    let (status, body) = service.detect(photo, "after.png", None);
    assert_eq!(status, 200, "{body}");
    assert!(!body.as_array().unwrap().is_empty());
}

#[test]
fn a_large_video_in_post_detect_streams_to_disk_not_memory() {
    let service = start(
        "memory-video",
        &assets().join("fixtures"),
        "v8_static_640.onnx",
        "",
    );
    let pid = service.child.id();
    // 400 MiB of raw 640×360 frames (345,600 bytes each in yuv420p): 1214 frames.
    let clip = service.dir.join("big.avi");
    ffmpeg([
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=640x360:rate=25",
        "-frames:v",
        "1214",
        "-c:v",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().unwrap(),
    ]);
    let size = std::fs::metadata(&clip).unwrap().len();
    assert!(size > 400 * MIB, "{size}");
    assert_eq!(service.detect(png(640, 640, 120), "warm.png", None).0, 200);
    thread::sleep(Duration::from_millis(300));
    let idle = status_bytes(pid, "VmRSS:");
    let rss = PeakRss::watch(pid);
    // Streamed from the file, so the client holds none of it either.
    let form = reqwest::blocking::multipart::Form::new()
        .part(
            "file",
            reqwest::blocking::multipart::Part::file(&clip).unwrap(),
        )
        .text(
            "config",
            json!({"frame_period_recognition": 100}).to_string(),
        );
    let (status, body) = service.post_form("/detect", form);
    let peak = rss.peak();
    eprintln!(
        "idle {} MiB, peak {} MiB over a {} MiB video",
        idle / MIB,
        peak / MIB,
        size / MIB
    );
    assert_eq!(status, 200, "{body}");
    assert!(!body.as_array().unwrap().is_empty(), "{body}");
    assert!(
        peak < idle + 64 * MIB,
        "RSS rose from {} MiB to {} MiB",
        idle / MIB,
        peak / MIB
    );
}

#[test]
fn a_video_whose_frames_do_not_fit_the_budget_is_refused_as_busy() {
    // 16 MiB for everything in flight: a 1280×720 video holds 7 frames of 2.6 MiB at the
    // default batch of 1 (too many), a 320×240 one 7 of 225 KiB.
    let service = start(
        "memory-frames",
        &assets().join("fixtures"),
        "v8_static_640.onnx",
        "body_memory_budget_bytes = 16777216\n",
    );
    let clip = |w: u32, h: u32| {
        let path = service.dir.join(format!("clip_{w}x{h}.mp4"));
        ffmpeg([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc=size={w}x{h}:rate=25"),
            "-frames:v",
            "10",
            "-pix_fmt",
            "yuv420p",
            path.to_str().unwrap(),
        ]);
        std::fs::read(path).unwrap()
    };
    let (status, body) = service.detect(clip(1280, 720), "hd.mp4", None);
    assert_eq!(status, 503, "{body}");
    let (status, body) = service.detect(clip(320, 240), "small.mp4", None);
    assert_eq!(status, 200, "{body}");
    // Nothing stays reserved: the large one is refused again the same way, not worse.
    let (status, _) = service.detect(clip(1280, 720), "hd.mp4", None);
    assert_eq!(status, 503);
}
