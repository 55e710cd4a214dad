//! `detections detect <files…>`: the pipeline without the server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::settings::RecognitionSettings;
use ports::{DetectionDto, DrawnBox, FrameAnnotator, RgbFrame};
use serde::Serialize;

use crate::detect::FrameDetector;
use crate::engine::EngineManager;

#[derive(Serialize)]
struct FileResult<'a> {
    file: &'a str,
    detections: &'a [DetectionDto],
}

/// Runs every file; prints one JSON line per success on `out`, one reason per failure on
/// `err`. Returns how many files failed.
pub async fn run(
    files: &[PathBuf],
    settings: &RecognitionSettings,
    engines: &Arc<EngineManager>,
    detector: &Arc<FrameDetector>,
    annotate: Option<(&Path, Arc<dyn FrameAnnotator>)>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> usize {
    let engine = match engines.ensure().await {
        Ok(engine) => engine,
        Err(unavailable) => {
            let _ = writeln!(err, "{unavailable}");
            return files.len();
        }
    };
    let mut failed = 0;
    for file in files {
        let shown = file.display().to_string();
        let worker = Arc::clone(detector);
        let engine = Arc::clone(&engine);
        let settings = settings.clone();
        let path = file.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path).map_err(|e| format!("cannot read: {e}"))?;
            let frame = Arc::new(worker.decode(&bytes).map_err(|e| e.to_string())?);
            let detections = worker
                .detect_frame(&engine, &frame, &settings)
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((frame, worker.to_dtos(&detections)))
        })
        .await
        .unwrap_or_else(|e| Err(format!("aborted: {e}")));
        match outcome {
            Ok((frame, dtos)) => {
                let line = serde_json::to_string(&FileResult {
                    file: &shown,
                    detections: &dtos,
                })
                .unwrap_or_default();
                let _ = writeln!(out, "{line}");
                if let Some((dir, annotator)) = &annotate {
                    let target = dir.join(annotated_name(file));
                    let boxes = drawn_boxes(&frame, &dtos, detector.as_ref());
                    if let Err(e) = annotator.write(&frame, &boxes, &target) {
                        let _ = writeln!(err, "{shown}: cannot write {}: {e}", target.display());
                        failed += 1;
                    }
                }
            }
            Err(reason) => {
                let _ = writeln!(err, "{shown}: {reason}");
                failed += 1;
            }
        }
    }
    failed
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
