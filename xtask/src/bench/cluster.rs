//! `cargo xtask bench-cluster`: what the broker costs and how fast the cluster heals,
//! on one machine with a real `nats-server -js` and release binaries of the service
//! (the fixture model: a fixed answer in under a millisecond, so the figures are the
//! service's and the broker's, not the engine's) and the stand-in:
//! - `POST /detect` latency on one replica in memory and one on the broker
//!   (annotation stored on the broker before the answer), interleaved in blocks;
//! - an event's latency from the answer of `POST /detect` on replica A to its arrival
//!   at an SSE subscriber of replica B, and the events/s A publishes under load;
//! - the time from SIGKILL of the replica running a video job to another replica
//!   running it again, at the default heartbeat.
//!
//! Prints a Markdown section; nothing is written to the repository.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::http::{free_port, multipart, percentile, wait_healthy};
use crate::fetch;

const TOKEN: &str = "Bearer bench";

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Replica {
    process: Process,
    base: String,
}

struct Setup {
    root: PathBuf,
    binary: PathBuf,
    scratch: PathBuf,
    standin: String,
}

impl Setup {
    /// A replica on `nats` (or in memory), its own journal, the shared media folders.
    fn replica(&self, name: &str, nats: Option<&str>) -> Result<Replica> {
        let port = free_port()?;
        let own = self.scratch.join(name);
        std::fs::create_dir_all(&own)?;
        let cluster = nats.map_or(String::new(), |url| {
            format!("[cluster]\nkind = \"nats\"\nurl = {url:?}\nreplica = {name:?}\n")
        });
        let config = format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\n\
             [classes]\npath = {classes:?}\n\
             [model]\nname = \"v8_static_640.onnx\"\n\
             [model_source]\nkind = \"local\"\ndir = {models:?}\n\
             [engine]\nkind = \"onnx\"\nlibrary = {library:?}\n\
             [annotations]\nkind = \"http\"\nurl = {standin:?}\n\
             [media]\nimages_dir = {images:?}\nvideos_dir = {videos:?}\n\
             [outbox]\nspool_dir = {spool:?}\n\
             [logging]\nlevel = \"warn\"\n{cluster}",
            classes = self.root.join("classes.json").display().to_string(),
            models = self.root.join("assets/fixtures").display().to_string(),
            library = fetch::ort_library(&self.root).display().to_string(),
            standin = self.standin,
            images = self.scratch.join("media/images").display().to_string(),
            videos = self.scratch.join("media/videos").display().to_string(),
            spool = own.join("spool").display().to_string(),
        );
        let path = own.join("detections.toml");
        std::fs::write(&path, config)?;
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&path)
            .arg("serve")
            .current_dir(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting a replica")?;
        let base = format!("http://127.0.0.1:{port}");
        let replica = Replica {
            process: Process(child),
            base,
        };
        wait_healthy(&replica.base)?;
        Ok(replica)
    }
}

pub fn bench_cluster(root: &Path) -> Result<()> {
    println!("==> build: cargo build --release -p detections -p standin");
    let status = crate::cargo()
        .args(["build", "--release", "-p", "detections", "-p", "standin"])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("the release build failed ({status})");
    }
    let release = super::target_dir(root).join("release");
    let scratch = std::env::temp_dir().join(format!("detections-cluster-{}", std::process::id()));
    std::fs::create_dir_all(scratch.join("media/videos"))?;
    let nats_port = free_port()?;
    let _nats = Process(
        Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &nats_port.to_string(),
                "-sd",
            ])
            .arg(scratch.join("jetstream"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("nats-server is needed (apt-get install nats-server)")?,
    );
    let nats = format!("nats://127.0.0.1:{nats_port}");
    let standin_port = free_port()?;
    let _standin = Process(
        Command::new(release.join("standin"))
            .arg("--models-dir")
            .arg(root.join("assets/fixtures"))
            .args(["--bind", &format!("127.0.0.1:{standin_port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the stand-in")?,
    );
    let setup = Setup {
        root: root.to_path_buf(),
        binary: release.join("detections"),
        scratch: scratch.clone(),
        standin: format!("http://127.0.0.1:{standin_port}"),
    };
    std::thread::sleep(Duration::from_millis(300));

    let memory = setup.replica("memory", None)?;
    let a = setup.replica("a", Some(&nats))?;
    let b = setup.replica("b", Some(&nats))?;
    // A small photo (the same bytes each time: the figures are per request).
    let bytes = std::fs::read(root.join("assets/photos/bus_353x470.jpg"))?;
    let photo = multipart("bus.jpg", "image/jpeg", None, &bytes);
    for replica in [&memory, &a, &b] {
        post(&replica.base, &photo)?;
    }

    println!("==> POST /detect: in memory and on the broker, 8 blocks of 25 each");
    let (mut in_memory, mut on_broker) = (Vec::new(), Vec::new());
    for _block in 0..8 {
        for _ in 0..25 {
            in_memory.push(post(&memory.base, &photo)?.as_secs_f64() * 1000.0);
        }
        for _ in 0..25 {
            on_broker.push(post(&a.base, &photo)?.as_secs_f64() * 1000.0);
        }
    }
    drop(memory);

    println!("==> events: POST /detect on A, the event at a subscriber of B, 100 times");
    let events = subscribe(&format!("{}/detect/stream", b.base))?;
    std::thread::sleep(Duration::from_millis(500));
    let (mut after_answer, mut after_send) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let sent = Instant::now();
        post(&a.base, &photo)?;
        let answered = Instant::now();
        let seen = next_status(&events, "AIProcessed", Duration::from_secs(10))?;
        after_answer.push(ms_between(answered, seen));
        after_send.push(ms_between(sent, seen));
    }
    let published = |r: &Replica| counter(&r.base, "detections_broker_events_published_total");
    let before = published(&a)?;
    let started = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (base, photo) = (a.base.clone(), photo.clone());
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let _ = post(&base, &photo);
                }
            })
        })
        .collect();
    for thread in threads {
        let _ = thread.join();
    }
    let events_per_s = (published(&a)? - before) / started.elapsed().as_secs_f64();
    drop((a, b, events));

    println!("==> takeover: SIGKILL of a video job's replica, heartbeat 5 s (default), 2 times");
    let clip = scratch.join("media/videos/long.mp4");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc=size=320x240:rate=10:duration=120"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
        .arg(&clip)
        .status()
        .context("ffmpeg is needed")?;
    if !status.success() {
        bail!("ffmpeg failed ({status})");
    }
    let mut takeovers = Vec::new();
    for trial in 0..2 {
        let media = format!("long-{trial}");
        ureq::post(&format!("{}/_standin/media", setup.standin))
            .header("Content-Type", "application/json")
            .send(json!({"id": media, "path": clip.display().to_string()}).to_string())
            .context("the stand-in's media")?;
        let first = setup.replica(&format!("t{trial}-1"), Some(&nats))?;
        let second = setup.replica(&format!("t{trial}-2"), Some(&nats))?;
        let events = subscribe(&format!("{}/detect/stream?mediaId={media}", second.base))?;
        std::thread::sleep(Duration::from_millis(300));
        ureq::post(&format!("{}/detect/{media}", first.base))
            .header("Authorization", TOKEN)
            .header("Content-Type", "application/json")
            .send(json!({"frame_period_recognition": 1}).to_string())
            .context("starting the job")?;
        let mut highest = 0;
        while highest < 5 {
            let event = next_event(&events, Duration::from_secs(60))?.1;
            highest = highest.max(event["mediaPercent"].as_u64().unwrap_or(0));
        }
        let mut first = first;
        first.process.0.kill()?;
        let killed = Instant::now();
        let resumed = loop {
            let (at, event) = next_event(&events, Duration::from_secs(120))?;
            let percent = event["mediaPercent"].as_u64().unwrap_or(0);
            if event["mediaStatus"] == "AIProcessing" && percent < highest {
                break at;
            }
            highest = highest.max(percent);
        };
        takeovers.push(resumed.duration_since(killed).as_secs_f64());
        drop((first, second));
    }
    let _ = std::fs::remove_dir_all(&scratch);

    let p = |v: &mut Vec<f64>, q: f64| percentile(v, q);
    println!(
        "\n## The cluster's costs (`cargo xtask bench-cluster`)\n\n\
         Fixture model (fixed answer), one `nats-server -js` on 127.0.0.1, release binaries.\n\n\
         | figure | p50 | p99 |\n|---|---:|---:|\n\
         | `POST /detect` in memory, ms | {:.2} | {:.2} |\n\
         | `POST /detect` on the broker (annotation stored first), ms | {:.2} | {:.2} |\n\
         | event: A's answer → B's subscriber, ms | {:.2} | {:.2} |\n\
         | event: A's request sent → B's subscriber, ms | {:.2} | {:.2} |\n\n\
         Events A published per second under 8 clients: {events_per_s:.0}.\n\
         SIGKILL of a video job's replica → another replica running it, heartbeat 5 s: \
         {} s.",
        p(&mut in_memory, 0.5),
        p(&mut in_memory, 0.99),
        p(&mut on_broker, 0.5),
        p(&mut on_broker, 0.99),
        p(&mut after_answer, 0.5),
        p(&mut after_answer, 0.99),
        p(&mut after_send, 0.5),
        p(&mut after_send, 0.99),
        takeovers
            .iter()
            .map(|s| format!("{s:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

fn post(base: &str, body: &[u8]) -> Result<Duration> {
    let started = Instant::now();
    let mut response = ureq::post(&format!("{base}/detect"))
        .header("Authorization", TOKEN)
        .header(
            "Content-Type",
            &format!("multipart/form-data; boundary={}", super::http::BOUNDARY),
        )
        .send(body)
        .context("POST /detect failed")?;
    let mut sink = Vec::new();
    response.body_mut().as_reader().read_to_end(&mut sink)?;
    Ok(started.elapsed())
}

type Events = mpsc::Receiver<(Instant, Value)>;

/// Detection events of an SSE stream, each with when it arrived.
fn subscribe(url: &str) -> Result<Events> {
    let response = ureq::get(url).call().context("the event stream")?;
    let (sender, events) = mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(response.into_body().into_reader());
        let mut named = false;
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if line.starts_with("event:") {
                named = true;
            } else if let Some(data) = line.strip_prefix("data:") {
                if !named && let Ok(value) = serde_json::from_str(data.trim()) {
                    let _ = sender.send((Instant::now(), value));
                }
            } else if line.is_empty() {
                named = false;
            }
        }
    });
    Ok(events)
}

fn next_event(events: &Events, within: Duration) -> Result<(Instant, Value)> {
    events.recv_timeout(within).context("no event in time")
}

fn next_status(events: &Events, status: &str, within: Duration) -> Result<Instant> {
    let deadline = Instant::now() + within;
    loop {
        let (at, event) = next_event(events, deadline.saturating_duration_since(Instant::now()))?;
        if event["mediaStatus"] == status {
            return Ok(at);
        }
    }
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    if to >= from {
        to.duration_since(from).as_secs_f64() * 1000.0
    } else {
        -(from.duration_since(to).as_secs_f64() * 1000.0)
    }
}

fn counter(base: &str, name: &str) -> Result<f64> {
    let text = ureq::get(&format!("{base}/metrics"))
        .call()?
        .body_mut()
        .read_to_string()?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0))
}
