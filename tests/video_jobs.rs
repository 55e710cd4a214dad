//! Video as a user sees it, against the real binary and the stand-in Loader/Annotations
//! (spec A3, A7, A11, B): background jobs on stored videos (events, job status,
//! annotations with `videoTime`), cancel, broken input, the tracking rule with the real
//! person detector, the inference period, and an upload that breaks off. Clips are made
//! at test time with `ffmpeg`, which is required.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::sse::Subscription;
use common::*;
use serde_json::{Value, json};
use standin::StandIn;

const TOKEN: &str = "Bearer test-jwt-123";

/// Which model the service runs.
#[derive(Clone, Copy)]
enum Model {
    /// `fixtures/v8_static_640.onnx`: the same fixed boxes in any frame, fast.
    Fixture,
    /// `models/azaion.onnx`: the real person detector (YOLOv8, 640).
    Person,
}

fn start(tag: &str, annotations: &StandIn, model: Model) -> Service {
    start_with(tag, annotations, model, "")
}

/// `server` is added to the `[server]` section.
fn start_with(tag: &str, annotations: &StandIn, model: Model, server: &str) -> Service {
    let dir = scratch(tag);
    let (name, models) = match model {
        Model::Fixture => ("v8_static_640.onnx", assets().join("fixtures")),
        Model::Person => ("azaion.onnx", assets().join("models")),
    };
    std::fs::create_dir_all(dir.join("videos")).unwrap();
    let config = media_config(
        &dir,
        &models,
        name,
        server,
        &annotations_at(&annotations.url()),
        "",
    );
    Service::start(dir, &config)
}

impl Service {
    fn videos(&self) -> PathBuf {
        self.dir.join("videos")
    }

    /// `POST /detect/{media_id}` with `settings`: status, body, time to answer.
    fn start_job(&self, media_id: &str, settings: Value) -> (u16, Value, Duration) {
        let started = Instant::now();
        let response = self
            .client
            .post(self.url(&format!("/detect/{media_id}")))
            .header("Authorization", TOKEN)
            .json(&settings)
            .send()
            .unwrap();
        let took = started.elapsed();
        (response.status().as_u16(), response.json().unwrap(), took)
    }

    fn job(&self, media_id: &str) -> Value {
        self.client
            .get(self.url(&format!("/detect/{media_id}")))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    fn healthy(&self) -> bool {
        get(self.base.trim_start_matches("http://"), "/health").0 == 200
    }
}

/// ffmpeg's moving test pattern, 320×240 at 25 fps, for `seconds`.
fn pattern_clip(path: &Path, seconds: u32) {
    let source = format!("testsrc2=s=320x240:r=25:d={seconds}");
    let mut args = vec!["-f", "lavfi", "-i", &source];
    args.extend(H264);
    args.push(path.to_str().unwrap());
    ffmpeg(args);
}

/// `HH:MM:SS` → seconds.
fn seconds_of(video_time: &str) -> u64 {
    video_time
        .split(':')
        .map(|p| p.parse::<u64>().unwrap())
        .fold(0, |acc, v| acc * 60 + v)
}

/// Every event of `id` until its final one (inclusive).
fn events_until_end(events: &Subscription, id: &str, within: Duration) -> Vec<Value> {
    let seen = std::cell::RefCell::new(Vec::new());
    events.wait_for(within, |e| {
        if e["mediaId"] != id {
            return false;
        }
        seen.borrow_mut().push(e.clone());
        e["mediaStatus"] != "AIProcessing"
    });
    seen.into_inner()
}

/// The annotation calls for `id`.
fn annotations_of(stand_in: &StandIn, id: &str) -> Vec<Value> {
    stand_in
        .calls_to("/annotations")
        .into_iter()
        .filter_map(|c| c.body)
        .filter(|b| b["mediaId"] == id)
        .collect()
}

/// The media statuses reported for `id`, in order.
fn statuses_of(stand_in: &StandIn, id: &str) -> Vec<u64> {
    stand_in
        .calls_to(&format!("/api/media/{id}/status"))
        .into_iter()
        .filter_map(|c| c.body?["mediaStatus"].as_u64())
        .collect()
}

#[test]
fn a_stored_video_job_with_a_moving_person_is_annotated_at_its_video_times_and_a_still_one_once() {
    let annotations = stand_in();
    let service = start("vjob-person", &annotations, Model::Person);
    // 8 s at 10 fps; every 10th frame inferred: frames at 0, 1, …, 7 s.
    let moving = service.videos().join("moving.mp4");
    person_clip(&moving, 8, 10, "t*50");
    let still = service.videos().join("still.mp4");
    person_clip(&still, 8, 10, "200");
    annotations.set_media("moving", moving.to_str().unwrap());
    annotations.set_media("still", still.to_str().unwrap());
    let settings = json!({"frame_period_recognition": 10, "frame_recognition_seconds": 1.0});
    let inferred_before = service.counter("detections_video_frames_inferred_total");

    let events = Subscription::open(&service.url("/detect/stream"));
    let (status, body, took) = service.start_job("moving", settings.clone());
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "started", "mediaId": "moving"}));
    assert!(took < Duration::from_secs(1), "answered in {took:?}");

    let seen = events_until_end(&events, "moving", Duration::from_secs(60));
    let (end, progress) = seen.split_last().unwrap();
    assert_eq!(
        (end["mediaStatus"].as_str(), end["mediaPercent"].as_u64()),
        (Some("AIProcessed"), Some(100)),
        "{end}"
    );
    assert!(end["error"].is_null(), "{end}");
    let percents: Vec<u64> = progress
        .iter()
        .map(|e| e["mediaPercent"].as_u64().unwrap())
        .collect();
    assert!(
        percents.windows(2).all(|w| w[0] < w[1]),
        "percent rises: {percents:?}"
    );
    assert!(percents.iter().all(|p| *p < 100), "{percents:?}");
    let accepted: Vec<&Value> = progress
        .iter()
        .filter(|e| !e["annotations"].as_array().unwrap().is_empty())
        .collect();
    assert!(
        accepted.len() >= 2,
        "a moving person yields several annotations: {seen:?}"
    );
    let job = service.job("moving");
    assert_eq!(
        (job["status"].as_str(), job["percent"].as_u64()),
        (Some("processed"), Some(100)),
        "{job}"
    );
    assert_eq!(
        service.counter("detections_video_frames_inferred_total") - inferred_before,
        8
    );

    // One Annotations call per accepted frame, at the frame's time: inferred frames lie
    // on whole seconds, so the frame at k s is reported at k / 8 of the video.
    eventually(Duration::from_secs(10), "every annotation", || {
        annotations_of(&annotations, "moving").len() >= accepted.len()
    });
    let calls = annotations_of(&annotations, "moving");
    assert_eq!(calls.len(), accepted.len());
    let mut times: Vec<u64> = calls
        .iter()
        .map(|c| seconds_of(c["videoTime"].as_str().unwrap()))
        .collect();
    times.sort_unstable();
    assert_eq!(times[0], 0, "the first frame with a person is accepted");
    for (time, event) in times.iter().zip(&accepted) {
        assert!(*time < 8, "{times:?}");
        assert_eq!(
            event["mediaPercent"].as_u64().unwrap(),
            time * 100 / 8,
            "the event at {time} s: {event}"
        );
    }
    assert!(
        times.windows(2).all(|w| w[1] - w[0] >= 1),
        "at least frame_recognition_seconds apart: {times:?}"
    );
    for call in &calls {
        let label = &call["detections"][0]["label"];
        assert_eq!(label, "Normal", "{call}");
    }
    eventually(Duration::from_secs(5), "the processed status", || {
        statuses_of(&annotations, "moving").last() == Some(&3)
    });

    // The same person standing still: one annotation.
    let (status, body, _) = service.start_job("still", settings);
    assert_eq!(status, 200, "{body}");
    let seen = events_until_end(&events, "still", Duration::from_secs(60));
    assert_eq!(seen.last().unwrap()["mediaStatus"], "AIProcessed");
    let accepted = seen
        .iter()
        .filter(|e| !e["annotations"].as_array().unwrap().is_empty())
        .count();
    assert_eq!(accepted, 1, "{seen:?}");
    // The outbox delivers on its own time: wait for it, however slow the machine. One
    // accepted frame is one delivery at most, so waiting for one is enough.
    eventually(Duration::from_secs(10), "the annotation", || {
        !annotations_of(&annotations, "still").is_empty()
    });
    let calls = annotations_of(&annotations, "still");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["videoTime"], "00:00:00");
}

#[test]
fn cancelling_a_video_job_ends_it_with_an_error_and_no_annotation_follows() {
    let annotations = stand_in();
    let service = start("vjob-cancel", &annotations, Model::Person);
    // 20 s at 25 fps, every frame inferred; the person moves 8 px a frame, so every
    // inferred frame is an annotation (frame_recognition_seconds 0).
    let long = service.videos().join("long.mp4");
    person_clip(&long, 20, 25, "mod(t*200,450)");
    annotations.set_media("long", long.to_str().unwrap());
    let events = Subscription::open(&service.url("/detect/stream?mediaId=long"));
    let seen = std::cell::RefCell::new(Vec::new());
    let settings = json!({"frame_period_recognition": 1, "frame_recognition_seconds": 0.0});
    assert_eq!(service.start_job("long", settings).0, 200);
    eventually(Duration::from_secs(60), "two annotations", || {
        annotations_of(&annotations, "long").len() >= 2
    });
    // Mid-inference of a later frame.
    std::thread::sleep(Duration::from_millis(100));
    let answer: Value = service
        .client
        .delete(service.url("/detect/long"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(answer["status"], "cancelled", "{answer}");
    // An annotation already handed to the outbox before the cancel (its HTTP call a
    // few ms away) may still land; give it a moment, then nothing more may come.
    std::thread::sleep(Duration::from_millis(200));
    let sent = annotations_of(&annotations, "long").len();
    let end = events.wait_for(Duration::from_secs(10), |e| {
        seen.borrow_mut().push(e.clone());
        e["mediaStatus"] != "AIProcessing"
    });
    // Every annotation is of a frame accepted (and published) before the end.
    let accepted = seen
        .borrow()
        .iter()
        .filter(|e| !e["annotations"].as_array().unwrap().is_empty())
        .count();
    assert!(
        sent <= accepted,
        "{sent} annotations, {accepted} accepted frames"
    );
    assert_eq!(
        (end["mediaStatus"].as_str(), end["error"].as_str()),
        (Some("Error"), Some("cancelled")),
        "{end}"
    );
    eventually(Duration::from_secs(5), "the Error status", || {
        statuses_of(&annotations, "long").last() == Some(&6)
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        annotations_of(&annotations, "long").len(),
        sent,
        "an annotation after the cancel was answered"
    );
    let job = service.job("long");
    assert!(job["percent"].as_u64().unwrap_or(0) < 100, "{job}");
}

#[test]
fn an_unknown_codec_is_refused_with_its_reason_and_the_service_keeps_serving() {
    let annotations = stand_in();
    let service = start("vjob-codec", &annotations, Model::Fixture);
    // A valid Matroska file whose codec id is garbage: no decoder for it.
    let good = service.dir.join("good.mkv");
    {
        let mut args = vec!["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2"];
        args.extend(&H264[..4]);
        args.push(good.to_str().unwrap());
        ffmpeg(args);
    }
    let content = std::fs::read(&good).unwrap();
    let at = content
        .windows(15)
        .position(|w| w == b"V_MPEG4/ISO/AVC")
        .expect("the codec id");
    let mut bogus = content.clone();
    bogus[at..at + 15].copy_from_slice(b"V_XXXXX/BOGUS/Q");

    let (status, body) = service.detect(bogus.clone(), "bogus.mkv", Some(json!({})));
    assert_eq!(status, 400, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("not a decodable video"), "{detail}");
    assert!(
        detail.contains("codec"),
        "the reason names the codec: {detail}"
    );

    let path = service.videos().join("bogus.mkv");
    std::fs::write(&path, &bogus).unwrap();
    annotations.set_media("bogus", path.to_str().unwrap());
    let events = Subscription::open(&service.url("/detect/stream?mediaId=bogus"));
    assert_eq!(service.start_job("bogus", json!({})).0, 200);
    let end = events.wait_for(Duration::from_secs(20), |e| {
        e["mediaStatus"] != "AIProcessing"
    });
    assert_eq!(end["mediaStatus"], "Error", "{end}");
    let error = end["error"].as_str().unwrap();
    assert!(
        error.contains("not a decodable video") && error.contains("codec"),
        "{error}"
    );
    assert_eq!(service.job("bogus")["status"], "failed");

    // Still serving: the untouched file is detected.
    assert!(service.healthy());
    let (status, body) = service.detect(content, "good.mkv", Some(json!({})));
    assert_eq!(status, 200, "{body}");
    assert!(!body.as_array().unwrap().is_empty());
}

#[test]
fn a_truncated_video_processes_its_decodable_frames_and_says_where_it_stopped() {
    let annotations = stand_in();
    let service = start("vjob-truncated", &annotations, Model::Fixture);
    let whole = service.dir.join("whole.mp4");
    pattern_clip(&whole, 8);
    let content = std::fs::read(&whole).unwrap();
    let half = content[..content.len() / 2].to_vec();
    let path = service.videos().join("half.mp4");
    std::fs::write(&path, &half).unwrap();
    annotations.set_media("half", path.to_str().unwrap());
    let inferred_before = service.counter("detections_video_frames_inferred_total");

    let events = Subscription::open(&service.url("/detect/stream?mediaId=half"));
    assert_eq!(
        service
            .start_job("half", json!({"frame_period_recognition": 5}))
            .0,
        200
    );
    let seen = events_until_end(&events, "half", Duration::from_secs(30));
    let end = seen.last().unwrap();
    assert_eq!(
        (end["mediaStatus"].as_str(), end["mediaPercent"].as_u64()),
        (Some("AIProcessed"), Some(100)),
        "the frames before the cut are the result: {end}"
    );
    let error = end["error"]
        .as_str()
        .expect("an error says where it stopped");
    assert!(error.contains("decoding stopped after"), "{error}");
    assert!(error.contains("partial file"), "{error}");
    assert_eq!(service.job("half")["status"], "processed");
    let inferred = service.counter("detections_video_frames_inferred_total") - inferred_before;
    assert!(
        (2..40).contains(&inferred),
        "some but not all of the 40 frames: {inferred}"
    );
    // The last progress before the end: about half-way, never 100.
    let last = seen[..seen.len() - 1]
        .iter()
        .filter_map(|e| e["mediaPercent"].as_u64())
        .max()
        .unwrap();
    assert!((10..90).contains(&last), "{seen:?}");

    // Synchronously: 200 with what was found before the cut.
    let (status, body) = service.detect(half, "half.mp4", Some(json!({})));
    assert_eq!(status, 200, "{body}");
    assert!(!body.as_array().unwrap().is_empty());
}

#[test]
fn three_hundred_frames_at_period_four_infer_exactly_seventy_five() {
    let annotations = stand_in();
    let service = start("vjob-period", &annotations, Model::Fixture);
    let path = service.dir.join("300.mp4");
    pattern_clip(&path, 12);
    let before = service.counter("detections_video_frames_inferred_total");
    let (status, body) = service.detect(
        std::fs::read(&path).unwrap(),
        "300.mp4",
        Some(json!({"frame_period_recognition": 4})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        service.counter("detections_video_frames_inferred_total") - before,
        75
    );
}

#[test]
fn a_client_that_disconnects_mid_upload_leaves_no_staged_file() {
    let annotations = stand_in();
    let service = start("vjob-disconnect", &annotations, Model::Fixture);
    let path = service.dir.join("clip.mp4");
    pattern_clip(&path, 4);
    let clip = std::fs::read(&path).unwrap();
    let events = Subscription::open(&service.url("/detect/stream"));
    {
        let mut stream = TcpStream::connect(service.base.trim_start_matches("http://")).unwrap();
        write!(
            stream,
            "POST /detect/video HTTP/1.1\r\nHost: test\r\nX-Filename: clip.mp4\r\n\
             Authorization: {TOKEN}\r\nContent-Length: {}\r\n\r\n",
            clip.len()
        )
        .unwrap();
        stream.write_all(&clip[..clip.len() / 2]).unwrap();
        stream.flush().unwrap();
        // The upload is under way: the staged file exists.
        eventually(Duration::from_secs(10), "the staged file", || {
            !partials(&service.videos()).is_empty()
        });
        // The client goes away.
    }
    let end = events.wait_for(Duration::from_secs(20), |e| {
        e["mediaStatus"] != "AIProcessing"
    });
    assert_eq!(end["mediaStatus"], "Error", "{end}");
    eventually(Duration::from_secs(5), "the staged file removed", || {
        partials(&service.videos()).is_empty()
    });
    assert_eq!(
        std::fs::read_dir(service.videos()).unwrap().count(),
        0,
        "nothing kept"
    );
    assert!(annotations.calls_to("/api/media").is_empty(), "no record");
    assert!(service.healthy());
}

fn partials(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "partial"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_client_that_stalls_mid_upload_past_the_request_timeout_leaves_no_staged_file() {
    let annotations = stand_in();
    let service = start_with(
        "vjob-stall",
        &annotations,
        Model::Fixture,
        "request_timeout_secs = 2",
    );
    let path = service.dir.join("clip.mp4");
    pattern_clip(&path, 4);
    let clip = std::fs::read(&path).unwrap();
    let mut stream = TcpStream::connect(service.base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /detect/video HTTP/1.1\r\nHost: test\r\nX-Filename: clip.mp4\r\n\
         Authorization: {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        clip.len()
    )
    .unwrap();
    stream.write_all(&clip[..clip.len() / 2]).unwrap();
    stream.flush().unwrap();
    eventually(Duration::from_secs(10), "the staged file", || {
        !partials(&service.videos()).is_empty()
    });
    // The rest never comes; the service gives up on the request at its timeout.
    let mut answer = [0u8; 12];
    std::io::Read::read_exact(&mut stream, &mut answer).unwrap();
    assert_eq!(
        &answer[9..12],
        b"503",
        "{}",
        String::from_utf8_lossy(&answer)
    );
    eventually(Duration::from_secs(5), "the staged file removed", || {
        partials(&service.videos()).is_empty()
    });
    drop(stream);
    assert!(service.healthy());
}
