//! Composition root: the only place that names concrete adapters.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use adapters::engine::onnx::{OnnxEngineConfig, OnnxEngineFactory};
use adapters::image::{ImageCodec, JpegAnnotator, LetterboxPreprocessor};
use adapters::model_source::loader::{LoaderConfig, LoaderModelSource};
use adapters::model_source::local::LocalModelSource;
use clap::Parser;
use detections::cli::{BenchArgs, Cli, Command, DetectArgs};
use detections::config::{Config, EngineConfig, LayoutChoice, ModelSourceConfig};
use detections::detect::FrameDetector;
use detections::engine::{EngineManager, EngineOptions};
use detections::service::{Admission, Application};
use detections::{bench, detect_files, logging};
use domain::classes::ClassTable;
use domain::settings::{RecognitionSettings, SettingsPatch};
use ports::{EngineFactory, ModelSource};

/// Exit code for a configuration or set-up problem a person must fix.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => return fail(e),
    };
    if let Some(Command::BenchFrames(BenchArgs {
        threads: Some(threads),
        ..
    })) = &cli.command
    {
        let EngineConfig::Onnx { intra_threads, .. } = &mut config.engine;
        *intra_threads = *threads;
    }
    if cli.print_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    let _log_guard = match logging::init(&config.logging) {
        Ok(guard) => guard,
        Err(e) => return fail(e),
    };
    let classes = match load_classes(&config.classes.path) {
        Ok(classes) => Arc::new(classes),
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let parts = match compose(&config, classes) {
        Ok(parts) => parts,
        Err(e) => return fail(e),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(config, parts)),
        Command::Detect(args) => runtime.block_on(detect(args, parts)),
        Command::BenchFrames(args) => {
            let EngineConfig::Onnx { intra_threads, .. } = &config.engine;
            runtime.block_on(bench_frames(args, *intra_threads, parts))
        }
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("detections: {message}");
    ExitCode::from(EXIT_CONFIG)
}

fn load_classes(path: &Path) -> Result<ClassTable, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read classes file {}: {e}", path.display()))?;
    ClassTable::from_json(&text).map_err(|e| format!("classes file {}: {e}", path.display()))
}

struct Parts {
    engines: Arc<EngineManager>,
    detector: Arc<FrameDetector>,
}

/// Picks each port's adapter from its configured `kind`.
fn compose(config: &Config, classes: Arc<ClassTable>) -> Result<Parts, String> {
    let source: Arc<dyn ModelSource> = match &config.model_source {
        ModelSourceConfig::Local { dir } => Arc::new(LocalModelSource::new(dir)),
        ModelSourceConfig::Loader {
            url,
            folder,
            download_dir,
            timeout_secs,
            retries,
        } => Arc::new(LoaderModelSource::new(LoaderConfig {
            url: url.clone(),
            folder: folder.clone(),
            download_dir: download_dir.clone(),
            timeout: Duration::from_secs(*timeout_secs),
            retries: *retries,
        })?),
    };
    let factory: Arc<dyn EngineFactory> = match &config.engine {
        EngineConfig::Onnx {
            library,
            intra_threads,
            sessions,
            layout,
            max_batch,
            intra_spinning,
            ..
        } => Arc::new(OnnxEngineFactory::new(OnnxEngineConfig {
            library: library.clone(),
            intra_threads: *intra_threads,
            sessions: *sessions,
            layout: layout_override(*layout),
            max_batch: *max_batch,
            intra_spinning: *intra_spinning,
        })),
    };
    let engines = EngineManager::new(
        source,
        factory,
        Arc::clone(&classes),
        EngineOptions {
            model_name: config.model.name.clone(),
            start_wait: Duration::from_secs(config.model.start_wait_secs),
            retry_interval: Duration::from_secs(config.model.retry_interval_secs),
        },
    );
    let detector = Arc::new(FrameDetector::new(
        Arc::new(ImageCodec::default()),
        Arc::new(LetterboxPreprocessor::new()),
        classes,
        config.engine.nms_iou(),
    ));
    Ok(Parts { engines, detector })
}

fn layout_override(choice: LayoutChoice) -> Option<String> {
    match choice {
        LayoutChoice::Auto => None,
        LayoutChoice::End2end => Some("end2end".into()),
        LayoutChoice::Ultralytics => Some("ultralytics".into()),
        LayoutChoice::Yolov5 => Some("yolov5".into()),
    }
}

async fn serve(config: Config, parts: Parts) -> ExitCode {
    if config.model.start_at_boot {
        parts.engines.start_if_allowed();
    }
    let application = Arc::new(Application::new(
        Arc::clone(&parts.engines),
        parts.detector,
        Admission {
            max_running: config.detection.max_running,
            queue_capacity: config.detection.queue_capacity,
        },
    ));
    let listener = match tokio::net::TcpListener::bind(config.server.bind).await {
        Ok(listener) => listener,
        Err(e) => return fail(format!("cannot listen on {}: {e}", config.server.bind)),
    };
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(%address, "listening");
    let max_body = usize::try_from(config.server.max_body_bytes).unwrap_or(usize::MAX);
    let http = adapters::http::HttpConfig {
        max_body_bytes: max_body,
        sse_keep_alive: std::time::Duration::from_secs(config.server.sse_keep_alive_secs.max(1)),
    };
    match adapters::http::serve(listener, application, http, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

async fn detect(args: DetectArgs, parts: Parts) -> ExitCode {
    let settings = match detect_settings(&args) {
        Ok(settings) => settings,
        Err(e) => return fail(e),
    };
    let annotate = args.annotate.as_deref().map(|dir| {
        let writer: Arc<dyn ports::FrameAnnotator> = Arc::new(JpegAnnotator);
        (dir, writer)
    });
    let failed = detect_files::run(
        &args.files,
        &settings,
        &parts.engines,
        &parts.detector,
        annotate,
        // Unlocked handles: a held stderr lock would block the runtime's log lines.
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .await;
    exit_for(failed)
}

async fn bench_frames(args: BenchArgs, threads: usize, parts: Parts) -> ExitCode {
    let failed = bench::run(
        &args.files,
        args.runs,
        threads,
        &parts.engines,
        &parts.detector,
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

/// `--settings` JSON, then the dedicated flags over it.
fn detect_settings(args: &DetectArgs) -> Result<RecognitionSettings, String> {
    let mut settings = RecognitionSettings::default();
    if let Some(json) = &args.settings {
        let patch = SettingsPatch::from_json_str(json).map_err(|e| format!("--settings: {e}"))?;
        settings = settings.merged(&patch);
    }
    let mut flags = serde_json::Map::new();
    if let Some(threshold) = args.threshold {
        flags.insert("probability_threshold".into(), threshold.into());
    }
    if let Some(batch) = args.batch {
        flags.insert("model_batch_size".into(), batch.into());
    }
    let patch =
        SettingsPatch::from_json(&serde_json::Value::Object(flags)).map_err(|e| e.to_string())?;
    Ok(settings.merged(&patch))
}
