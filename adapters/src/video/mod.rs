//! Video decoding adapters.

pub mod ffmpeg;

pub use ffmpeg::{FfmpegConfig, FfmpegDecoder};
