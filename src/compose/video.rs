//! `VideoDecoder`: frames out of a video file.

use std::sync::Arc;

use adapters::video::FfmpegDecoder;
use ports::VideoDecoder;

use crate::config::VideoConfig;

pub fn build(config: &VideoConfig) -> Arc<dyn VideoDecoder> {
    match config {
        VideoConfig::Ffmpeg(ffmpeg) => Arc::new(FfmpegDecoder::new(ffmpeg.into())),
    }
}
