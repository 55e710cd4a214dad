//! Video over HTTP against the real binary (spec A2, A7, A9, A11, B): clips made at test
//! time with `ffmpeg` from a real photo. ffmpeg is required.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::sse::Subscription;
use common::*;
use reqwest::blocking::Body;
use serde_json::Value;
use standin::StandIn;

const TOKEN: &str = "Bearer test-jwt-123";

fn start(tag: &str, annotations: &StandIn) -> (Service, PathBuf) {
    let dir = scratch(tag);
    let config = media_config(
        &dir,
        &assets().join("fixtures"),
        "v8_static_640.onnx",
        "",
        &annotations_at(&annotations.url()),
        "",
    );
    (Service::start(dir.clone(), &config), dir)
}

/// `frames` frames at 25 fps of a still photo, 320 wide, faststart mp4.
fn static_clip(dir: &Path, frames: u32) -> Vec<u8> {
    let photo = assets().join("photos/bus.png");
    still_clip(
        &photo,
        &dir.join("static.mp4"),
        frames,
        Some("scale=320:-2"),
    )
}

#[test]
fn a_static_video_in_post_detect_answers_one_annotation_and_bad_videos_are_400() {
    let annotations = stand_in();
    let (service, dir) = start("video-sync", &annotations);
    let clip = static_clip(&dir, 150);
    let events = Subscription::open(&format!("{}/detect/stream", service.base));
    let (status, body) = service.detect(clip.clone(), "scene.mp4", None);
    assert_eq!(status, 200, "{body}");
    let detections = body.as_array().unwrap();
    assert!(!detections.is_empty(), "the fixture model finds boxes");
    // One accepted annotation: a static scene does not flood the stream.
    let id = domain::media::MediaId::of_content(&clip).to_string();
    let accepted = events.wait_for(Duration::from_secs(30), |e| {
        e["mediaId"] == id.as_str() && !e["annotations"].as_array().unwrap().is_empty()
    });
    assert_eq!(accepted["annotations"].as_array().unwrap(), detections);
    let end = events.wait_for(Duration::from_secs(30), |e| {
        e["mediaId"] == id.as_str() && e["mediaStatus"] != "AIProcessing"
    });
    assert_eq!(
        (end["mediaStatus"].as_str(), end["mediaPercent"].as_u64()),
        (Some("AIProcessed"), Some(100))
    );

    assert_eq!(service.detect(Vec::new(), "empty.mp4", None).0, 400);
    let garbage: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let (status, body) = service.detect(garbage, "random.mp4", None);
    assert_eq!(status, 400, "{body}");
    // Still serving.
    assert_eq!(
        get(service.base.trim_start_matches("http://"), "/health").0,
        200
    );
}

/// A body that trickles out: the first half at once, the rest slowly.
struct Trickle {
    data: Vec<u8>,
    at: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at >= self.data.len() {
            return Ok(0);
        }
        const CHUNK: usize = 4 * 1024;
        if self.at >= self.data.len() / 4 {
            // The last three quarters take about 6 s.
            let chunks = (self.data.len() * 3 / 4 / CHUNK).max(1) as u64;
            std::thread::sleep(Duration::from_millis(6000 / chunks));
        }
        let n = buf.len().min(CHUNK).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[test]
fn a_streamed_upload_is_detected_before_it_ends_and_annotated_with_video_time() {
    let annotations = stand_in();
    let (service, dir) = start("video-upload", &annotations);
    // Two photos, the second from 4 s on. The fixture model finds the same fixed boxes
    // in any image, so nothing it sees changes: one annotation (the change rules
    // themselves are unit-tested in domain::tracking).
    let clip = {
        let a = assets().join("photos/bus.png");
        let b = assets().join("photos/zidane.png");
        let path = dir.join("changes.mp4");
        let mut args = vec![
            "-loop",
            "1",
            "-t",
            "4",
            "-i",
            a.to_str().unwrap(),
            "-loop",
            "1",
            "-t",
            "4",
            "-i",
            b.to_str().unwrap(),
            "-filter_complex",
            "[0]scale=320:240,setsar=1[a];[1]scale=320:240,setsar=1[b];[a][b]concat=n=2:v=1[v]",
            "-map",
            "[v]",
            "-r",
            "25",
        ];
        args.extend(H264);
        args.push(path.to_str().unwrap());
        ffmpeg(args);
        std::fs::read(path).unwrap()
    };
    assert_eq!(
        service
            .client
            .post(format!("{}/detect/video", service.base))
            .body(clip.clone())
            .send()
            .unwrap()
            .status()
            .as_u16(),
        400,
        "X-Filename is required"
    );
    let events = Subscription::open(&format!("{}/detect/stream", service.base));
    let size = clip.len() as u64;
    let uploading = {
        let client = service.client.clone();
        let url = format!("{}/detect/video", service.base);
        let clip = clip.clone();
        std::thread::spawn(move || {
            client
                .post(url)
                .header("X-Filename", "changes.mp4")
                .header("Authorization", TOKEN)
                .header("X-Config", r#"{"frame_recognition_seconds": 1.0}"#)
                .body(Body::sized(Trickle { data: clip, at: 0 }, size))
                .send()
                .unwrap()
        })
    };
    // The first event comes while the body is still being sent.
    let first = events.wait_for(Duration::from_secs(60), |e| {
        e["mediaId"]
            .as_str()
            .unwrap_or_default()
            .starts_with("upload-")
    });
    assert!(
        !uploading.is_finished(),
        "the upload ended before the first event"
    );
    assert_eq!(first["mediaStatus"], "AIProcessing");
    let response = uploading.join().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().unwrap();
    let id = domain::media::MediaId::of_content(&clip).to_string();
    assert_eq!(body["status"], "started");
    assert_eq!(body["mediaId"], id.as_str());
    assert_eq!(body["uploadId"], first["mediaId"]);

    let percents = std::cell::RefCell::new(vec![first["mediaPercent"].as_u64().unwrap()]);
    let end = events.wait_for(Duration::from_secs(120), |e| {
        if e["mediaStatus"] == "AIProcessing" && e["mediaId"] == id.as_str() {
            percents
                .borrow_mut()
                .push(e["mediaPercent"].as_u64().unwrap());
        }
        e["mediaId"] == id.as_str() && e["mediaStatus"] != "AIProcessing"
    });
    assert_eq!(end["mediaStatus"], "AIProcessed", "{end}");
    assert_eq!(end["mediaPercent"], 100);
    let percents = percents.into_inner();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");

    // One annotation, at 00:00:00, with the content id.
    let deadline = Instant::now() + Duration::from_secs(20);
    while annotations.calls_to("/annotations").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let calls = annotations.calls_to("/annotations");
    let times: Vec<String> = calls
        .iter()
        .map(|c| {
            c.body.clone().unwrap()["videoTime"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(times, ["00:00:00"]);
    for call in &calls {
        let body = call.body.clone().unwrap();
        assert_eq!(body["mediaId"], id.as_str());
        assert!(body["image"].as_str().unwrap().len() > 100);
    }
    assert!(dir.join("videos").join(format!("{id}.mp4")).is_file());
}
