//! Step 3, video (spec A11): a 720p clip made with ffmpeg from [`VIDEO_STILL`], sent
//! whole to the release service's `POST /detect`; inferred frames (the service's
//! `detections_video_frames_inferred_total`) per second of the request against
//! `bench-frames` engine-only images per second on the same 1280×720 photo (the same
//! views per frame), measured before and after the request.

use std::fmt::Write as _;
use std::io::Read as _;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::frames::{bench_frames, number};
use super::http::{Server, free_port, multipart, post, wait_healthy};
use super::{Bench, Model, VIDEO_STILL};

pub const FPS: usize = 25;
/// `frame_period_recognition`: every 4th frame is inferred.
pub const PERIOD: u64 = 4;

pub struct Video {
    pub model: String,
    pub clip_frames: usize,
    pub clip_mib: f64,
    pub views: f64,
    pub inferred: u64,
    pub request_s: f64,
    pub engine_before_ms: f64,
    pub engine_after_ms: f64,
}

impl Video {
    /// The reference: the mean of the engine-only times before and after.
    pub fn engine_ms(&self) -> f64 {
        (self.engine_before_ms + self.engine_after_ms) / 2.0
    }
    pub fn engine_per_s(&self) -> f64 {
        1000.0 / self.engine_ms()
    }
    pub fn frames_per_s(&self) -> f64 {
        self.inferred as f64 / self.request_s
    }
}

pub fn run(bench: &Bench, model: &Model) -> Result<Video> {
    let still = bench.photo(VIDEO_STILL);
    let clip = bench.scratch.join("street_720p.mp4");
    let seconds = bench.options.video_seconds.to_string();
    println!("==> video: a {seconds} s 1280×720 clip at {FPS} fps (ffmpeg)");
    // Temporal noise: every frame differs, so the decoder does real work.
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-loop", "1"])
        .arg("-i")
        .arg(&still)
        .args(["-vf", "noise=alls=12:allf=t", "-t", &seconds])
        .args([
            "-r",
            &FPS.to_string(),
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-movflags", "+faststart"])
        .arg(&clip)
        .status()
        .context("could not run ffmpeg (required for the video step)")?;
    if !status.success() {
        bail!("ffmpeg could not make the 720p clip");
    }
    let video = std::fs::read(&clip)?;
    let port = free_port()?;
    let config = bench.config("video", &model.path, port)?;
    // Twice the stage runs: the reference should be steadier than one run.
    let runs = 2 * bench.options.runs;
    println!("==> video: engine only on {VIDEO_STILL} (bench-frames)");
    let before = bench_frames(bench, &config, &still, runs)?;
    let server = Server(
        bench
            .detections(&config)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("could not start the service")?,
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&base)?;
    // Warm-up: the first request starts the engine.
    let photo = std::fs::read(&still)?;
    post(&base, &multipart(VIDEO_STILL, "image/jpeg", None, &photo))?;
    let inferred_before = inferred_frames(&base)?;
    println!("==> video: POST /detect of the clip, frame_period_recognition {PERIOD}");
    let config_part = format!("{{\"frame_period_recognition\": {PERIOD}}}");
    let body = multipart("street_720p.mp4", "video/mp4", Some(&config_part), &video);
    let took = post(&base, &body)?;
    let inferred = inferred_frames(&base)? - inferred_before;
    drop(server);
    // Again after it: the machine's load may have changed; the reference is the mean.
    println!("==> video: engine only again (bench-frames)");
    let after = bench_frames(bench, &config, &still, runs)?;
    Ok(Video {
        model: model.file_name(),
        clip_frames: bench.options.video_seconds * FPS,
        clip_mib: video.len() as f64 / 1048576.0,
        views: number(&before, "views")?,
        inferred,
        request_s: took.as_secs_f64(),
        engine_before_ms: number(&before, "engine_ms")?,
        engine_after_ms: number(&after, "engine_ms")?,
    })
}

/// The service's `detections_video_frames_inferred_total`.
fn inferred_frames(base: &str) -> Result<u64> {
    let mut response = ureq::get(&format!("{base}/metrics"))
        .call()
        .context("GET /metrics failed")?;
    let mut text = String::new();
    response.body_mut().as_reader().read_to_string(&mut text)?;
    Ok(counter(&text, "detections_video_frames_inferred_total"))
}

/// A counter without labels from a Prometheus text page (0 when absent).
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(name)?;
            rest.starts_with([' ', '\t'])
                .then(|| rest.trim().parse::<f64>().ok())?
        })
        .map_or(0, |v| v as u64)
}

/// The video section of the document.
pub fn section(video: &Video, threads: usize, seconds: usize) -> String {
    let mut out = String::from("## Video: inferred frames per second (spec A11)\n\n");
    let _ = write!(
        out,
        "Target: inferred frames per second ≥ 0.9 × engine-only images per second, same \
         model, same run. The clip: `{VIDEO_STILL}` with temporal noise, {seconds} s at \
         {FPS} fps ({} frames, H.264, {:.1} MiB), sent whole to `POST /detect` with \
         `frame_period_recognition` {PERIOD}; the service decodes it with ffmpeg and \
         infers every {PERIOD}th frame (counted by \
         `detections_video_frames_inferred_total`). The engine-only reference is \
         `bench-frames` on the same 1280×720 photo: {} views per frame (tiles of the 640 \
         model), so both sides do the same engine work per frame. The request's time \
         includes the upload, decoding, the tracking gate and the answer; the engine is \
         started before it. `bench-frames` runs before and after the request ({:.1} and \
         {:.1} ms per frame); the reference is their mean. The Python service has no \
         video path, so this row has no Python side.\n\n\
         | model | threads | inferred frames | request s | inferred frames/s \
         | engine-only ms per frame | engine-only frames/s | ÷ engine-only |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n\
         | {} | {threads} | {} | {:.2} | {:.3} | {:.1} | {:.3} | {:.2} |\n",
        video.clip_frames,
        video.clip_mib,
        video.views,
        video.engine_before_ms,
        video.engine_after_ms,
        video.model,
        video.inferred,
        video.request_s,
        video.frames_per_s(),
        video.engine_ms(),
        video.engine_per_s(),
        video.frames_per_s() / video.engine_per_s(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_is_read_by_its_exact_name() {
        let text = "# TYPE detections_video_frames_inferred_total counter\n\
                    detections_video_frames_inferred_total_extra 9\n\
                    detections_video_frames_inferred_total 63\n";
        assert_eq!(counter(text, "detections_video_frames_inferred_total"), 63);
        assert_eq!(counter(text, "nope"), 0);
    }
}
