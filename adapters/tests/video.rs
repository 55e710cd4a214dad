//! The ffmpeg decoder against clips made at test time with `ffmpeg` from a real photo.
//! ffmpeg is required: without it these tests fail, saying so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use adapters::video::{FfmpegConfig, FfmpegDecoder};
use async_trait::async_trait;
use bytes::Bytes;
use ports::{ByteStream, DecodeOptions, VideoDecoder, VideoError, VideoSource};

fn photo() -> PathBuf {
    let dir = std::env::var_os("TEST_ASSETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets"));
    let photo = dir.join("photos/bus.png");
    assert!(
        photo.is_file(),
        "test photo {} missing: run `cargo xtask fetch`",
        photo.display()
    );
    photo
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("detections-video-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `ffmpeg` with `args`; panics with the reason when it is missing or fails.
fn ffmpeg(args: &[&str]) {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("the `ffmpeg` program is required for the video tests (apt-get install ffmpeg)");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// 300 frames at 25 fps (12 s) of the photo, 640 wide, faststart mp4.
fn static_clip(dir: &Path) -> PathBuf {
    let path = dir.join("static.mp4");
    let photo = photo();
    ffmpeg(&[
        "-loop",
        "1",
        "-i",
        photo.to_str().unwrap(),
        "-vf",
        "scale=640:-2",
        "-frames:v",
        "300",
        "-r",
        "25",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        path.to_str().unwrap(),
    ]);
    path
}

fn decoder(stall: Duration) -> FfmpegDecoder {
    FfmpegDecoder::new(FfmpegConfig {
        stall_timeout: stall,
        ..FfmpegConfig::default()
    })
}

#[tokio::test]
async fn every_fourth_of_300_frames_is_returned_with_its_timestamp() {
    let dir = scratch("period");
    let clip = static_clip(&dir);
    let mut stream = decoder(Duration::from_secs(30))
        .open(VideoSource::Path(clip), DecodeOptions { every_nth: 4 })
        .await
        .unwrap();
    let info = stream.info();
    assert_eq!(info.frames(), Some(300), "{info:?}");
    let mut frames = Vec::new();
    while let Some(frame) = stream.next_frame().await {
        frames.push(frame.unwrap());
    }
    assert_eq!(frames.len(), 75);
    for (n, f) in frames.iter().enumerate() {
        assert_eq!(f.index, n as u64 * 4);
        assert!(
            (f.timestamp - f.index as f64 / 25.0).abs() < 1e-3,
            "{} at {}",
            f.index,
            f.timestamp
        );
        // bus.png is 810×1080: 640 wide keeps its aspect.
        assert_eq!(
            (f.frame.size().width(), f.frame.size().height()),
            (640, 854)
        );
    }
}

struct Slow(Vec<Bytes>);

#[async_trait]
impl ByteStream for Slow {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, ports::UploadBrokeOff>> {
        if self.0.is_empty() {
            // Never ends: the stall bound must stop the decoder.
            std::future::pending::<()>().await;
        }
        Some(Ok(self.0.remove(0)))
    }
}

#[tokio::test]
async fn a_streamed_upload_decodes_before_it_ends_and_a_stalled_one_times_out() {
    let dir = scratch("stream");
    let clip = std::fs::read(static_clip(&dir)).unwrap();
    // Only the first half arrives, then nothing.
    let half = Bytes::from(clip[..clip.len() / 2].to_vec());
    let chunks = half.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
    let started = Instant::now();
    let mut stream = decoder(Duration::from_secs(2))
        .open(
            VideoSource::Stream(Box::new(Slow(chunks))),
            DecodeOptions { every_nth: 1 },
        )
        .await
        .unwrap();
    let first = stream.next_frame().await.unwrap().unwrap();
    assert_eq!(first.index, 0);
    let mut last = None;
    while let Some(item) = stream.next_frame().await {
        last = Some(item);
    }
    assert!(
        matches!(last, Some(Err(VideoError::Stalled(2)))),
        "{last:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn a_truncated_file_returns_its_frames_and_garbage_or_empty_input_is_unreadable() {
    let dir = scratch("broken");
    let clip = std::fs::read(static_clip(&dir)).unwrap();
    let truncated = Bytes::from(clip[..clip.len() / 2].to_vec());
    let mut stream = decoder(Duration::from_secs(30))
        .open(
            VideoSource::Memory(truncated),
            DecodeOptions { every_nth: 1 },
        )
        .await
        .unwrap();
    let mut decoded = 0;
    while let Some(Ok(_)) = stream.next_frame().await {
        decoded += 1;
    }
    assert!(decoded > 10 && decoded < 300, "{decoded} frames");

    let garbage: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for bytes in [Bytes::from(garbage), Bytes::new()] {
        let opened = decoder(Duration::from_secs(30))
            .open(VideoSource::Memory(bytes), DecodeOptions { every_nth: 1 })
            .await;
        match opened {
            Err(VideoError::Unreadable(reason)) => assert!(!reason.is_empty()),
            Err(other) => panic!("{other:?}"),
            Ok(mut stream) => assert!(matches!(
                stream.next_frame().await,
                Some(Err(VideoError::Unreadable(_))) | None
            )),
        }
    }
}

#[tokio::test]
async fn a_missing_program_is_unavailable() {
    let decoder = FfmpegDecoder::new(FfmpegConfig {
        program: PathBuf::from("/nonexistent/ffmpeg"),
        ..FfmpegConfig::default()
    });
    let dir = scratch("missing");
    let opened = decoder
        .open(
            VideoSource::Path(dir.join("x.mp4")),
            DecodeOptions { every_nth: 1 },
        )
        .await;
    assert!(opened.is_err());
}
