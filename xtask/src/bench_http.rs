//! `cargo xtask bench-http [--requests N] [--threads T]`: the service over HTTP against
//! the engine alone, in one run on one machine.
//!
//! 1. `detections bench-frames` on the photo gives the engine-only time per image
//!    (the physical limit for that model and thread count).
//! 2. The release binary serves on a free port; `POST /detect` is driven at
//!    concurrency 1, 2 and 4 (N requests each, after a warm-up), while a prober asks
//!    `/health` 20 times a second.
//! 3. The same load against the Python service of the standing comparison
//!    (`benches/python_service.py`: FastAPI on uvicorn, two workers, the reference
//!    pipeline), with resident memory of both.
//! 4. With the tiny model, a soak: RSS after 100 requests vs after `--soak` requests.
//! 5. The table (images/s, p50/p99 latency, ratios to engine-only and to Python,
//!    `/health` p50/p99 under that load, memory) goes to stdout and to
//!    `docs/performance-http.md`.
//! 6. Video (spec A11): a 720p clip made with ffmpeg from `street_1280x720.jpg`, sent
//!    whole to the release service's `POST /detect`; inferred frames (the service's
//!    `detections_video_frames_inferred_total`) per second of the request against
//!    `bench-frames` images per second on the same 1280×720 photo (the same views per
//!    frame). `--video-only` runs just this step and rewrites only that section.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, fetch};

const PHOTO: &str = "coffee.png";
const CONCURRENCY: [usize; 3] = [1, 2, 4];

pub struct Options {
    pub requests: usize,
    pub threads: usize,
    /// Requests of the memory-growth check (RSS after 100 vs after this many).
    pub soak: usize,
    /// Only the video step (its section of the document is replaced).
    pub video_only: bool,
    /// Length of the 720p clip, seconds (25 fps).
    pub video_seconds: usize,
}

pub fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        requests: 40,
        threads: 2,
        soak: 5000,
        video_only: false,
        video_seconds: 10,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let target = match arg.as_str() {
            "--video-only" => {
                options.video_only = true;
                continue;
            }
            "--video-seconds" => &mut options.video_seconds,
            "--requests" => &mut options.requests,
            "--threads" => &mut options.threads,
            "--soak" => &mut options.soak,
            other => bail!("bench-http: unknown argument `{other}`"),
        };
        let value = args
            .next()
            .with_context(|| format!("bench-http: `{arg}` needs a number"))?;
        *target =
            value.parse().ok().filter(|n| *n > 0).with_context(|| {
                format!("bench-http: `{arg} {value}`: expected a positive number")
            })?;
    }
    Ok(options)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One load level's outcome.
struct Level {
    concurrency: usize,
    images_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    health_p50_ms: f64,
    health_p99_ms: f64,
    health_max_ms: f64,
}

/// Where cargo puts its output: `CARGO_TARGET_DIR` when set, else `target/`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// The heading of the video section (a `--video-only` run replaces from it to the end).
const VIDEO_HEADING: &str = "## Video: inferred frames per second";

pub fn bench(root: &Path, options: &Options) -> Result<()> {
    let binary = target_dir(root).join("release/detections");
    let photo = root.join("assets/photos").join(PHOTO);
    let models = [
        ("azaion", root.join("assets/models/azaion.onnx")),
        ("tiny", root.join("assets/fixtures/tiny_v8_640.onnx")),
    ];
    for needed in [
        &photo,
        &fetch::ort_library(root),
        &models[0].1,
        &models[1].1,
    ] {
        if !needed.is_file() {
            bail!("{} is missing (run `cargo xtask fetch`)", needed.display());
        }
    }
    println!("==> build: cargo build --release");
    let status = cargo()
        .args(["build", "--release"])
        .current_dir(root)
        .status()
        .context("could not start `cargo build --release`")?;
    if !status.success() {
        bail!("`cargo build --release` exited with {status}");
    }
    let scratch =
        std::env::temp_dir().join(format!("detections-bench-http-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    if options.video_only {
        let video = bench_video(root, &binary, &scratch, options)?;
        let _ = std::fs::remove_dir_all(&scratch);
        println!("{video}");
        let target = root.join("docs/performance-http.md");
        let existing = std::fs::read_to_string(&target).unwrap_or_default();
        let kept = match existing.find(VIDEO_HEADING) {
            Some(at) => existing[..at].trim_end().to_string(),
            None => existing.trim_end().to_string(),
        };
        std::fs::write(&target, format!("{kept}\n\n{video}"))
            .with_context(|| format!("cannot write {}", target.display()))?;
        println!("==> wrote the video section of {}", target.display());
        return Ok(());
    }
    let body = std::fs::read(&photo)?;
    let python = fetch::venv_python(root);
    println!("==> pip install -r benches/requirements.txt (the Python service)");
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-r",
        ])
        .arg(root.join("benches/requirements.txt"))
        .status()
        .context("could not run pip")?;
    if !status.success() {
        bail!("pip install -r benches/requirements.txt failed");
    }
    let mut report = String::new();
    for (label, model) in &models {
        let port = free_port()?;
        let config = write_config(root, &scratch, label, model, options.threads, port)?;
        println!("==> {label}: engine only (bench-frames)");
        let engine_ms = engine_only_ms(&binary, &config, &photo, root)?;
        let engine_per_s = 1000.0 / engine_ms;
        println!(
            "==> {label}: HTTP at concurrency {CONCURRENCY:?}, {} requests each",
            options.requests
        );
        let mut command = Command::new(&binary);
        command.arg("--config").arg(&config).arg("serve");
        let (server, rust_idle, rust) = measure(command, port, &body, options.requests)?;
        let rust_loaded = memory(server.0.id());
        let soak = if *label == "tiny" {
            Some(soak(
                &format!("http://127.0.0.1:{port}"),
                &body,
                options.soak,
                server.0.id(),
            )?)
        } else {
            None
        };
        drop(server);

        println!(
            "==> {label}: the Python service (FastAPI on uvicorn, 2 workers) under the same load"
        );
        let python_port = free_port()?;
        let mut command = Command::new(&python);
        command
            .arg(root.join("benches/python_service.py"))
            .arg("--model")
            .arg(model)
            .arg("--classes")
            .arg(root.join("classes.json"))
            .args(["--port", &python_port.to_string()])
            .args(["--threads", &options.threads.to_string()])
            .args(["--workers", "2"]);
        let (python_server, python_idle, python_levels) =
            measure(command, python_port, &body, options.requests)?;
        let python_loaded = memory(python_server.0.id());
        drop(python_server);

        let model_mib = std::fs::metadata(model).map_or(0.0, |m| m.len() as f64 / 1048576.0);
        let _ = writeln!(
            report,
            "\n### {label} model ({}, {model_mib:.1} MiB), {PHOTO}, {} intra-op threads\n\n\
             Engine only: {engine_ms:.1} ms per image = {engine_per_s:.2} images/s.\n\n\
             | service | concurrency | images/s | ÷ engine-only | Rust ÷ Python | p50 ms | p99 ms | p99 ÷ engine ms | /health p50 ms | /health p99 ms | /health max ms |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            model.file_name().unwrap_or_default().to_string_lossy(),
            options.threads
        );
        for (side, levels) in [("Rust", &rust), ("Python", &python_levels)] {
            for (l, other) in levels.iter().zip(python_levels.iter()) {
                let versus = if side == "Rust" {
                    format!("{:.2}", l.images_per_s / other.images_per_s)
                } else {
                    String::new()
                };
                // A near-free engine makes ratios to it meaningless.
                let meaningful = engine_ms >= 1.0;
                let of_engine = |x: f64| {
                    if meaningful {
                        format!("{x:.2}")
                    } else {
                        "n/a".to_string()
                    }
                };
                let _ = writeln!(
                    report,
                    "| {side} | {} | {:.2} | {} | {versus} | {:.1} | {:.1} | {} | {:.2} | {:.2} | {:.2} |",
                    l.concurrency,
                    l.images_per_s,
                    of_engine(l.images_per_s / engine_per_s),
                    l.p50_ms,
                    l.p99_ms,
                    of_engine(l.p99_ms / engine_ms),
                    l.health_p50_ms,
                    l.health_p99_ms,
                    l.health_max_ms
                );
            }
        }
        let _ = writeln!(
            report,
            "\nMemory (MiB): Rust idle after warm-up {:.1}, after the load {:.1}, peak {:.1}; \
             Python idle {:.1}, after the load {:.1}, peak {:.1}; Rust ÷ Python peak {:.2}.",
            rust_idle.rss_mib,
            rust_loaded.rss_mib,
            rust_loaded.peak_mib,
            python_idle.rss_mib,
            python_loaded.rss_mib,
            python_loaded.peak_mib,
            rust_loaded.peak_mib / python_loaded.peak_mib
        );
        if let Some((after_100, after_all)) = soak {
            let _ = writeln!(
                report,
                "Soak: RSS after 100 requests {after_100:.1} MiB, after {} requests {after_all:.1} MiB \
                 ({:+.1} %).",
                options.soak,
                (after_all / after_100 - 1.0) * 100.0
            );
        }
    }
    let video = bench_video(root, &binary, &scratch, options)?;
    let _ = writeln!(report, "\n{video}");
    let _ = std::fs::remove_dir_all(&scratch);
    println!("{report}");
    let doc = format!(
        "# HTTP performance\n\n\
         Written by `cargo xtask bench-http --requests {} --threads {} --soak {}` on {} ({} cores), {}.\n\
         Each model: `detections bench-frames` first (engine-only time per image, the \
         limit), then the release service on the same machine, `POST /detect` at each \
         concurrency after a warm-up, with `/health` probed 20 times a second during \
         the load. Ratios are within one run.\n{report}",
        options.requests,
        options.threads,
        options.soak,
        shell("uname", &["-srm"]),
        std::thread::available_parallelism().map_or(0, usize::from),
        shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
    );
    let target = root.join("docs/performance-http.md");
    std::fs::write(&target, doc).with_context(|| format!("cannot write {}", target.display()))?;
    println!("==> wrote {}", target.display());
    Ok(())
}

/// Step 6: a 720p clip through the release service's `POST /detect`; the section text.
fn bench_video(root: &Path, binary: &Path, scratch: &Path, options: &Options) -> Result<String> {
    const FPS: usize = 25;
    const PERIOD: u64 = 4;
    let still = root.join("assets/photos/street_1280x720.jpg");
    let model = root.join("assets/models/azaion.onnx");
    for needed in [&still, &model] {
        if !needed.is_file() {
            bail!("{} is missing (run `cargo xtask fetch`)", needed.display());
        }
    }
    let clip = scratch.join("street_720p.mp4");
    let seconds = options.video_seconds.to_string();
    println!("==> video: a {seconds} s 1280×720 clip at {FPS} fps (ffmpeg)");
    // Temporal noise: every frame differs, so the decoder does real work.
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-loop",
            "1",
            "-i",
        ])
        .arg(&still)
        .args([
            "-vf",
            "noise=alls=12:allf=t",
            "-t",
            &seconds,
            "-r",
            &FPS.to_string(),
        ])
        .args([
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ])
        .arg(&clip)
        .status()
        .context("could not run ffmpeg (required for the video step)")?;
    if !status.success() {
        bail!("ffmpeg could not make the 720p clip");
    }
    let video = std::fs::read(&clip)?;
    let port = free_port()?;
    let config = write_config(root, scratch, "video", &model, options.threads, port)?;
    println!("==> video: engine only on the 1280×720 photo (bench-frames)");
    let (engine_before_ms, views) = engine_only(binary, &config, &still, root)?;
    let server = Server(
        Command::new(binary)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("could not start the service")?,
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base)?;
    // Warm-up: the first request starts the engine.
    post_photo(&base, &std::fs::read(&still)?)?;
    let before = inferred_frames(&base)?;
    println!("==> video: POST /detect of the clip, frame_period_recognition {PERIOD}");
    let took = post_video(&base, &video, PERIOD)?;
    let frames = inferred_frames(&base)? - before;
    drop(server);
    // Again after it: the machine's load may have changed (shared cores); the reference
    // is the mean of both.
    println!("==> video: engine only again (bench-frames)");
    let (engine_after_ms, _) = engine_only(binary, &config, &still, root)?;
    let engine_ms = (engine_before_ms + engine_after_ms) / 2.0;
    let engine_per_s = 1000.0 / engine_ms;
    let seconds_taken = took.as_secs_f64();
    let frames_per_s = frames as f64 / seconds_taken;
    let ratio = frames_per_s / engine_per_s;
    let clip_frames = options.video_seconds as u64 * FPS as u64;
    Ok(format!(
        "{VIDEO_HEADING} (spec A11)\n\n\
         Target: inferred frames per second ≥ 0.9 × engine-only images per second, same \
         model, same run. The clip: `street_1280x720.jpg` with temporal noise, \
         {seconds} s at {FPS} fps ({clip_frames} frames, H.264, {:.1} MiB), sent whole to \
         `POST /detect` with `frame_period_recognition` {PERIOD}; the service decodes it \
         with ffmpeg and infers every {PERIOD}th frame (counted by \
         `detections_video_frames_inferred_total`). The engine-only reference is \
         `bench-frames` on the same 1280×720 photo: {views} views per frame (tiles of the \
         640 model, spec A11), so both sides do the same engine work per frame. The \
         request's time includes the upload, decoding, the tracking gate and the answer; \
         the engine is started before it. `bench-frames` runs before and after the \
         request ({engine_before_ms:.1} and {engine_after_ms:.1} ms per frame); the \
         reference is their mean.\n\n\
         | model | threads | inferred frames | request s | inferred frames/s | engine-only ms per frame ({views} views) | engine-only frames/s | ÷ engine-only |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n\
         | azaion.onnx | {} | {frames} | {seconds_taken:.2} | {frames_per_s:.3} | {engine_ms:.1} | {engine_per_s:.3} | {ratio:.2} |\n",
        video.len() as f64 / 1048576.0,
        options.threads,
    ))
}

/// `bench-frames` on one photo: engine ms per frame and the frame's views.
fn engine_only(binary: &Path, config: &Path, photo: &Path, root: &Path) -> Result<(f64, u64)> {
    let output = Command::new(binary)
        .arg("--config")
        .arg(config)
        .args(["bench-frames", "--runs", "10"])
        .arg(photo)
        .current_dir(root)
        .output()
        .context("could not start bench-frames")?;
    if !output.status.success() {
        bail!(
            "bench-frames failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .lines()
        .last()
        .context("bench-frames printed nothing")?;
    let value = serde_like::parse(line)?;
    Ok((value.number("engine_ms")?, value.number("views")? as u64))
}

/// The service's `detections_video_frames_inferred_total`.
fn inferred_frames(base: &str) -> Result<u64> {
    let mut response = ureq::get(&format!("{base}/metrics"))
        .call()
        .context("GET /metrics failed")?;
    let mut text = String::new();
    response.body_mut().as_reader().read_to_string(&mut text)?;
    Ok(text
        .lines()
        .find_map(|l| {
            l.strip_prefix("detections_video_frames_inferred_total")?
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0, |v| v as u64))
}

/// `POST /detect` of a whole video with `frame_period_recognition`: the request's time.
fn post_video(base: &str, video: &[u8], period: u64) -> Result<Duration> {
    let mut body = Vec::with_capacity(video.len() + 512);
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"config\"\r\n\r\n\
             {{\"frame_period_recognition\": {period}}}\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"street_720p.mp4\"\r\n\
             Content-Type: video/mp4\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(video);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let started = Instant::now();
    let mut response = ureq::post(&format!("{base}/detect"))
        .header(
            "Content-Type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .send(&body[..])
        .context("POST /detect of the clip failed")?;
    let mut sink = Vec::new();
    response.body_mut().as_reader().read_to_end(&mut sink)?;
    Ok(started.elapsed())
}

fn shell(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn write_config(
    root: &Path,
    dir: &Path,
    tag: &str,
    model: &Path,
    threads: usize,
    port: u16,
) -> Result<PathBuf> {
    let name = model.file_name().unwrap_or_default().to_string_lossy();
    let model_dir = model.parent().unwrap_or(root);
    let text = format!(
        "[server]\nbind = \"127.0.0.1:{port}\"\n\
         [classes]\npath = {classes:?}\n\
         [model]\nname = {name:?}\n\
         [model_source]\nkind = \"local\"\ndir = {model_dir:?}\n\
         [engine]\nkind = \"onnx\"\nlibrary = {library:?}\nintra_threads = {threads}\n\
         [annotations]\nkind = \"file\"\npath = {annotations:?}\n\
         [outbox]\nspool_dir = {spool:?}\n\
         [logging]\nlevel = \"warn\"\n",
        classes = root.join("classes.json").display().to_string(),
        model_dir = model_dir.display().to_string(),
        library = fetch::ort_library(root).display().to_string(),
        annotations = dir.join("annotations.jsonl").display().to_string(),
        spool = dir.join(format!("spool-{tag}")).display().to_string(),
    );
    let path = dir.join(format!("{tag}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

fn engine_only_ms(binary: &Path, config: &Path, photo: &Path, root: &Path) -> Result<f64> {
    engine_only(binary, config, photo, root).map(|(ms, _)| ms)
}

/// The few JSON numbers we read, without a JSON dependency in xtask.
mod serde_like {
    use anyhow::{Context, Result};

    pub struct Value(String);

    pub fn parse(line: &str) -> Result<Value> {
        Ok(Value(line.to_string()))
    }

    impl Value {
        pub fn number(&self, key: &str) -> Result<f64> {
            let needle = format!("\"{key}\":");
            let at = self
                .0
                .find(&needle)
                .with_context(|| format!("no {key} in {}", self.0))?;
            let rest = self.0[at + needle.len()..].trim_start();
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e'))
                .unwrap_or(rest.len());
            rest[..end]
                .parse()
                .with_context(|| format!("{key} is not a number"))
        }
    }
}

/// Starts a service, waits for `/health`, warms it up (the first request starts the
/// engine), then loads it at each concurrency: the running server, its idle memory
/// and one outcome per level.
fn measure(
    mut command: Command,
    port: u16,
    photo: &[u8],
    requests: usize,
) -> Result<(Server, Memory, Vec<Level>)> {
    let server = Server(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start {:?}", command.get_program()))?,
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base)?;
    for _ in 0..3 {
        post_photo(&base, photo)?;
    }
    let idle = memory(server.0.id());
    let levels = CONCURRENCY
        .iter()
        .map(|&concurrency| load(&base, photo, concurrency, requests))
        .collect::<Result<Vec<_>>>()?;
    Ok((server, idle, levels))
}

fn wait_healthy(base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if ureq::get(&format!("{base}/health")).call().is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the service did not answer /health within 30 s")
}

const BOUNDARY: &str = "xtask-bench-boundary";

fn post_photo(base: &str, photo: &[u8]) -> Result<Duration> {
    let mut body = Vec::with_capacity(photo.len() + 256);
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{PHOTO}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(photo);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let started = Instant::now();
    let mut response = ureq::post(&format!("{base}/detect"))
        .header(
            "Content-Type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .send(&body[..])
        .context("POST /detect failed")?;
    let mut sink = Vec::new();
    response.body_mut().as_reader().read_to_end(&mut sink)?;
    Ok(started.elapsed())
}

fn load(base: &str, photo: &[u8], concurrency: usize, requests: usize) -> Result<Level> {
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = Arc::clone(&stop);
        let url = format!("{base}/health");
        std::thread::spawn(move || {
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                if ureq::get(&url).call().is_ok() {
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            times
        })
    };
    let per_worker = requests.div_ceil(concurrency);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let base = base.to_string();
            let photo = photo.to_vec();
            std::thread::spawn(move || -> Result<Vec<f64>> {
                (0..per_worker)
                    .map(|_| post_photo(&base, &photo).map(|d| d.as_secs_f64() * 1000.0))
                    .collect()
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a load thread panicked"))??,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut health = prober
        .join()
        .map_err(|_| anyhow::anyhow!("the prober panicked"))?;
    let images_per_s = latencies.len() as f64 / elapsed;
    let (p50_ms, p99_ms) = (
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99),
    );
    let health_max_ms = health.iter().copied().fold(0.0, f64::max);
    Ok(Level {
        concurrency,
        images_per_s,
        p50_ms,
        p99_ms,
        health_p50_ms: percentile(&mut health, 0.5),
        health_p99_ms: percentile(&mut health, 0.99),
        health_max_ms,
    })
}

/// Resident and peak resident memory of a process, from /proc.
struct Memory {
    rss_mib: f64,
    peak_mib: f64,
}

fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    Memory {
        rss_mib: field("VmRSS:"),
        peak_mib: field("VmHWM:"),
    }
}

/// RSS after 100 requests and after `total`, at concurrency 4.
fn soak(base: &str, photo: &[u8], total: usize, pid: u32) -> Result<(f64, f64)> {
    println!("==> soak: {total} requests");
    load(base, photo, 4, 100)?;
    let after_100 = memory(pid).rss_mib;
    load(base, photo, 4, total.saturating_sub(100).max(1))?;
    Ok((after_100, memory(pid).rss_mib))
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_ranked_value() {
        let mut v = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&mut v, 0.5), 3.0);
        assert_eq!(percentile(&mut v, 0.99), 5.0);
        assert!(percentile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn numbers_are_read_from_a_json_line() {
        let v = serde_like::parse(r#"{"file":"a","engine_ms":12.5,"views":1}"#).unwrap();
        assert_eq!(v.number("engine_ms").unwrap(), 12.5);
        assert!(v.number("nope").is_err());
    }
}
