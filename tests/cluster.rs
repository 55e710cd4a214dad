//! Many replicas, one service (`[cluster] kind = "nats"`): two real `detections`
//! processes on one real NATS JetStream server (`nats-server`, which `.ci/run`
//! installs from Debian), talked to over real HTTP.

mod common;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::sse::{Frame, Subscription};
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "Bearer test-jwt-123";

/// A JetStream server on a free port, killed when dropped.
struct Nats {
    child: Child,
    url: String,
    /// The monitoring port (`/jsz`), where one is open.
    monitor: Option<u16>,
    /// The server's name in its cluster (`-n`), where it has one.
    name: String,
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nats {
    /// Stops the server the way an operator does (SIGTERM), waiting for it to exit.
    fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap();
    }

    /// The name of the server leading `stream`, as this server's monitoring says.
    fn leader_of(&self, stream: &str) -> Option<String> {
        let monitor = self.monitor?;
        let jsz: Value =
            reqwest::blocking::get(format!("http://127.0.0.1:{monitor}/jsz?streams=true"))
                .ok()?
                .json()
                .ok()?;
        jsz["account_details"]
            .as_array()?
            .iter()
            .flat_map(|account| {
                account["stream_detail"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|detail| detail["name"] == stream)?["cluster"]["leader"]
            .as_str()
            .map(str::to_string)
    }

    fn start(dir: &Path) -> Nats {
        Nats::start_on(dir, free_port())
    }

    /// A server on `port` keeping its streams in `dir` (so a restart finds them).
    fn start_on(dir: &Path, port: u16) -> Nats {
        let mut command = Command::new("nats-server");
        command
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.join("jetstream"));
        Nats::spawn(command, port, None, "")
    }

    fn spawn(mut command: Command, port: u16, monitor: Option<u16>, name: &str) -> Nats {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "`nats-server` is required for the cluster tests (apt-get install nats-server)",
            );
        let nats = Nats {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            monitor,
            name: name.to_string(),
        };
        eventually(Duration::from_secs(10), "nats-server listening", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        nats
    }
}

/// Three servers of one JetStream cluster on 127.0.0.1, each with its own store under
/// `dir`; any of them can be started again on its ports and store.
struct NatsCluster {
    dir: std::path::PathBuf,
    /// Client, route and monitoring port of each server.
    ports: Vec<(u16, u16, u16)>,
}

impl NatsCluster {
    fn new(dir: &Path) -> NatsCluster {
        NatsCluster {
            dir: dir.to_path_buf(),
            ports: (0..3)
                .map(|_| (free_port(), free_port(), free_port()))
                .collect(),
        }
    }

    fn start(&self, index: usize) -> Nats {
        let routes = self
            .ports
            .iter()
            .map(|(_, route, _)| format!("nats://127.0.0.1:{route}"))
            .collect::<Vec<_>>()
            .join(",");
        let (client, route, monitor) = self.ports[index];
        let name = format!("nats-{}", index + 1);
        let mut command = Command::new("nats-server");
        command
            .args(["-js", "-a", "127.0.0.1", "-p", &client.to_string()])
            .args(["-n", &name, "--cluster_name", "detections"])
            .args(["--cluster", &format!("nats://127.0.0.1:{route}")])
            .args(["--routes", &routes, "-m", &monitor.to_string(), "-sd"])
            .arg(self.dir.join(&name));
        Nats::spawn(command, client, Some(monitor), &name)
    }

    fn start_all(&self) -> Vec<Nats> {
        (0..3).map(|index| self.start(index)).collect()
    }

    /// The comma-separated list a replica connects to.
    fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|(client, _, _)| format!("nats://127.0.0.1:{client}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A replica named `name` on the broker at `nats_url`: its own configuration and
/// journal, the media folders every replica shares.
fn replica(name: &str, nats_url: &str, media: &Path, annotations: &str) -> Service {
    replica_with(name, nats_url, media, annotations, "", FIXTURE)
}

/// The model a replica runs: its file name and folder.
type Model = (&'static str, &'static str);
/// The same fixed boxes in any frame, fast.
const FIXTURE: Model = ("v8_static_640.onnx", "fixtures");
/// The real person detector (YOLOv8, 640): slow enough for a job to be caught running.
const PERSON: Model = ("azaion.onnx", "models");

/// Held by the tests whose replicas run the real model through videos: two of them at
/// once on a 2-core machine make every frame several times slower than the waits
/// here allow for.
static REAL_MODEL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn real_model_turn() -> std::sync::MutexGuard<'static, ()> {
    REAL_MODEL.lock().unwrap_or_else(|p| p.into_inner())
}

/// [`replica`] with `extra` lines in `[cluster]`; deliveries are retried fast.
fn replica_with(
    name: &str,
    nats_url: &str,
    media: &Path,
    annotations: &str,
    extra: &str,
    (model, models): Model,
) -> Service {
    // Under the test's own folder: concurrent tests name their replicas alike, and a
    // shared journal or spool would deliver one test's annotations in another.
    let dir = media.join("replicas").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "{LOCAL_PORT_0}\n\
         [classes]\npath = {classes:?}\n\
         [model]\nname = {model:?}\n\
         [model_source]\nkind = \"local\"\ndir = {models:?}\n\
         [engine]\nkind = \"onnx\"\nlibrary = {library:?}\n\
         {annotations}\n\
         [media]\nimages_dir = {images:?}\nvideos_dir = {videos:?}\n\
         [outbox]\nspool_dir = {spool:?}\nfirst_delay_ms = 100\nmax_delay_ms = 400\nspool_retry_secs = 1\n\
         [cluster]\nkind = \"nats\"\nurl = {nats_url:?}\nreplica = {name:?}\n{extra}\n",
        classes = repo().join("classes.json").display().to_string(),
        models = assets().join(models).display().to_string(),
        library = ort_library().display().to_string(),
        images = media.join("images").display().to_string(),
        videos = media.join("videos").display().to_string(),
        spool = dir.join("spool").display().to_string(),
    );
    Service::start(dir, &config)
}

/// Confirmed deliveries from the shared annotation consumer, as `/metrics` counts them.
const DELIVERED: &str = "detections_broker_annotations_delivered_total";

/// Frames of `subscription` until the detection event that satisfies `last`.
fn frames_until(subscription: &Subscription, last: impl Fn(&Value) -> bool) -> Vec<Frame> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut frames = Vec::new();
    loop {
        let frame = subscription.next_frame(deadline.saturating_duration_since(Instant::now()));
        let done = frame.event.is_none() && last(&frame.json());
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

fn ids(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f.event.is_none())
        .map(|f| f.id.as_deref().unwrap().parse().unwrap())
        .collect()
}

/// `POST /detect/{media_id}`: the status, and the body (which names a refusal).
fn start_job(service: &Service, media_id: &str, settings: Value) -> (u16, Value) {
    let response = service
        .client
        .post(service.url(&format!("/detect/{media_id}")))
        .header("Authorization", TOKEN)
        .json(&settings)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn job(service: &Service, media_id: &str) -> (u16, Value) {
    let response = service
        .client
        .get(service.url(&format!("/detect/{media_id}")))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn two_replicas_share_one_event_stream_and_one_job_registry() {
    let _turn = real_model_turn();
    let dir = scratch("cluster-shared");
    let nats = Nats::start(&dir);
    let annotations = stand_in();
    let section = annotations_at(&annotations.url());
    let a = replica_with("a", &nats.url, &dir, &section, "", PERSON);
    // A list of servers, the first one down: the client finds the one that answers.
    let servers = format!("nats://127.0.0.1:{},{}", free_port(), nats.url);
    let b = replica_with("b", &servers, &dir, &section, "", PERSON);
    for (service, name) in [(&a, "a"), (&b, "b")] {
        eventually(Duration::from_secs(10), "the broker connected", || {
            service.health()["broker"] == "connected"
        });
        assert_eq!(service.health()["replica"], name);
    }

    // One stream: what replica A detects, a subscriber of replica B sees, numbered by
    // the broker.
    let on_b = Subscription::open(&b.url("/detect/stream"));
    let photo = std::fs::read(assets().join("photos/bus.jpg")).unwrap();
    let (status, body) = a.detect(photo, "bus.jpg", None);
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.as_array().unwrap().is_empty(),
        "people on the bus: {body}"
    );
    let seen = frames_until(&on_b, |e| e["mediaStatus"] == "AIProcessed");
    let seen_ids = ids(&seen);
    assert!(seen_ids.len() >= 2, "{seen:?}");
    assert!(seen_ids.windows(2).all(|w| w[0] < w[1]), "{seen_ids:?}");
    let media = seen.last().unwrap().json()["mediaId"].clone();
    // A's engine started for that photo; B's subscriber is told whose engine it is.
    let engine_of_a = seen
        .iter()
        .filter(|f| f.event.as_deref() == Some("availability"))
        .map(Frame::json)
        .find(|e| e["aiAvailability"] == "Enabled")
        .expect("A's engine enabled, on B's stream");
    assert_eq!(engine_of_a["replica"], "a", "{engine_of_a}");

    // `Last-Event-ID` means the same on every replica: resuming on A after the first
    // event gets every later one once, in order.
    let first = seen_ids[0].to_string();
    let on_a = Subscription::open_after(&a.url("/detect/stream"), Some(&first));
    let resumed = frames_until(&on_a, |e| {
        e["mediaStatus"] == "AIProcessed" && e["mediaId"] == media
    });
    assert_eq!(ids(&resumed), seen_ids[1..].to_vec());

    // One registry: a job running on A is 409 on B, and B shows and cancels it.
    let long = dir.join("videos").join("long.mp4");
    std::fs::create_dir_all(long.parent().unwrap()).unwrap();
    person_clip(&long, 20, 25, "mod(t*200,450)");
    annotations.set_media("long", long.to_str().unwrap());
    let long_events = Subscription::open(&b.url("/detect/stream?mediaId=long"));
    let every_frame = json!({"frame_period_recognition": 1});
    let (status, body) = start_job(&a, "long", every_frame.clone());
    assert_eq!(status, 200, "{body}");
    let (status, body) = start_job(&b, "long", every_frame);
    assert_eq!(status, 409, "{body}");
    let (status, view) = job(&b, "long");
    assert_eq!(status, 200);
    assert!(
        ["queued", "running"].contains(&view["status"].as_str().unwrap()),
        "{view}"
    );
    let cancelled: Value = b
        .client
        .delete(b.url("/detect/long"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    // At the next frame boundary: the frames already with the engine finish first.
    let end = long_events.wait_for(Duration::from_secs(60), |e| {
        e["mediaStatus"] != "AIProcessing"
    });
    assert_eq!(
        (end["mediaStatus"].as_str(), end["error"].as_str()),
        (Some("Error"), Some("cancelled")),
        "{end}"
    );
    assert_eq!(job(&a, "long").1["status"], "cancelled");
}

#[test]
fn a_replica_without_its_broker_is_not_ready_and_says_why() {
    let dir = scratch("cluster-nobroker");
    let nowhere = format!("nats://127.0.0.1:{}", free_port());
    let file = format!(
        "[annotations]\nkind = \"file\"\npath = {:?}\n",
        dir.join("annotations.jsonl").display().to_string()
    );
    let service = replica("lonely", &nowhere, &dir, &file);
    let health = service.health();
    assert_eq!(
        (health["replica"].as_str(), health["broker"].as_str()),
        (Some("lonely"), Some("unreachable")),
        "{health}"
    );
    // Even with a usable engine, a replica that cannot publish is out of rotation.
    let (status, _) = service.detect(png(64, 48, 90), "p.png", None);
    assert_eq!(status, 200);
    let ready = service.client.get(service.url("/ready")).send().unwrap();
    assert_eq!(ready.status().as_u16(), 503);
}

/// The `Idempotency-Key` of every `POST /annotations` the stand-in saw for `media`.
fn annotation_keys(stand_in: &standin::StandIn, media: &str) -> Vec<String> {
    stand_in
        .calls_to("/annotations")
        .into_iter()
        .filter(|c| c.body.as_ref().is_some_and(|b| b["mediaId"] == media))
        .map(|c| {
            c.headers
                .get("idempotency-key")
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// Waits until every one of `services` is on the broker.
fn connected(services: &[&Service], within_secs: u64) {
    for service in services {
        eventually(
            Duration::from_secs(within_secs),
            "the broker connected",
            || service.health()["broker"] == "connected",
        );
    }
}

/// `POST /detect` of a photo with a bearer token on `service` (the fixture model
/// finds boxes in any photo, so an annotation is accepted).
fn detect_with_token(service: &Service) {
    detect_shade_with_token(service, 90);
}

/// [`detect_with_token`] of a photo of its own (one grey level per `shade`).
fn detect_shade_with_token(service: &Service, shade: u8) {
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(png(64, 48, shade)).file_name("p.png"),
    );
    let response = service
        .client
        .post(service.url("/detect"))
        .header("Authorization", TOKEN)
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let detections: Value = response.json().unwrap();
    assert!(!detections.as_array().unwrap().is_empty(), "{detections}");
}

#[test]
fn an_annotation_accepted_by_a_replica_that_dies_is_delivered_by_another() {
    let dir = scratch("cluster-crash");
    let nats = Nats::start(&dir);
    let annotations = stand_in();
    let section = annotations_at(&annotations.url());
    let fast = "ack_wait_secs = 2\nmax_deliveries = 1000";
    let mut a = replica_with("a", &nats.url, &dir, &section, fast, FIXTURE);
    let b = replica_with("b", &nats.url, &dir, &section, fast, FIXTURE);
    connected(&[&a, &b], 10);
    // The receiver is down: the annotation A accepted waits on the broker.
    annotations.fail("/annotations", 503, None);
    detect_with_token(&a);
    eventually(Duration::from_secs(20), "a failed delivery", || {
        !annotations.calls_to("/annotations").is_empty()
    });
    let key = annotations.calls_to("/annotations")[0].headers["idempotency-key"].clone();
    let media = annotations.calls_to("/annotations")[0]
        .body
        .as_ref()
        .unwrap()["mediaId"]
        .as_str()
        .unwrap()
        .to_string();
    // A dies without a word; the receiver comes back; B delivers what A accepted.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    annotations.reset();
    eventually(Duration::from_secs(30), "the delivery by B", || {
        !annotation_keys(&annotations, &media).is_empty()
    });
    // Delivered once (acknowledged after the 2xx), under the key it was accepted with.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(annotation_keys(&annotations, &media), vec![key]);
    drop(b);
}

#[test]
fn annotations_journaled_while_the_broker_was_down_reach_the_stream_when_it_returns() {
    let dir = scratch("cluster-drain");
    let port = free_port();
    let mut nats = Nats::start_on(&dir, port);
    let annotations = stand_in();
    let section = annotations_at(&annotations.url());
    let a = replica_with("a", &nats.url, &dir, &section, "", FIXTURE);
    connected(&[&a], 10);
    // Warm: the streams exist and the engine runs.
    detect_with_token(&a);
    // Delivered and its acknowledgement confirmed by the broker: the receiver's 2xx
    // alone is not enough, a broker that dies before the ack sends it again (at
    // least once, same key) and this test counts exact deliveries.
    eventually(
        Duration::from_secs(20),
        "the first annotation delivered and acknowledged",
        || a.counter(DELIVERED) == 1,
    );
    assert_eq!(annotations.calls_to("/annotations").len(), 1);
    // The broker goes away (stopped, so what it confirmed is on its disk): photos
    // still get their answer, their annotations wait in this replica's journal, and
    // the replica leaves the rotation.
    nats.stop();
    eventually(Duration::from_secs(10), "the broker unreachable", || {
        a.health()["broker"] == "unreachable"
    });
    let ready = a
        .client
        .get(a.url("/ready"))
        .send()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(ready, 503);
    for _ in 0..3 {
        detect_with_token(&a);
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        annotations.calls_to("/annotations").len(),
        1,
        "nothing bypasses the broker"
    );
    // The broker returns: the journal moves them into the stream, the consumer
    // delivers them, each once.
    nats = Nats::start_on(&dir, port);
    eventually(
        Duration::from_secs(60),
        "the journaled annotations delivered",
        || annotations.calls_to("/annotations").len() >= 4,
    );
    std::thread::sleep(Duration::from_secs(2));
    let keys: std::collections::HashSet<String> = annotations
        .calls_to("/annotations")
        .iter()
        .map(|c| c.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys.len(), 4, "four annotations, four keys");
    assert_eq!(annotations.calls_to("/annotations").len(), 4, "each once");
    let metrics = a
        .client
        .get(a.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("detections_broker_annotations_stored_total") && l.ends_with(" 4")
        ),
        "all four went through the broker:\n{metrics}"
    );
    drop(nats);
}

#[test]
fn a_refused_annotation_becomes_a_dead_letter_that_can_be_replayed() {
    let dir = scratch("cluster-dead");
    let nats = Nats::start(&dir);
    let annotations = stand_in();
    let section = annotations_at(&annotations.url());
    let service = replica("dl", &nats.url, &dir, &section);
    connected(&[&service], 10);
    annotations.fail("/annotations", 422, Some(1));
    detect_with_token(&service);
    eventually(Duration::from_secs(20), "the refused delivery", || {
        !annotations.calls_to("/annotations").is_empty()
    });
    let refused = annotations.calls_to("/annotations")[0].clone();
    let key = refused.headers["idempotency-key"].clone();
    let media = refused.body.as_ref().unwrap()["mediaId"]
        .as_str()
        .unwrap()
        .to_string();
    let config = service.dir.join("detections.toml");
    let dead_letters = |replay: bool| {
        let mut command = binary();
        command.arg("--config").arg(&config).arg("dead-letters");
        if replay {
            command.arg("--replay");
        }
        let output = run(&mut command);
        assert!(output.status.success(), "{}", stderr(&output));
        json_lines(&output)
    };
    let mut listed = Vec::new();
    eventually(Duration::from_secs(10), "the dead letter", || {
        listed = dead_letters(false);
        !listed.is_empty()
    });
    assert_eq!(
        (listed[0]["key"].as_str(), listed[0]["mediaId"].as_str()),
        (Some(key.as_str()), Some(media.as_str())),
        "{listed:?}"
    );
    assert!(
        listed[0]["reason"].as_str().unwrap().contains("422"),
        "{listed:?}"
    );
    // Replayed, it is delivered with the key it was accepted with, and leaves the list.
    let replayed = dead_letters(true);
    assert_eq!(replayed[0]["replayed"], true, "{replayed:?}");
    eventually(Duration::from_secs(20), "the replayed delivery", || {
        annotation_keys(&annotations, &media).len() == 2
    });
    assert_eq!(
        annotation_keys(&annotations, &media),
        vec![key.clone(), key]
    );
    assert!(dead_letters(false).is_empty());
}

#[test]
fn a_replica_that_cannot_write_the_shared_media_folders_refuses_to_start() {
    let dir = scratch("cluster-readonly");
    // A file where the media folders should be: nothing can be created under it.
    std::fs::write(dir.join("media"), b"").unwrap();
    let config = dir.join("detections.toml");
    std::fs::write(
        &config,
        format!(
            "[media]\nimages_dir = {images:?}\nvideos_dir = {videos:?}\n\
             [outbox]\nspool_dir = {spool:?}\n\
             [cluster]\nkind = \"nats\"\nurl = \"nats://127.0.0.1:1\"\n",
            images = dir.join("media/images").display().to_string(),
            videos = dir.join("media/videos").display().to_string(),
            spool = dir.join("spool").display().to_string(),
        ),
    )
    .unwrap();
    let mut child = binary()
        .arg("--config")
        .arg(&config)
        .env("DETECTIONS_CLASSES__PATH", repo().join("classes.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A replica that started serving instead would never exit: fail, do not hang.
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the replica started although it cannot write its media folders");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains("media/images is not writable"),
        "{message}"
    );
}

#[test]
fn a_job_left_by_a_replica_that_died_is_taken_over_and_finished_by_another() {
    let _turn = real_model_turn();
    let dir = scratch("cluster-takeover");
    let nats = Nats::start(&dir);
    let annotations = stand_in();
    let section = annotations_at(&annotations.url());
    let quick = "heartbeat_secs = 1";
    let mut a = replica_with("a", &nats.url, &dir, &section, quick, PERSON);
    let b = replica_with("b", &nats.url, &dir, &section, quick, PERSON);
    connected(&[&a, &b], 10);
    let clip = dir.join("videos").join("walk.mp4");
    std::fs::create_dir_all(clip.parent().unwrap()).unwrap();
    person_clip(&clip, 8, 10, "mod(t*200,450)");
    annotations.set_media("walk", clip.to_str().unwrap());
    let events = Subscription::open(&b.url("/detect/stream?mediaId=walk"));
    let (status, body) = start_job(&a, "walk", json!({"frame_period_recognition": 1}));
    assert_eq!(status, 200, "{body}");
    // Halfway (some frames done on A), A dies without a word.
    events.wait_for(Duration::from_secs(60), |e| {
        e["mediaStatus"] == "AIProcessing" && e["mediaPercent"].as_u64().is_some_and(|p| p > 0)
    });
    // Renewed every heartbeat while A lives.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(job(&b, "walk").1["status"], "running");
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let killed = Instant::now();
    // Three heartbeats later B takes it over, runs it from the start, and the client
    // sees it finish on the same stream.
    let end = events.wait_for(Duration::from_secs(120), |e| {
        e["mediaStatus"] != "AIProcessing"
    });
    assert_eq!(end["mediaStatus"], "AIProcessed", "{end}");
    assert!(
        killed.elapsed() > Duration::from_secs(3),
        "finished after the takeover"
    );
    let (status, view) = job(&b, "walk");
    assert_eq!(
        (status, view["status"].as_str()),
        (200, Some("processed")),
        "{view}"
    );
    assert_eq!(view["percent"], 100, "{view}");
    assert_eq!(view["replica"], "b", "the run that finished is B's: {view}");
    // Every annotation arrives; a frame both replicas annotated has one key.
    eventually(Duration::from_secs(30), "the annotations delivered", || {
        !annotation_keys(&annotations, "walk").is_empty()
    });
    let calls: Vec<_> = annotations
        .calls_to("/annotations")
        .into_iter()
        .filter(|c| c.body.as_ref().is_some_and(|b| b["mediaId"] == "walk"))
        .collect();
    let mut by_time = std::collections::HashMap::new();
    for call in &calls {
        let time = call.body.as_ref().unwrap()["videoTime"].to_string();
        let key = call.headers["idempotency-key"].clone();
        let first = by_time.entry(time.clone()).or_insert_with(|| key.clone());
        assert_eq!(*first, key, "two keys for the frame at {time}");
    }
    // A job nobody else can run (an upload) is not taken over: covered by the
    // registry's unit tests (`record.rs`), as is the cap on takeovers.
}

#[test]
fn with_the_event_stream_leader_killed_the_service_goes_on_and_with_all_three_it_waits() {
    let dir = scratch("cluster-three");
    let cluster = NatsCluster::new(&dir);
    let mut servers = cluster.start_all();
    let annotations = stand_in();
    let section = annotations_at(&annotations.url());
    let three_copies = "stream_replicas = 3";
    let a = replica_with("a", &cluster.urls(), &dir, &section, three_copies, FIXTURE);
    let b = replica_with("b", &cluster.urls(), &dir, &section, three_copies, FIXTURE);
    let ready = |service: &Service| {
        service
            .client
            .get(service.url("/ready"))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    connected(&[&a, &b], 30);
    // Warm: the cluster has elected its leaders, the streams exist in three copies,
    // both engines run (so both replicas are ready).
    let on_a = Subscription::open(&a.url("/detect/stream"));
    detect_with_token(&b);
    on_a.wait_for(Duration::from_secs(60), |e| {
        e["mediaStatus"] == "AIProcessed"
    });
    detect_with_token(&a);
    for service in [&a, &b] {
        eventually(Duration::from_secs(30), "ready on the cluster", || {
            ready(service) == 200
        });
    }

    // The server leading the events stream dies without a word: the stream elects a
    // new leader, the consumers that lived there are gone.
    let leader = servers
        .iter()
        .find_map(|server| server.leader_of("DETECTIONS_EVENTS"))
        .expect("the events stream has a leader");
    let index = servers
        .iter()
        .position(|server| server.name == leader)
        .expect("a server of the cluster");
    drop(servers.remove(index));

    // The subscriber already on A and a new one on B both see every detection made on
    // either replica after the loss; both replicas stay (or come back to) ready.
    let on_b = Subscription::open(&b.url("/detect/stream"));
    for service in [&a, &b, &a] {
        detect_with_token(service);
    }
    for (subscription, whose) in [(&on_a, "A's"), (&on_b, "B's")] {
        for n in 1..=3 {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "{whose} stream saw {} of 3", n - 1);
                let frame = subscription.next_frame(left);
                if frame.event.is_none() && frame.json()["mediaStatus"] == "AIProcessed" {
                    break;
                }
            }
        }
    }
    for service in [&a, &b] {
        eventually(
            Duration::from_secs(20),
            "ready on two servers of three",
            || ready(service) == 200,
        );
    }

    // All three gone: out of the rotation within seconds, photos still answered, their
    // annotations kept in each replica's journal until the cluster is back.
    drop(servers);
    for service in [&a, &b] {
        eventually(
            Duration::from_secs(10),
            "not ready without a broker",
            || ready(service) == 503,
        );
    }
    detect_with_token(&a);
    detect_with_token(&b);
    let _servers = cluster.start_all();
    // 2 warm + 3 with one server down + 2 with none: every one delivered, duplicates
    // only ever under the same key.
    let keys = || {
        annotations
            .calls_to("/annotations")
            .iter()
            .map(|c| c.headers["idempotency-key"].clone())
            .collect::<std::collections::HashSet<_>>()
    };
    eventually(
        Duration::from_secs(90),
        "all seven annotations delivered",
        || keys().len() == 7,
    );
    for service in [&a, &b] {
        eventually(Duration::from_secs(30), "ready again", || {
            ready(service) == 200
        });
    }
}

#[test]
fn the_same_media_posted_to_two_replicas_at_the_same_moment_runs_once() {
    let dir = scratch("cluster-race");
    let nats = Nats::start(&dir);
    let annotations = stand_in();
    let section = annotations_at(&annotations.url());
    let a = replica("a", &nats.url, &dir, &section);
    let b = replica("b", &nats.url, &dir, &section);
    let c = replica("c", &nats.url, &dir, &section);
    connected(&[&a, &b, &c], 10);
    let clip = dir.join("videos").join("race.mp4");
    std::fs::create_dir_all(clip.parent().unwrap()).unwrap();
    person_clip(&clip, 20, 25, "mod(t*200,450)");
    let every_frame = json!({"frame_period_recognition": 1});
    // Several rounds: one replica or the other may win, never both.
    for round in 0..5 {
        let media = format!("race-{round}");
        annotations.set_media(&media, clip.to_str().unwrap());
        let start = std::sync::Barrier::new(2);
        let post = |service: &Service| {
            start.wait();
            start_job(service, &media, every_frame.clone())
        };
        let (on_a, on_b) = std::thread::scope(|scope| {
            let on_a = scope.spawn(|| post(&a));
            let on_b = scope.spawn(|| post(&b));
            (on_a.join().unwrap(), on_b.join().unwrap())
        });
        let mut statuses = [on_a.0, on_b.0];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 409],
            "round {round}: A {on_a:?}, B {on_b:?}"
        );
        // A third replica shows the job and cancels it.
        let (status, view) = job(&c, &media);
        assert_eq!(status, 200, "round {round}");
        assert!(
            ["queued", "running"].contains(&view["status"].as_str().unwrap_or_default()),
            "round {round}: {view}"
        );
        let stopped = c
            .client
            .delete(c.url(&format!("/detect/{media}")))
            .send()
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(stopped, 200, "round {round}");
        let winner = if on_a.0 == 200 { &a } else { &b };
        eventually(
            Duration::from_secs(30),
            "the winner's run cancelled",
            || job(winner, &media).1["status"] == "cancelled",
        );
    }
}

/// Frames of `subscription` until `n` photos have been processed.
fn until_processed(subscription: &Subscription, n: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    for _ in 0..n {
        frames.extend(frames_until(subscription, |e| {
            e["mediaStatus"] == "AIProcessed"
        }));
    }
    frames
}

#[test]
fn a_subscriber_whose_replica_dies_resumes_on_another_with_last_event_id_no_gap_no_duplicate() {
    let dir = scratch("cluster-resume");
    let nats = Nats::start(&dir);
    let annotations = stand_in();
    let section = annotations_at(&annotations.url());
    let mut a = replica("a", &nats.url, &dir, &section);
    let b = replica("b", &nats.url, &dir, &section);
    let c = replica("c", &nats.url, &dir, &section);
    connected(&[&a, &b, &c], 10);
    let control = Subscription::open(&c.url("/detect/stream"));
    let on_a = Subscription::open(&a.url("/detect/stream"));
    let photo_on = |service: &Service, shade: u8| {
        let (status, body) = service.detect(png(64, 48, shade), "p.png", None);
        assert_eq!(status, 200, "{body}");
    };
    // Photos detected on B and C reach the subscriber of A, numbered by the broker.
    for i in 0..6u8 {
        photo_on(if i % 2 == 0 { &b } else { &c }, 20 * i);
    }
    let before = until_processed(&on_a, 6);
    // A dies without a word; more photos meanwhile; the client reconnects (through
    // the load balancer, to B) with the last id it saw.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    for i in 6..10u8 {
        photo_on(if i % 2 == 0 { &b } else { &c }, 20 * i);
    }
    let last = ids(&before).last().unwrap().to_string();
    let resumed = Subscription::open_after(&b.url("/detect/stream"), Some(&last));
    let after = until_processed(&resumed, 4);
    let all = until_processed(&control, 10);
    let mut seen = ids(&before);
    seen.extend(ids(&after));
    assert_eq!(seen, ids(&all), "no gap, no duplicate");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
}

#[test]
fn twenty_photos_annotated_while_the_receiver_is_down_all_arrive_after_a_replica_dies() {
    let dir = scratch("cluster-flood");
    let nats = Nats::start(&dir);
    let annotations = stand_in();
    let section = annotations_at(&annotations.url());
    let fast = "ack_wait_secs = 2\nmax_deliveries = 1000";
    let replicas: Vec<Service> = ["a", "b", "c"]
        .iter()
        .map(|name| replica_with(name, &nats.url, &dir, &section, fast, FIXTURE))
        .collect();
    connected(&replicas.iter().collect::<Vec<_>>(), 10);
    // The receiver answers 503: twenty photos across the replicas still get their
    // answer, and each annotation is on the broker before the answer goes out.
    annotations.fail("/annotations", 503, None);
    for i in 0..20u8 {
        detect_shade_with_token(&replicas[usize::from(i) % 3], 10 * i);
    }
    let stored: u64 = replicas
        .iter()
        .map(|s| s.counter("detections_broker_annotations_stored_total"))
        .sum();
    assert_eq!(stored, 20, "every annotation on the broker");
    eventually(Duration::from_secs(20), "deliveries failing", || {
        annotations.calls_to("/annotations").len() >= 3
    });
    // One replica dies without a word while the receiver is still down (it may hold
    // the delivery in flight); then the receiver recovers.
    let mut replicas = replicas;
    let mut gone = replicas.pop().unwrap();
    gone.child.kill().unwrap();
    gone.child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    annotations.reset();
    let keys = || {
        annotations
            .calls_to("/annotations")
            .iter()
            .map(|c| c.headers["idempotency-key"].clone())
            .collect::<std::collections::HashSet<_>>()
    };
    eventually(Duration::from_secs(90), "all twenty delivered", || {
        keys().len() == 20
    });
    // Duplicates, if any, only ever under a key already seen: still twenty keys.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(keys().len(), 20);
    assert!(annotations.calls_to("/annotations").len() >= 20);
}
