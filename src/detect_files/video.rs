//! One video file from the command line: decoded by the configured decoder, every
//! `frame_period_recognition`-th frame detected, and a line printed for each frame the
//! tracking gate keeps (what the service's video answer would hold).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use domain::settings::RecognitionSettings;
use domain::tracking::{AnnotationGate, Tracked, Verdict};
use ports::{DecodeOptions, DetectionDto, InferenceEngine, VideoSource};
use serde::Serialize;

use super::{DetectFiles, FileFailure};

#[derive(Serialize)]
struct FrameResult<'a> {
    file: &'a str,
    /// Index among all the video's frames (0-based).
    frame: u64,
    /// Seconds from the start.
    time: f64,
    detections: &'a [DetectionDto],
}

pub(super) async fn detect(
    tools: &DetectFiles,
    engine: &Arc<dyn InferenceEngine>,
    file: &Path,
    shown: &str,
    settings: &RecognitionSettings,
    out: &mut dyn Write,
) -> Result<(), FileFailure> {
    let every_nth = settings.frame_period_recognition().max(1);
    let mut frames = tools
        .decoder
        .open(
            VideoSource::Path(file.to_path_buf()),
            DecodeOptions { every_nth },
        )
        .await?;
    // Frames analysed, not decoded: every n-th of the container's estimate.
    let total = frames
        .info()
        .frames()
        .map(|all| all.div_ceil(u64::from(every_nth)));
    let bar = tools.progress.start(shown, total, "frames");
    let mut gate = AnnotationGate::new(settings);
    let mut done = 0;
    let outcome = loop {
        let frame = match frames.next_frame().await {
            None => break Ok(()),
            Some(Err(e)) => break Err(e.into()),
            Some(Ok(frame)) => frame,
        };
        let (index, timestamp) = (frame.index, frame.timestamp);
        let image = Arc::new(frame.frame);
        let worker = Arc::clone(&tools.detector);
        let engine = Arc::clone(engine);
        let frame_settings = settings.clone();
        let found = tokio::task::spawn_blocking(move || {
            worker.detect_frame(&engine, &image, &frame_settings)
        })
        .await;
        let detections = match found {
            Ok(Ok(detections)) => detections,
            Ok(Err(reason)) => break Err(FileFailure::VideoFrame { index, reason }),
            Err(aborted) => break Err(aborted.into()),
        };
        let tracked: Vec<Tracked> = detections.iter().map(Tracked::from).collect();
        if gate.offer(timestamp, &tracked) == Verdict::Accepted {
            let dtos = tools.detector.to_dtos(&detections);
            let line = serde_json::to_string(&FrameResult {
                file: shown,
                frame: index,
                time: timestamp,
                detections: &dtos,
            })
            .unwrap_or_default();
            let _ = writeln!(out, "{line}");
        }
        done += 1;
        bar.set(done);
    };
    bar.finish(outcome.is_ok());
    outcome
}
