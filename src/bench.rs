//! `detections bench-frames <files…>`: where a frame's time goes, stage by stage.
//!
//! One JSON line per file with the keys of `scripts/reference.py --bench N`, so the two
//! can be run side by side (`cargo xtask bench`). Every stage is timed over `runs` runs
//! after one warm-up run; `*_ms` is the mean, `*_p50_ms` the median.
//!
//! - `decode_ms`: read the file + [`FrameDetector::decode`] (the reference's
//!   `Image.open(path)` reads the file too).
//! - `preprocess_ms`: decode + every view letterboxed into the input tensor.
//! - `engine_ms`: [`ports::InferenceEngine::infer`] on the already filled tensors, all
//!   views of the frame (one call per view at the default batch size of 1).
//! - `full_ms`: decode + [`FrameDetector::detect_frame`] + [`FrameDetector::to_dtos`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use domain::settings::RecognitionSettings;
use ports::{EngineError, InferenceEngine, RgbFrame};
use serde::Serialize;

use crate::detect::FrameDetector;
use crate::detect_files::FileFailure;
use crate::engine::EngineManager;

/// One file's measurements, in milliseconds.
#[derive(Debug, Serialize)]
pub struct FileBench {
    pub file: String,
    pub width: u32,
    pub height: u32,
    pub views: usize,
    pub tiled: bool,
    pub runs: usize,
    pub threads: usize,
    pub decode_ms: f64,
    pub preprocess_ms: f64,
    pub engine_ms: f64,
    pub full_ms: f64,
    pub decode_p50_ms: f64,
    pub preprocess_p50_ms: f64,
    pub engine_p50_ms: f64,
    pub full_p50_ms: f64,
    pub detections: usize,
    /// The `--settings` this line was measured with, when any was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<String>,
}

/// Mean and median of one stage.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Timing {
    mean: f64,
    p50: f64,
}

/// Runs `stage` once to warm up, then `runs` times, timing each run.
fn measure<T>(
    runs: usize,
    mut stage: impl FnMut() -> Result<T, FileFailure>,
) -> Result<Timing, FileFailure> {
    stage()?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let value = stage()?;
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
        drop(value);
    }
    Ok(summarise(&mut samples))
}

fn summarise(samples: &mut [f64]) -> Timing {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let mean = samples.iter().sum::<f64>() / n.max(1) as f64;
    let p50 = match n {
        0 => 0.0,
        _ if n % 2 == 1 => samples[n / 2],
        _ => (samples[n / 2 - 1] + samples[n / 2]) / 2.0,
    };
    Timing { mean, p50 }
}

fn read_decode(detector: &FrameDetector, path: &Path) -> Result<RgbFrame, FileFailure> {
    let bytes = std::fs::read(path)?;
    Ok(detector.decode(&bytes)?)
}

/// Every stage of one file. Blocking.
pub fn bench_file(
    path: &Path,
    runs: usize,
    threads: usize,
    engine: &Arc<dyn InferenceEngine>,
    detector: &FrameDetector,
    settings: &RecognitionSettings,
) -> Result<FileBench, FileFailure> {
    let spec = engine.spec();
    let frame = read_decode(detector, path)?;
    let mut tensors = Vec::new();
    let views = detector.preprocess_frame(spec, &frame, settings, &mut tensors)?;
    let frame = Arc::new(frame);
    let full = |frame: &Arc<RgbFrame>| {
        let detections = detector.detect_frame(engine, frame, settings)?;
        Ok::<_, FileFailure>(detector.to_dtos(&detections))
    };
    let detections = full(&frame)?.len();
    let tiled = domain::tiling::plan_views(
        frame.size(),
        spec.input_size,
        settings,
        detector.view_rules(),
    )
    .is_tiled();

    let decode = measure(runs, || read_decode(detector, path))?;
    let mut scratch = Vec::new();
    let preprocess = measure(runs, || {
        let frame = read_decode(detector, path)?;
        Ok(detector.preprocess_frame(spec, &frame, settings, &mut scratch)?)
    })?;
    let infer = measure(runs, || {
        tensors
            .iter()
            .map(|tensor| engine.infer(tensor).map(drop))
            .collect::<Result<Vec<()>, EngineError>>()
            .map_err(FileFailure::from)
    })?;
    let whole = measure(runs, || full(&Arc::new(read_decode(detector, path)?)))?;
    Ok(FileBench {
        file: path.display().to_string(),
        width: frame.size().width(),
        height: frame.size().height(),
        views,
        tiled,
        runs: runs.max(1),
        threads,
        decode_ms: decode.mean,
        preprocess_ms: preprocess.mean,
        engine_ms: infer.mean,
        full_ms: whole.mean,
        decode_p50_ms: decode.p50,
        preprocess_p50_ms: preprocess.p50,
        engine_p50_ms: infer.p50,
        full_p50_ms: whole.p50,
        detections,
        settings: None,
    })
}

/// Ensures the engine, then benchmarks every file under each of `settings` (named by
/// their JSON text; none: the defaults, unnamed): one JSON line per file and settings on
/// `out`, one reason per failure (naming the file) on `err`. Returns how many failed.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    files: &[PathBuf],
    settings: &[(String, RecognitionSettings)],
    runs: usize,
    threads: usize,
    engines: &Arc<EngineManager>,
    detector: &Arc<FrameDetector>,
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
    let defaults = [(String::new(), RecognitionSettings::default())];
    let settings = if settings.is_empty() {
        &defaults[..]
    } else {
        settings
    };
    let mut failed = 0;
    for (file, (name, settings)) in files
        .iter()
        .flat_map(|f| settings.iter().map(move |s| (f, s)))
    {
        let (engine, detector) = (Arc::clone(&engine), Arc::clone(detector));
        let (path, settings) = (file.clone(), settings.clone());
        let name = (!name.is_empty()).then(|| name.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            bench_file(&path, runs, threads, &engine, &detector, &settings).map(|line| FileBench {
                settings: name,
                ..line
            })
        })
        .await
        .unwrap_or_else(|e| Err(e.into()));
        match outcome.and_then(|line| Ok(serde_json::to_string(&line)?)) {
            Ok(line) => {
                let _ = writeln!(out, "{line}");
            }
            Err(reason) => {
                let _ = writeln!(err, "{}: {reason}", file.display());
                failed += 1;
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(summarise(&mut [3.0, 1.0, 2.0]).p50, 2.0);
        assert_eq!(summarise(&mut [4.0, 1.0, 3.0, 2.0]).p50, 2.5);
        assert_eq!(summarise(&mut [4.0, 1.0, 3.0, 2.0]).mean, 2.5);
    }
}
