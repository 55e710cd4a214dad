//! Step 2, over HTTP: for one model, the release service and then the Python service
//! (`benches/python_service.py`: FastAPI on uvicorn, two workers, the reference
//! pipeline), each started, warmed up and driven with `POST /detect` at every
//! concurrency of [`CONCURRENCY`], while a prober asks `/health` 20 times a second.
//! With the real model both also get the tiled photo; with the tiny model the Rust
//! service also gets the soak.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::frames::{self, Row};
use super::{Bench, CONCURRENCY, HTTP_PHOTO, Model, TILED_PHOTO};

/// A child process killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One load level's outcome.
pub struct Level {
    pub concurrency: usize,
    pub requests: usize,
    pub images_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub health_p50_ms: f64,
    pub health_p99_ms: f64,
    pub health_max_ms: f64,
}

/// Resident and peak resident memory of a process, MiB.
#[derive(Clone, Copy)]
pub struct Memory {
    pub rss_mib: f64,
    pub peak_mib: f64,
}

/// RSS after `baseline` requests and after `total`.
pub struct Soak {
    pub baseline: usize,
    pub total: usize,
    pub after_baseline_mib: f64,
    pub after_total_mib: f64,
}

impl Soak {
    pub fn growth_percent(&self) -> f64 {
        (self.after_total_mib / self.after_baseline_mib - 1.0) * 100.0
    }
}

/// One service's outcome with one model.
pub struct Service {
    /// After the warm-up.
    pub idle: Memory,
    /// After the load levels (steady).
    pub loaded: Memory,
    /// At the end: `peak_mib` is the high-water mark of the whole run.
    pub end: Memory,
    pub levels: Vec<Level>,
    pub tiled: Option<Level>,
    pub soak: Option<Soak>,
}

/// Both services with one model.
pub struct ModelRun {
    pub label: &'static str,
    /// Engine-only and the pipeline on the HTTP photo, both sides, right before the loads.
    pub reference: Row,
    /// Rust engine-only ms of the tiled photo (all views), right before the loads.
    pub tiled_engine_ms: Option<f64>,
    pub rust: Service,
    pub python: Service,
}

pub fn run(bench: &Bench, model: &Model) -> Result<ModelRun> {
    let options = bench.options;
    let photo = std::fs::read(bench.photo(HTTP_PHOTO))?;
    let photo = multipart(HTTP_PHOTO, "application/octet-stream", None, &photo);
    let real = model.label == "azaion";
    let tiled = if real {
        let bytes = std::fs::read(bench.photo(TILED_PHOTO))?;
        Some(multipart(TILED_PHOTO, "image/jpeg", None, &bytes))
    } else {
        None
    };
    let port = free_port()?;
    let config = bench.config(&format!("http-{}", model.label), &model.path, port)?;
    let label = model.label;
    // The references, just before the loads: the machine may have changed since the
    // stage table (twice its runs: one view is quick).
    println!("==> http: {label}: engine only on {HTTP_PHOTO}: Rust, then Python");
    let reference = frames::pair(bench, model, &config, HTTP_PHOTO, 2 * options.runs)?;
    let tiled_engine_ms = if real {
        println!("==> http: {label}: engine only on {TILED_PHOTO} (bench-frames --runs 1)");
        let line = frames::bench_frames(bench, &config, &bench.photo(TILED_PHOTO), 1)?;
        Some(frames::number(&line, "engine_ms")?)
    } else {
        None
    };
    println!(
        "==> http: {label}: the Rust service at concurrency {CONCURRENCY:?}, {} requests each",
        options.requests
    );
    let mut command = bench.detections(&config);
    command.arg("serve");
    let rust = measure(
        command,
        port,
        &photo,
        tiled.as_deref(),
        options,
        (!real).then_some(options.soak),
    )?;
    println!("==> http: {label}: the Python service (FastAPI on uvicorn, 2 workers)");
    let port = free_port()?;
    let mut command = Command::new(&bench.python);
    command
        .arg(bench.root.join("benches/python_service.py"))
        .arg("--model")
        .arg(&model.path)
        .arg("--classes")
        .arg(bench.root.join("classes.json"))
        .args(["--port", &port.to_string()])
        .args(["--threads", &options.threads.to_string()])
        .args(["--workers", "2"])
        .current_dir(bench.root);
    let python = measure(command, port, &photo, tiled.as_deref(), options, None)?;
    Ok(ModelRun {
        label,
        reference,
        tiled_engine_ms,
        rust,
        python,
    })
}

/// Starts a service, waits for `/health`, warms it up (the first request starts the
/// engine), loads it at each concurrency, then sends the tiled photo and runs the soak
/// if asked, reading memory between the steps.
pub fn measure(
    mut command: Command,
    port: u16,
    photo: &[u8],
    tiled: Option<&[u8]>,
    options: &super::Options,
    soak_requests: Option<usize>,
) -> Result<Service> {
    let server = Server(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start {:?}", command.get_program()))?,
    );
    let pid = server.0.id();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base)?;
    for _ in 0..3 {
        post(&base, photo)?;
    }
    let idle = memory(pid);
    let levels = CONCURRENCY
        .iter()
        .map(|&concurrency| load(&base, photo, concurrency, options.requests))
        .collect::<Result<Vec<_>>>()?;
    let loaded = memory(pid);
    let tiled = match tiled {
        Some(body) => {
            println!(
                "==> http: {TILED_PHOTO}, {} requests",
                options.tiled_requests
            );
            Some(load(&base, body, 1, options.tiled_requests)?)
        }
        None => None,
    };
    let soak = match soak_requests {
        Some(total) => Some(soak(&base, photo, total, pid)?),
        None => None,
    };
    let end = memory(pid);
    drop(server);
    Ok(Service {
        idle,
        loaded,
        end,
        levels,
        tiled,
        soak,
    })
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub fn wait_healthy(base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if ureq::get(&format!("{base}/health")).call().is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the service did not answer /health within 60 s")
}

pub const BOUNDARY: &str = "xtask-bench-boundary";

/// A `multipart/form-data` body: the optional `config` part, then the file.
pub fn multipart(filename: &str, content_type: &str, config: Option<&str>, file: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(file.len() + 512);
    if let Some(config) = config {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"config\"\r\n\r\n\
                 {config}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `POST /detect` of a [`multipart`] body, read to the end: the request's time.
pub fn post(base: &str, body: &[u8]) -> Result<Duration> {
    let started = Instant::now();
    let mut response = ureq::post(&format!("{base}/detect"))
        .header(
            "Content-Type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .send(body)
        .context("POST /detect failed")?;
    let mut sink = Vec::new();
    response.body_mut().as_reader().read_to_end(&mut sink)?;
    Ok(started.elapsed())
}

/// `requests` posts of `body` (rounded up to a multiple of `concurrency`) from
/// `concurrency` threads, with `/health` probed every 50 ms meanwhile.
fn load(base: &str, body: &[u8], concurrency: usize, requests: usize) -> Result<Level> {
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
    let body = Arc::new(body.to_vec());
    let per_worker = requests.div_ceil(concurrency);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (base, body) = (base.to_string(), Arc::clone(&body));
            std::thread::spawn(move || -> Result<Vec<f64>> {
                (0..per_worker)
                    .map(|_| post(&base, &body).map(|d| d.as_secs_f64() * 1000.0))
                    .collect()
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut failure = None;
    for worker in workers {
        match worker.join().map_err(|_| anyhow!("a load thread panicked")) {
            Ok(Ok(times)) => latencies.extend(times),
            Ok(Err(e)) | Err(e) => failure = Some(e),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut health = prober.join().map_err(|_| anyhow!("the prober panicked"))?;
    if let Some(e) = failure {
        return Err(e);
    }
    let health_max_ms = health.iter().copied().fold(f64::NAN, f64::max);
    Ok(Level {
        concurrency,
        requests: latencies.len(),
        images_per_s: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&mut latencies, 0.5),
        p99_ms: percentile(&mut latencies, 0.99),
        health_p50_ms: percentile(&mut health, 0.5),
        health_p99_ms: percentile(&mut health, 0.99),
        health_max_ms,
    })
}

fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    Memory {
        rss_mib: status_mib(&status, "VmRSS:"),
        peak_mib: status_mib(&status, "VmHWM:"),
    }
}

/// A `kB` field of /proc/<pid>/status, in MiB (NaN when absent).
fn status_mib(status: &str, field: &str) -> f64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// RSS after the first 100 requests (or half of a shorter soak) and after `total`, at
/// concurrency 4.
fn soak(base: &str, body: &[u8], total: usize, pid: u32) -> Result<Soak> {
    let baseline = 100.min(total / 2).max(1);
    println!("==> http: soak, {total} requests");
    let first = load(base, body, 4, baseline)?;
    let after_baseline_mib = memory(pid).rss_mib;
    let rest = load(base, body, 4, total.saturating_sub(first.requests).max(1))?;
    Ok(Soak {
        baseline: first.requests,
        total: first.requests + rest.requests,
        after_baseline_mib,
        after_total_mib: memory(pid).rss_mib,
    })
}

pub fn percentile(values: &mut [f64], q: f64) -> f64 {
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
    fn memory_fields_are_read_in_mib() {
        let status = "Name:\tdetections\nVmHWM:\t  262144 kB\nVmRSS:\t  131072 kB\n";
        assert_eq!(status_mib(status, "VmRSS:"), 128.0);
        assert_eq!(status_mib(status, "VmHWM:"), 256.0);
        assert!(status_mib(status, "VmSwap:").is_nan());
    }

    #[test]
    fn a_multipart_body_has_the_config_before_the_file() {
        let body = multipart("a.mp4", "video/mp4", Some("{\"x\": 1}"), b"BYTES");
        let text = String::from_utf8(body).unwrap();
        let config = text.find("name=\"config\"").unwrap();
        let file = text.find("filename=\"a.mp4\"").unwrap();
        assert!(config < file);
        assert!(text.ends_with(&format!("BYTES\r\n--{BOUNDARY}--\r\n")));
    }
}
