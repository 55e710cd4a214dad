//! The `ffmpeg` program as a child process: the container goes in (a file, or stdin
//! for an upload still arriving), PPM frames (`rgb24`, each with its own size header)
//! come out of stdout, and the `showinfo` filter prints every returned frame's
//! timestamp on stderr. A hostile file can only crash or stall the child: it runs
//! under an address-space limit, with a bounded thread count, only the `file` and
//! `pipe` protocols, and is killed when no frame arrives within the stall timeout or
//! when the stream is dropped.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use domain::geometry::Size;
use ports::{
    DecodeOptions, FrameStream, RgbFrame, VideoDecoder, VideoError, VideoFrame, VideoInfo,
    VideoSource,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone)]
pub struct FfmpegConfig {
    /// The `ffmpeg` program (a name on `PATH` or a path).
    pub program: PathBuf,
    /// Longest wait for the header or the next frame before the child is killed.
    pub stall_timeout: Duration,
    /// Address-space limit of the child (`ulimit -v`), bytes.
    pub memory_limit_bytes: u64,
    /// Decoder threads of the child.
    pub threads: u32,
    /// Largest frame (width × height) accepted.
    pub max_pixels: u64,
}

impl Default for FfmpegConfig {
    fn default() -> Self {
        Self {
            program: PathBuf::from("ffmpeg"),
            stall_timeout: Duration::from_secs(60),
            memory_limit_bytes: 4 << 30,
            threads: 2,
            max_pixels: 7680 * 4320,
        }
    }
}

pub struct FfmpegDecoder {
    config: FfmpegConfig,
}

impl FfmpegDecoder {
    pub fn new(config: FfmpegConfig) -> Self {
        Self { config }
    }

    /// Fails when the program cannot run (a set-up check for start-up and tests).
    pub async fn check(&self) -> Result<String, VideoError> {
        let output = Command::new(&self.config.program)
            .arg("-version")
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| unavailable(&self.config, e))?;
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(text.lines().next().unwrap_or_default().to_string())
    }

    fn command(&self, input: &str, every_nth: u32) -> Command {
        let limit_kib = (self.config.memory_limit_bytes / 1024).max(1);
        // `sh` applies the limit, then becomes ffmpeg: no unsafe `pre_exec` here.
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("ulimit -v \"$0\" && exec \"$@\"")
            .arg(limit_kib.to_string())
            .arg(&self.config.program)
            .args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"])
            .args(["-protocol_whitelist", "file,pipe"])
            .args(["-threads", &self.config.threads.to_string()])
            .args(["-i", input])
            .args(["-map", "0:v:0", "-an", "-sn", "-dn"])
            .args([
                "-vf",
                &format!("select=not(mod(n\\,{})),showinfo", every_nth.max(1)),
            ])
            .args(["-fps_mode", "passthrough"])
            .args([
                "-f",
                "image2pipe",
                "-c:v",
                "ppm",
                "-pix_fmt",
                "rgb24",
                "pipe:1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }
}

fn unavailable(config: &FfmpegConfig, e: std::io::Error) -> VideoError {
    VideoError::Unavailable(format!("cannot run {}: {e}", config.program.display()))
}

/// A file written for an in-memory upload, removed with the stream.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[async_trait]
impl VideoDecoder for FfmpegDecoder {
    async fn open(
        &self,
        source: VideoSource,
        options: DecodeOptions,
    ) -> Result<Box<dyn FrameStream>, VideoError> {
        let mut temp = None;
        let mut upload = None;
        let input = match source {
            VideoSource::Path(path) => format!("file:{}", path.display()),
            VideoSource::Memory(bytes) => {
                // An mp4 with its index at the end cannot be read from a pipe.
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path = std::env::temp_dir()
                    .join(format!("detections-video-{}-{n}", std::process::id()));
                tokio::fs::write(&path, &bytes)
                    .await
                    .map_err(|e| VideoError::Unavailable(format!("temporary file: {e}")))?;
                let input = format!("file:{}", path.display());
                temp = Some(TempFile(path));
                input
            }
            VideoSource::Stream(stream) => {
                upload = Some(stream);
                "pipe:0".to_string()
            }
        };
        let mut command = self.command(&input, options.every_nth);
        command.stdin(if upload.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = command.spawn().map_err(|e| unavailable(&self.config, e))?;
        if let (Some(mut stream), Some(mut stdin)) = (upload, child.stdin.take()) {
            tokio::spawn(async move {
                while let Some(Ok(chunk)) = stream.next_chunk().await {
                    // The child stopped reading (it failed or has what it needs).
                    if stdin.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
                // Dropping stdin ends ffmpeg's input: an upload that broke off is a
                // truncated file to it; the caller sees the break in its own copy.
            });
        }
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (header_tx, header_rx) = oneshot::channel();
        let (times_tx, times_rx) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let damaged = Arc::new(AtomicBool::new(false));
        tokio::spawn(read_stderr(
            stderr,
            header_tx,
            times_tx,
            Arc::clone(&log),
            Arc::clone(&damaged),
        ));
        let stall = self.config.stall_timeout;
        let info = match tokio::time::timeout(stall, header_rx).await {
            Ok(Ok(info)) => info,
            // stderr ended before any output was set up: ffmpeg failed on the input.
            Ok(Err(_)) => {
                let _ = child.wait().await;
                return Err(VideoError::Unreadable(reason(&log)));
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err(VideoError::Stalled(stall.as_secs()));
            }
        };
        Ok(Box::new(FfmpegFrames {
            child,
            stdout: BufReader::with_capacity(1 << 20, stdout),
            times: times_rx,
            log,
            damaged,
            info: info.info,
            start: info.start,
            every_nth: u64::from(options.every_nth.max(1)),
            returned: 0,
            stall,
            max_pixels: self.config.max_pixels,
            done: false,
            _temp: temp,
        }))
    }
}

struct Header {
    info: VideoInfo,
    start: f64,
}

/// Reads ffmpeg's log: the input's duration and rate (sent once the output is set up),
/// each returned frame's `pts_time`, and the last other lines (the reason of a failure).
async fn read_stderr(
    stderr: tokio::process::ChildStderr,
    header_tx: oneshot::Sender<Header>,
    times_tx: mpsc::UnboundedSender<f64>,
    log: Arc<Mutex<VecDeque<String>>>,
    damaged: Arc<AtomicBool>,
) {
    let mut lines = BufReader::new(stderr).lines();
    let mut header = Some(header_tx);
    let mut info = VideoInfo::default();
    let mut start = 0.0;
    let mut video_seen = false;
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("Parsed_showinfo") {
            if let Some(t) = field(&line, "pts_time:") {
                let _ = times_tx.send(t);
            }
            continue;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("Duration:") {
            let mut parts = trimmed.split(',');
            if let Some(d) = parts
                .next()
                .and_then(|p| parse_clock(p.trim_start_matches("Duration:").trim()))
            {
                info.duration_secs = Some(d);
            }
            if let Some(s) = field(trimmed, "start:") {
                start = s;
            }
        } else if trimmed.starts_with("Stream #0:") && trimmed.contains("Video:") && !video_seen {
            video_seen = true;
            info.fps = trimmed
                .split(',')
                .find_map(|p| p.trim().strip_suffix(" fps").and_then(|v| v.parse().ok()));
        } else if trimmed.starts_with("Output #0") {
            if let Some(tx) = header.take() {
                let _ = tx.send(Header { info, start });
            }
        } else {
            if DAMAGE.iter().any(|d| line.contains(d)) {
                damaged.store(true, Ordering::Relaxed);
            }
            let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
            if log.len() == 6 {
                log.pop_front();
            }
            log.push_back(line);
        }
    }
}

/// Log lines of a damaged input that ffmpeg still ends with success: the data ran out
/// (a truncated mp4 says `partial file`) or a packet could not be decoded. A clean end
/// after one of them is reported as broken: what decoded was processed, the rest not.
const DAMAGE: [&str; 4] = [
    "partial file",
    "Truncating packet",
    "Invalid data found when processing input",
    "Error while decoding stream",
];

/// The number after `key` in a log line.
fn field(line: &str, key: &str) -> Option<f64> {
    let at = line.find(key)? + key.len();
    line[at..]
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()?
        .parse()
        .ok()
}

/// `HH:MM:SS.ss` → seconds (`N/A` → `None`).
fn parse_clock(text: &str) -> Option<f64> {
    let mut parts = text.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// The last lines ffmpeg logged, as a failure's reason.
fn reason(log: &Mutex<VecDeque<String>>) -> String {
    let log = log.lock().unwrap_or_else(|p| p.into_inner());
    // Indented lines are the input's description (metadata, the stream mapping), not
    // what went wrong.
    let text: Vec<&str> = log
        .iter()
        .filter(|l| !l.starts_with("  "))
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with("Stream mapping") && !l.starts_with("Press"))
        .collect();
    // Where damage was logged, that is the reason (not the closing summary).
    let damage: Vec<&str> = text
        .iter()
        .copied()
        .filter(|l| DAMAGE.iter().any(|d| l.contains(d)))
        .collect();
    let text = if damage.is_empty() { text } else { damage };
    if text.is_empty() {
        "ffmpeg produced no frames".into()
    } else {
        text.join("; ").chars().take(600).collect()
    }
}

struct FfmpegFrames {
    child: Child,
    stdout: BufReader<ChildStdout>,
    times: mpsc::UnboundedReceiver<f64>,
    log: Arc<Mutex<VecDeque<String>>>,
    /// ffmpeg logged damage (see [`DAMAGE`]).
    damaged: Arc<AtomicBool>,
    info: VideoInfo,
    start: f64,
    every_nth: u64,
    returned: u64,
    stall: Duration,
    max_pixels: u64,
    done: bool,
    _temp: Option<TempFile>,
}

impl FfmpegFrames {
    async fn read_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        let Some(size) = self.read_header().await? else {
            return Ok(None);
        };
        let (w, h) = (size.width() as u64, size.height() as u64);
        if w * h > self.max_pixels {
            return Err(VideoError::Broken(format!(
                "frame of {w}×{h} pixels exceeds the limit of {} pixels",
                self.max_pixels
            )));
        }
        // Straight from the pipe into the frame's own buffer: no other full-frame copy.
        let mut pixels = vec![0u8; (w * h * 3) as usize];
        self.stdout
            .read_exact(&mut pixels)
            .await
            .map_err(|e| VideoError::Broken(format!("frame cut short: {e}")))?;
        let frame = RgbFrame::new(size, pixels).expect("the buffer has the frame's size");
        let timestamp = match self.times.recv().await {
            Some(t) => (t - self.start).max(0.0),
            // No log line (should not happen): the frame's nominal time.
            None => self.returned as f64 * self.every_nth as f64 / self.info.fps.unwrap_or(25.0),
        };
        let index = self.returned * self.every_nth;
        self.returned += 1;
        Ok(Some(VideoFrame {
            index,
            timestamp,
            frame,
        }))
    }

    /// `P6 <w> <h> 255` and one whitespace; `None` at a clean end of output.
    async fn read_header(&mut self) -> Result<Option<Size>, VideoError> {
        let mut tokens: Vec<String> = Vec::with_capacity(4);
        let mut token = String::new();
        loop {
            let mut byte = [0u8; 1];
            let n = self
                .stdout
                .read(&mut byte)
                .await
                .map_err(|e| VideoError::Broken(e.to_string()))?;
            if n == 0 {
                if tokens.is_empty() && token.is_empty() {
                    return Ok(None);
                }
                return Err(VideoError::Broken("frame header cut short".into()));
            }
            let c = byte[0];
            if c.is_ascii_whitespace() {
                if !token.is_empty() {
                    tokens.push(std::mem::take(&mut token));
                    if tokens.len() == 4 {
                        break;
                    }
                }
            } else if token.len() < 12 {
                token.push(c as char);
            } else {
                return Err(VideoError::Broken("malformed frame header".into()));
            }
        }
        let number = |t: &str| t.parse::<u32>().ok().filter(|v| *v > 0);
        match (
            tokens[0].as_str(),
            number(&tokens[1]),
            number(&tokens[2]),
            tokens[3].as_str(),
        ) {
            ("P6", Some(w), Some(h), "255") => Size::new(w, h)
                .map(Some)
                .map_err(|e| VideoError::Broken(e.to_string())),
            _ => Err(VideoError::Broken(format!(
                "unexpected frame header {tokens:?}"
            ))),
        }
    }
}

#[async_trait]
impl FrameStream for FfmpegFrames {
    fn info(&self) -> VideoInfo {
        self.info
    }

    async fn next_frame(&mut self) -> Option<Result<VideoFrame, VideoError>> {
        if self.done {
            return None;
        }
        let outcome = match tokio::time::timeout(self.stall, self.read_frame()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(VideoError::Stalled(self.stall.as_secs())),
        };
        match outcome {
            Ok(Some(frame)) => Some(Ok(frame)),
            Ok(None) => {
                self.done = true;
                let status = self.child.wait().await;
                match status {
                    // A truncated file ends "successfully" with the frames it had.
                    Ok(s)
                        if s.success()
                            && self.returned > 0
                            && self.damaged.load(Ordering::Relaxed) =>
                    {
                        Some(Err(VideoError::Broken(reason(&self.log))))
                    }
                    Ok(s) if s.success() => None,
                    // Output ended early: a truncated or corrupt input. What decoded
                    // was returned; the caller learns why the rest did not.
                    _ if self.returned > 0 => Some(Err(VideoError::Broken(reason(&self.log)))),
                    _ => Some(Err(VideoError::Unreadable(reason(&self.log)))),
                }
            }
            Err(e) => {
                self.done = true;
                let _ = self.child.kill().await;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_fields_parse() {
        let line = "[Parsed_showinfo_1 @ 0x55] n:   3 pts:  12288 pts_time:0.48    duration:512";
        assert_eq!(field(line, "pts_time:"), Some(0.48));
        assert_eq!(parse_clock("00:01:02.50"), Some(62.5));
        assert_eq!(parse_clock("N/A"), None);
    }
}
