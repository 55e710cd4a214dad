//! Which adapter serves each port, and with what settings: one builder per port, each
//! a module of its own, reading its section of [`Config`].
//!
//! | port | builder | adapters (config `kind`) |
//! |---|---|---|
//! | `ModelSource` | [`model_source`] | `local`, `loader` |
//! | `EngineFactory`, `GpuProbe` | [`engine`] | `onnx`, `tensorrt`, `cuda` |
//! | `ImageDecoder`, `Preprocessor` | [`detector`] | turbojpeg/image, letterbox |
//! | `AnnotationSink`, `MediaCatalog` | [`annotations`], [`cluster`] | `file`, `http`, `webhook` (behind the outbox; in a cluster, behind the broker) |
//! | `EventPublisher` | [`events`], [`cluster`] | the in-process bus; NATS JetStream |
//! | `JobRegistry` | [`jobs`], [`cluster`] | in memory; NATS key-value |
//! | `Membership` | [`cluster`] | none; the NATS connection |
//! | `MediaStore` | [`media`] | folders |
//! | `VideoDecoder` | [`video`] | `ffmpeg` |
//! | `DetectionService` (driving) | `commands::serve` | axum |

mod annotations;
pub mod cluster;
mod detector;
mod engine;
mod events;
mod jobs;
mod media;
mod model_source;
pub mod video;

use std::sync::Arc;

use detections::detect::FrameDetector;
use detections::engine::EngineManager;
use detections::service::{Application, Collaborators, Limits};
use domain::classes::ClassTable;
use ports::MemoryBudget;

use crate::config::Config;

/// A set-up step that failed; the message says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot read classes file {path}: {reason}")]
    Classes { path: String, reason: String },
    #[error("{port}: {reason}")]
    Adapter { port: &'static str, reason: String },
}

/// What every command needs: the engine and the detector in front of it.
pub struct Core {
    pub engines: Arc<EngineManager>,
    pub detector: Arc<FrameDetector>,
}

/// The engine manager over the configured model source and engine, and the detector.
pub fn core(config: &Config, classes: Arc<ClassTable>) -> Result<Core, SetupError> {
    let source = model_source::build(&config.model_source)?;
    let engines = engine::build(config, source, Arc::clone(&classes));
    let detector = detector::build(config, classes);
    Ok(Core { engines, detector })
}

/// The application (the driving port) over the configured driven adapters.
pub async fn application(
    config: &Config,
    core: Core,
    memory: Arc<MemoryBudget>,
) -> Result<Application, SetupError> {
    let annotations = annotations::build(config)?;
    let catalog = Arc::clone(&annotations.catalog);
    let shared = cluster::build(config, annotations).await?;
    Ok(Application::new(
        Collaborators {
            engines: core.engines,
            detector: core.detector,
            events: shared.events,
            sink: shared.sink,
            catalog,
            store: media::build(&config.media),
            video: video::build(&config.video),
            jobs: shared.jobs,
            cluster: shared.membership,
            memory,
        },
        Limits {
            admission: config.detection.admission(),
            max_media_bytes: config.server.max_body_bytes,
        },
    ))
}

pub fn load_classes(path: &std::path::Path) -> Result<ClassTable, SetupError> {
    let classes = |reason: String| SetupError::Classes {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| classes(e.to_string()))?;
    ClassTable::from_json(&text).map_err(|e| classes(e.to_string()))
}
