//! `detections detect <files…>`: the pipeline without the server. Photos give one JSON
//! line each; videos (by extension, [`is_video`]) one line per frame the service's
//! video rules keep (spec A6: `frame_period_recognition`, the tracking gate).

mod failure;
mod video;

pub use failure::FileFailure;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::settings::RecognitionSettings;
use ports::{DetectionDto, DrawnBox, FrameAnnotator, InferenceEngine, RgbFrame, VideoDecoder};
use serde::Serialize;

use crate::detect::FrameDetector;
use crate::engine::EngineManager;
use crate::progress::Progress;

#[derive(Serialize)]
struct FileResult<'a> {
    file: &'a str,
    detections: &'a [DetectionDto],
}

/// What detecting files needs: the engine, the detector, the video decoder and where
/// progress is shown.
pub struct DetectFiles {
    pub engines: Arc<EngineManager>,
    pub detector: Arc<FrameDetector>,
    pub decoder: Arc<dyn VideoDecoder>,
    pub progress: Arc<dyn Progress>,
}

impl DetectFiles {
    /// Runs every file; prints JSON lines on `out`, one reason per failure on `err`.
    /// Returns how many files failed.
    pub async fn run(
        &self,
        files: &[PathBuf],
        settings: &RecognitionSettings,
        annotate: Option<(&Path, Arc<dyn FrameAnnotator>)>,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> usize {
        let engine = match self.engines.ensure().await {
            Ok(engine) => engine,
            Err(unavailable) => {
                let _ = writeln!(err, "{unavailable}");
                return files.len();
            }
        };
        let mut failed = 0;
        for file in files {
            let shown = file.display().to_string();
            let outcome = if is_video(file) {
                video::detect(self, &engine, file, &shown, settings, out).await
            } else {
                self.photo(&engine, file, &shown, settings, annotate.as_ref(), out)
                    .await
            };
            if let Err(reason) = outcome {
                let _ = writeln!(err, "{shown}: {reason}");
                failed += 1;
            }
        }
        failed
    }

    async fn photo(
        &self,
        engine: &Arc<dyn InferenceEngine>,
        file: &Path,
        shown: &str,
        settings: &RecognitionSettings,
        annotate: Option<&(&Path, Arc<dyn FrameAnnotator>)>,
        out: &mut dyn Write,
    ) -> Result<(), FileFailure> {
        let worker = Arc::clone(&self.detector);
        let engine = Arc::clone(engine);
        let progress = Arc::clone(&self.progress);
        let settings = settings.clone();
        let path = file.to_path_buf();
        let name = shown.to_string();
        let (frame, dtos) = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path)?;
            let frame = Arc::new(worker.decode(&bytes)?);
            // A bar only for a photo cut into several tiles.
            let mut bar = None;
            let found =
                worker.detect_frame_reporting(&engine, &frame, &settings, &mut |done, total| {
                    if total > 1 {
                        bar.get_or_insert_with(|| {
                            progress.start(&name, Some(total as u64), "tiles")
                        })
                        .set(done as u64);
                    }
                });
            if let Some(bar) = bar {
                bar.finish(found.is_ok());
            }
            let detections = found?;
            Ok::<_, FileFailure>((frame, worker.to_dtos(&detections)))
        })
        .await??;
        let line = serde_json::to_string(&FileResult {
            file: shown,
            detections: &dtos,
        })
        .unwrap_or_default();
        let _ = writeln!(out, "{line}");
        if let Some((dir, annotator)) = annotate {
            let target = dir.join(annotated_name(file));
            let boxes = drawn_boxes(&frame, &dtos, self.detector.as_ref());
            annotator
                .write(&frame, &boxes, &target)
                .map_err(|reason| FileFailure::Annotated { target, reason })?;
        }
        Ok(())
    }
}

/// Containers the command line reads as videos (ffmpeg reads more: name them so).
const VIDEO_EXTENSIONS: [&str; 11] = [
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "mpg", "mpeg", "flv",
];

/// Whether `file` is read as a video (by its extension, case-insensitive).
pub fn is_video(file: &Path) -> bool {
    file.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn annotated_name(file: &Path) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    format!("{stem}.annotated.jpg")
}

fn drawn_boxes(frame: &RgbFrame, dtos: &[DetectionDto], detector: &FrameDetector) -> Vec<DrawnBox> {
    let (w, h) = (
        f64::from(frame.size().width()),
        f64::from(frame.size().height()),
    );
    let last_x = frame.size().width().saturating_sub(1);
    let last_y = frame.size().height().saturating_sub(1);
    let px = |v: f64, scale: f64, last: u32| ((v * scale).round().max(0.0) as u32).min(last);
    dtos.iter()
        .map(|d| DrawnBox {
            x1: px(d.center_x - d.width / 2.0, w, last_x),
            y1: px(d.center_y - d.height / 2.0, h, last_y),
            x2: px(d.center_x + d.width / 2.0, w, last_x),
            y2: px(d.center_y + d.height / 2.0, h, last_y),
            color: detector
                .classes()
                .get(d.class_num)
                .map(|c| c.color())
                .unwrap_or([255, 0, 0]),
            text: format!("{} {:.2}", d.label, d.confidence),
        })
        .collect()
}
