//! `detections detect` and `detections bench-frames`: files from the command line,
//! without the HTTP service.

use std::process::ExitCode;
use std::sync::Arc;

use adapters::image::JpegAnnotator;
use detections::bench;
use detections::detect_files::DetectFiles;
use domain::settings::{RecognitionSettings, SettingsPatch};
use ports::VideoDecoder;

use crate::cli::{BenchArgs, DetectArgs};
use crate::compose::Core;
use crate::fail;

pub async fn detect(args: DetectArgs, core: Core, decoder: Arc<dyn VideoDecoder>) -> ExitCode {
    let settings = match detect_settings(&args) {
        Ok(settings) => settings,
        Err(e) => return fail(e),
    };
    let annotate = args.annotate.as_deref().map(|dir| {
        let writer: Arc<dyn ports::FrameAnnotator> = Arc::new(JpegAnnotator);
        (dir, writer)
    });
    let files = DetectFiles {
        engines: core.engines,
        detector: core.detector,
        decoder,
        progress: super::progress::for_stderr(),
    };
    let failed = files
        .run(
            &args.files,
            &settings,
            annotate,
            // Unlocked handles: a held stderr lock would block the runtime's log lines.
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )
        .await;
    exit_for(failed)
}

pub async fn bench_frames(args: BenchArgs, threads: usize, core: Core) -> ExitCode {
    let mut settings = Vec::new();
    for json in &args.settings {
        match SettingsPatch::from_json_str(json) {
            Ok(patch) => {
                settings.push((json.clone(), RecognitionSettings::default().merged(&patch)))
            }
            Err(e) => {
                eprintln!("--settings: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let failed = bench::run(
        &args.files,
        &settings,
        args.runs,
        threads,
        &core.engines,
        &core.detector,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .await;
    exit_for(failed)
}

/// Non-zero when any file failed.
fn exit_for(failed: usize) -> ExitCode {
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A flag that does not hold a valid setting; the message names the flag.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {reason}")]
struct FlagError {
    flag: &'static str,
    reason: String,
}

/// `--settings` JSON, then the dedicated flags over it.
fn detect_settings(args: &DetectArgs) -> Result<RecognitionSettings, FlagError> {
    let flag = |flag: &'static str| {
        move |e: domain::settings::SettingsError| FlagError {
            flag,
            reason: e.to_string(),
        }
    };
    let mut settings = RecognitionSettings::default();
    if let Some(json) = &args.settings {
        let patch = SettingsPatch::from_json_str(json).map_err(flag("--settings"))?;
        settings = settings.merged(&patch);
    }
    let mut flags = SettingsPatch::default();
    if let Some(threshold) = args.threshold {
        flags = flags
            .with_probability_threshold(threshold)
            .map_err(flag("--threshold"))?;
    }
    if let Some(batch) = args.batch {
        flags = flags
            .with_model_batch_size(batch)
            .map_err(flag("--batch"))?;
    }
    Ok(settings.merged(&flags))
}
