//! Logging: readable lines on a terminal, JSON on request, optionally daily files kept
//! 30 days (spec A12).

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use crate::config::{LogFormat, LoggingConfig};

/// Keeps the file writer flushing; drop it last.
pub struct LogGuard {
    _file_writer: Option<WorkerGuard>,
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("logging.level {level:?} is not a valid filter: {reason}")]
    Level { level: String, reason: String },
    #[error("cannot log to {dir}: {reason}")]
    Folder { dir: String, reason: String },
    #[error("cannot install logging: {0}")]
    Install(String),
}

/// Installs the global subscriber. Logs go to stderr so `detect` keeps stdout for results.
pub fn init(config: &LoggingConfig) -> Result<LogGuard, LoggingError> {
    let filter = EnvFilter::try_new(&config.level).map_err(|e| LoggingError::Level {
        level: config.level.clone(),
        reason: e.to_string(),
    })?;
    let (file, guard) = match &config.dir {
        Some(dir) => {
            let appender = RollingFileAppender::builder()
                .rotation(Rotation::DAILY)
                .filename_prefix("detections")
                .filename_suffix("log")
                .max_log_files(30)
                .build(dir)
                .map_err(|e| LoggingError::Folder {
                    dir: dir.display().to_string(),
                    reason: e.to_string(),
                })?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (Some(writer), Some(guard))
        }
        None => (None, None),
    };
    let writer = std::io::stderr.and(OptionalWriter(file));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = match config.format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    installed.map_err(|e| LoggingError::Install(e.to_string()))?;
    Ok(LogGuard {
        _file_writer: guard,
    })
}

/// A file writer that may be absent.
#[derive(Clone)]
struct OptionalWriter(Option<tracing_appender::non_blocking::NonBlocking>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for OptionalWriter {
    type Writer = Box<dyn std::io::Write + 'a>;

    fn make_writer(&'a self) -> Self::Writer {
        match &self.0 {
            Some(writer) => Box::new(writer.make_writer()),
            None => Box::new(std::io::sink()),
        }
    }
}
