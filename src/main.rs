//! Composition root: the only place that names concrete adapters.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use adapters::annotations::file::JsonLinesSink;
use adapters::annotations::http::{AnnotationsClient, AnnotationsClientConfig};
use adapters::annotations::outbox::{Outbox, OutboxConfig};
use adapters::annotations::webhook::{WebhookSink, WebhookSinkConfig};
use adapters::engine::onnx::{
    GpuEngineConfig, GpuEngineFactory, OnnxEngineConfig, OnnxEngineFactory,
};
use adapters::events::{EventBus, EventBusConfig};
use adapters::gpu::CudaDriverProbe;
use adapters::http::HttpConfig;
use adapters::image::{ImageCodec, JpegAnnotator, LetterboxPreprocessor};
use adapters::media::{FolderMediaStore, LocalMediaCatalog};
use adapters::model_source::loader::{LoaderConfig, LoaderModelSource};
use adapters::model_source::local::LocalModelSource;
use adapters::video::{FfmpegConfig, FfmpegDecoder};
use clap::Parser;
use detections::cli::{BenchArgs, Cli, Command, DetectArgs};
use detections::config::{
    AnnotationsConfig, Config, EngineConfig, LayoutChoice, ModelSourceConfig, VideoConfig,
};
use detections::detect::FrameDetector;
use detections::engine::{EngineManager, EngineOptions, GpuSetup};
use detections::service::{Admission, Application, Collaborators, Limits};
use detections::{bench, detect_files, logging};
use domain::classes::ClassTable;
use domain::settings::{RecognitionSettings, SettingsPatch};
use ports::{
    AnnotationSink, EngineFactory, GpuProbe, MediaCatalog, MemoryBudget, ModelSource, Precision,
};

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
        && let EngineConfig::Onnx { intra_threads, .. } = &mut config.engine
    {
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
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.detection.runtime_threads > 0 {
        runtime.worker_threads(config.detection.runtime_threads);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    if let Some(Command::GpuInfo) = &cli.command {
        return gpu_info(&config);
    }
    let parts = match compose(&config, classes) {
        Ok(parts) => parts,
        Err(e) => return fail(e),
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(config, parts)),
        Command::Detect(args) => runtime.block_on(detect(args, parts)),
        Command::BenchFrames(args) => {
            let threads = match &config.engine {
                EngineConfig::Onnx { intra_threads, .. } => *intra_threads,
                EngineConfig::Tensorrt { .. } | EngineConfig::Cuda { .. } => 0,
            };
            runtime.block_on(bench_frames(args, threads, parts))
        }
        Command::GpuInfo => gpu_info(&config),
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
    let options = EngineOptions {
        model_name: config.model.name.clone(),
        start_wait: Duration::from_secs(config.model.start_wait_secs),
        retry_interval: Duration::from_secs(config.model.retry_interval_secs),
    };
    let engines = match &config.engine {
        EngineConfig::Onnx { .. } => EngineManager::new(
            source,
            cpu_factory(&config.engine),
            Arc::clone(&classes),
            options,
        ),
        EngineConfig::Tensorrt {
            library,
            cuda_driver,
            device_id,
            allow_cpu_fallback,
            layout,
            max_batch,
            fp16,
            int8,
            workspace_bytes,
            cache_dir,
            ..
        } => {
            let onnx = gpu_onnx_config(library, *layout, *max_batch);
            let factory = GpuEngineFactory::new(GpuEngineConfig {
                onnx: onnx.clone(),
                device_id: *device_id,
                workspace_bytes: *workspace_bytes,
                cache_dir: cache_dir.clone(),
            });
            let setup = GpuSetup {
                probe: Arc::new(CudaDriverProbe::new(cuda_driver, *device_id)),
                tensorrt: true,
                fp16: *fp16,
                int8: *int8,
                // Engines built here before: the cache volume, asked before the Loader.
                local_engines: Some(Arc::new(LocalModelSource::new(cache_dir))),
                cpu_fallback: allow_cpu_fallback
                    .then(|| Arc::new(OnnxEngineFactory::new(onnx)) as Arc<dyn EngineFactory>),
            };
            EngineManager::with_gpu(
                source,
                Arc::new(factory),
                Arc::clone(&classes),
                options,
                setup,
            )
        }
        EngineConfig::Cuda {
            library,
            cuda_driver,
            device_id,
            allow_cpu_fallback,
            layout,
            max_batch,
            ..
        } => {
            let onnx = gpu_onnx_config(library, *layout, *max_batch);
            let factory = GpuEngineFactory::new(GpuEngineConfig {
                onnx: onnx.clone(),
                device_id: *device_id,
                workspace_bytes: 0,
                cache_dir: PathBuf::new(),
            });
            let setup = GpuSetup {
                probe: Arc::new(CudaDriverProbe::new(cuda_driver, *device_id)),
                tensorrt: false,
                fp16: false,
                int8: false,
                local_engines: None,
                cpu_fallback: allow_cpu_fallback
                    .then(|| Arc::new(OnnxEngineFactory::new(onnx)) as Arc<dyn EngineFactory>),
            };
            EngineManager::with_gpu(
                source,
                Arc::new(factory),
                Arc::clone(&classes),
                options,
                setup,
            )
        }
    };
    let detector = Arc::new(
        FrameDetector::new(
            Arc::new(ImageCodec::default()),
            Arc::new(LetterboxPreprocessor::new()),
            classes,
            config.engine.nms_iou(),
            config.detection.batching(),
        )
        .with_view_rules(config.view_rules()),
    );
    Ok(Parts { engines, detector })
}

/// The GPU engine's ONNX Runtime settings: one session (the GPU runs one call at a time).
fn gpu_onnx_config(
    library: &Path,
    layout: LayoutChoice,
    max_batch: Option<usize>,
) -> OnnxEngineConfig {
    OnnxEngineConfig {
        library: library.to_path_buf(),
        layout: layout_override(layout),
        max_batch,
        ..OnnxEngineConfig::default()
    }
}

/// The CPU engine of `EngineConfig::Onnx`.
fn cpu_factory(engine: &EngineConfig) -> Arc<dyn EngineFactory> {
    match engine {
        EngineConfig::Onnx {
            library,
            intra_threads,
            sessions,
            layout,
            max_batch,
            intra_spinning,
            inference_nice,
            ..
        } => Arc::new(OnnxEngineFactory::new(OnnxEngineConfig {
            library: library.clone(),
            intra_threads: *intra_threads,
            sessions: *sessions,
            layout: layout_override(*layout),
            max_batch: *max_batch,
            intra_spinning: *intra_spinning,
            inference_nice: *inference_nice,
        })),
        EngineConfig::Tensorrt {
            library,
            layout,
            max_batch,
            ..
        }
        | EngineConfig::Cuda {
            library,
            layout,
            max_batch,
            ..
        } => Arc::new(OnnxEngineFactory::new(gpu_onnx_config(
            library, *layout, *max_batch,
        ))),
    }
}

/// `detections gpu-info`: what the GPU probe sees and the engine file this host would
/// use, as JSON; exit code 1 without a usable GPU.
fn gpu_info(config: &Config) -> ExitCode {
    let (driver, device, int8) = match &config.engine {
        EngineConfig::Tensorrt {
            cuda_driver,
            device_id,
            int8,
            ..
        } => (cuda_driver.clone(), *device_id, *int8),
        EngineConfig::Cuda {
            cuda_driver,
            device_id,
            ..
        } => (cuda_driver.clone(), *device_id, false),
        EngineConfig::Onnx { .. } => (PathBuf::from("libcuda.so.1"), 0, false),
    };
    match CudaDriverProbe::new(driver, device).probe() {
        Ok(gpu) => {
            let precision = if int8 && gpu.supports_int8() {
                Precision::Int8
            } else {
                Precision::Fp16
            };
            let info = serde_json::json!({
                "name": gpu.name,
                "compute_capability": format!("{}.{}", gpu.cc_major, gpu.cc_minor),
                "multiprocessors": gpu.sm_count,
                "fp16": gpu.supports_fp16(),
                "int8": gpu.supports_int8(),
                "engine_file": gpu.engine_name(&config.model.name, precision),
            });
            println!("{info}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("detections: {e}");
            ExitCode::FAILURE
        }
    }
}

fn layout_override(choice: LayoutChoice) -> Option<domain::layout::LayoutKind> {
    use domain::layout::LayoutKind;
    match choice {
        LayoutChoice::Auto => None,
        LayoutChoice::End2end => Some(LayoutKind::EndToEnd),
        LayoutChoice::Ultralytics => Some(LayoutKind::UltralyticsV8),
        LayoutChoice::Yolov5 => Some(LayoutKind::YoloV5),
    }
}

async fn serve(config: Config, parts: Parts) -> ExitCode {
    // Installed before anything records, so /metrics sees every count from the start.
    adapters::http::prometheus();
    Outbox::describe_metrics();
    detections::service::describe_metrics();
    if config.model.start_at_boot {
        parts.engines.start_if_allowed();
    }
    let budget = config.server.body_memory_budget(machine_memory());
    tracing::info!(
        body_memory_budget_mib = budget >> 20,
        in_memory_body_max_mib = config.server.in_memory_body_max_bytes >> 20,
        "memory for request bodies"
    );
    let memory = MemoryBudget::new(
        usize::try_from(budget).unwrap_or(usize::MAX),
        usize::try_from(config.server.in_memory_body_max_bytes).unwrap_or(usize::MAX),
    );
    let application = match application(&config, parts, Arc::clone(&memory)) {
        Ok(application) => Arc::new(application),
        Err(e) => return fail(e),
    };
    application.spawn_availability_feed();
    let listener = match tokio::net::TcpListener::bind(config.server.bind).await {
        Ok(listener) => listener,
        Err(e) => return fail(format!("cannot listen on {}: {e}", config.server.bind)),
    };
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let rules = config.view_rules();
    tracing::info!(
        %address,
        preprocess = rules.preprocess.as_str(),
        tiling = ?rules.tiling,
        "listening"
    );
    let http = HttpConfig {
        budget: memory,
        max_body_bytes: usize::try_from(config.server.max_body_bytes).unwrap_or(usize::MAX),
        request_timeout: Duration::from_secs(config.server.request_timeout_secs),
        sse_keep_alive: Duration::from_secs(config.events.keep_alive_secs.max(1)),
    };
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(adapters::http::serve(
        listener,
        Arc::clone(&application) as Arc<dyn ports::DetectionService>,
        http,
        async {
            let _ = http_stopped.await;
        },
    ));
    shutdown_signal().await;
    // Spec B: new work gets 503 while jobs stop, the outbox sends what it can and event
    // streams end; then the listener closes and in-flight requests finish, all within
    // the grace period.
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let deadline = tokio::time::Instant::now() + grace;
    application.shutdown(grace).await;
    let _ = stop_http.send(());
    match tokio::time::timeout_at(deadline, server).await {
        Ok(Ok(Ok(()))) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Ok(Ok(Err(e))) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "server task failed");
            ExitCode::FAILURE
        }
        Err(_) => {
            tracing::warn!("requests still open when the grace period ended; exiting");
            ExitCode::SUCCESS
        }
    }
}

/// The configured video decoder.
fn video_decoder(config: &VideoConfig) -> Arc<dyn ports::VideoDecoder> {
    match config {
        VideoConfig::Ffmpeg {
            program,
            stall_timeout_secs,
            memory_limit_mib,
            threads,
            max_pixels,
        } => Arc::new(FfmpegDecoder::new(FfmpegConfig {
            program: program.clone(),
            stall_timeout: Duration::from_secs((*stall_timeout_secs).max(1)),
            memory_limit_bytes: memory_limit_mib.saturating_mul(1 << 20),
            threads: (*threads).max(1),
            max_pixels: *max_pixels,
        })),
    }
}

/// The application over the configured event, media and annotation adapters.
fn application(
    config: &Config,
    parts: Parts,
    memory: Arc<MemoryBudget>,
) -> Result<Application, String> {
    let media = &config.media;
    let (sink, catalog): (Arc<dyn AnnotationSink>, Arc<dyn MediaCatalog>) =
        match &config.annotations {
            AnnotationsConfig::File { path } => (
                Arc::new(JsonLinesSink::new(path)),
                Arc::new(LocalMediaCatalog::new(&media.images_dir, &media.videos_dir)),
            ),
            AnnotationsConfig::Http { url, timeout_secs } => {
                let client = Arc::new(AnnotationsClient::new(AnnotationsClientConfig {
                    url: url.clone(),
                    timeout: Duration::from_secs(*timeout_secs),
                })?);
                (client.clone(), client)
            }
            AnnotationsConfig::Webhook {
                url,
                timeout_secs,
                secret_header,
            } => (
                Arc::new(WebhookSink::new(WebhookSinkConfig {
                    url: url.clone(),
                    timeout: Duration::from_secs(*timeout_secs),
                    secret_header: secret_header.clone(),
                })?),
                Arc::new(LocalMediaCatalog::new(&media.images_dir, &media.videos_dir)),
            ),
        };
    let outbox = &config.outbox;
    let sink = Outbox::start(
        sink,
        OutboxConfig {
            spool_dir: outbox.spool_dir.clone(),
            max_attempts: outbox.max_attempts,
            first_delay: Duration::from_millis(outbox.first_delay_ms),
            max_delay: Duration::from_millis(outbox.max_delay_ms),
            spool_retry_interval: Duration::from_secs(outbox.spool_retry_secs),
        },
    )
    .map_err(|e| {
        format!(
            "cannot open the annotation journal {}: {e}",
            outbox.spool_dir.display()
        )
    })?;
    let events = Arc::new(EventBus::new(EventBusConfig {
        replay_capacity: config.events.replay_capacity,
        subscriber_queue: config.events.subscriber_queue,
    }));
    Ok(Application::new(
        Collaborators {
            engines: parts.engines,
            detector: parts.detector,
            events,
            sink,
            catalog,
            store: Arc::new(FolderMediaStore::new(&media.images_dir, &media.videos_dir)),
            video: video_decoder(&config.video),
            memory,
        },
        Limits {
            admission: Admission {
                max_running: config.detection.max_running,
                max_videos: config.detection.max_videos,
                queue_capacity: config.detection.queue_capacity,
            },
            max_media_bytes: config.server.max_body_bytes,
        },
    ))
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
        &parts.engines,
        &parts.detector,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .await;
    exit_for(failed)
}

/// MemTotal of /proc/meminfo, in bytes (None where there is none).
fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
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
    let mut flags = SettingsPatch::default();
    if let Some(threshold) = args.threshold {
        flags = flags
            .with_probability_threshold(threshold)
            .map_err(|e| format!("--threshold: {e}"))?;
    }
    if let Some(batch) = args.batch {
        flags = flags
            .with_model_batch_size(batch)
            .map_err(|e| format!("--batch: {e}"))?;
    }
    Ok(settings.merged(&flags))
}
