//! Video: decoding a container into RGB frames, in order, with their timestamps.

use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;

use crate::frame::RgbFrame;

/// Chunks of an upload as they arrive (`POST /detect/video`). `None` ends it; an error
/// means the upload broke off.
#[async_trait]
pub trait ByteStream: Send {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, UploadBrokeOff>>;
}

/// Why an upload's body stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadBrokeOff {
    /// More arrived than the body limit allows.
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The connection or the body's framing failed.
    #[error("{0}")]
    Transport(String),
}

/// Where the video's bytes come from.
pub enum VideoSource {
    /// A stored file (seekable: any container, also mp4 with its index at the end).
    Path(PathBuf),
    /// A whole upload held in memory.
    Memory(Bytes),
    /// An upload still arriving: decoding starts with the first bytes wherever the
    /// container allows (mp4 with its index first, mkv, webm, mpeg-ts).
    Stream(Box<dyn ByteStream>),
}

impl std::fmt::Debug for VideoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Path(p) => write!(f, "Path({})", p.display()),
            Self::Memory(b) => write!(f, "Memory({} bytes)", b.len()),
            Self::Stream(_) => f.write_str("Stream"),
        }
    }
}

/// How to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Only every `every_nth` frame (0, n, 2n, …) is converted and returned
    /// (`frame_period_recognition`); the others are decoded and dropped.
    pub every_nth: u32,
}

/// What is known about the video once its header is read.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VideoInfo {
    /// Seconds, when the container says.
    pub duration_secs: Option<f64>,
    /// Frames per second of the video stream, when known.
    pub fps: Option<f64>,
}

impl VideoInfo {
    /// The estimated number of frames (duration × rate), when both are known.
    pub fn frames(&self) -> Option<u64> {
        match (self.duration_secs, self.fps) {
            (Some(d), Some(r)) if d > 0.0 && r > 0.0 => Some((d * r).round() as u64),
            _ => None,
        }
    }
}

/// One decoded frame of a video.
#[derive(Debug)]
pub struct VideoFrame {
    /// Index among all frames of the video (0-based), not only the returned ones.
    pub index: u64,
    /// Presentation time, seconds from the start.
    pub timestamp: f64,
    pub frame: RgbFrame,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VideoError {
    /// Not a video we can read: unknown container, unsupported codec, no video stream,
    /// garbage. The client's input.
    #[error("not a decodable video: {0}")]
    Unreadable(String),
    /// Decoding stopped part-way (truncated or corrupt data, a frame over the limits).
    #[error("video decoding failed: {0}")]
    Broken(String),
    /// No frame came within the time bound; the decoder was stopped.
    #[error("video decoding stalled: no frame within {0} s")]
    Stalled(u64),
    /// The decoder itself cannot run (missing program, no resources). Ours.
    #[error("the video decoder is unavailable: {0}")]
    Unavailable(String),
}

/// Frames of one video, in order. Dropping it stops the decoder.
#[async_trait]
pub trait FrameStream: Send {
    fn info(&self) -> VideoInfo;
    /// The next returned frame; `None` at the end of the video.
    async fn next_frame(&mut self) -> Option<Result<VideoFrame, VideoError>>;
}

/// Opens videos. Decoding is bounded in time and memory; a hostile file fails its own
/// stream, never the caller.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait VideoDecoder: Send + Sync {
    /// Starts decoding; returns once the container's header is read.
    async fn open(
        &self,
        source: VideoSource,
        options: DecodeOptions,
    ) -> Result<Box<dyn FrameStream>, VideoError>;
}
