//! Command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "detections",
    version,
    about = "Object detection over HTTP and SSE"
)]
pub struct Cli {
    /// TOML configuration file (default: $DETECTIONS_CONFIG, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Detect objects in image and video files without the server: one JSON line per
    /// photo, one per kept frame of a video; a progress bar on stderr when it is a
    /// terminal.
    Detect(DetectArgs),
    /// Time decode, preprocess, engine and the whole pipeline per file; one JSON line
    /// per file, the keys of `scripts/reference.py --bench`.
    #[command(hide = true)]
    BenchFrames(BenchArgs),
    /// Print what the GPU probe sees (name, compute capability, multiprocessors) and the
    /// TensorRT engine file name for this host, as JSON; exit code 1 without a usable GPU.
    GpuInfo,
    /// In a cluster (`[cluster] kind = "nats"`): the annotations the receiver refused or
    /// that failed every delivery, one JSON line each; `--replay` sends them again.
    DeadLetters(DeadLettersArgs),
}

#[derive(Debug, Args)]
pub struct DeadLettersArgs {
    /// Put every dead letter back for delivery (with its own idempotency key).
    #[arg(long)]
    pub replay: bool,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Image or video files (videos by extension: mp4, mov, mkv, webm, avi, ts, …).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Write each image with its boxes and labels drawn into this folder.
    #[arg(long, value_name = "DIR")]
    pub annotate: Option<PathBuf>,
    /// Minimum confidence kept (probability_threshold).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Frames or tiles per engine call (model_batch_size).
    #[arg(long)]
    pub batch: Option<u32>,
    /// Recognition settings as a JSON object (spec A6 keys); flags above win.
    #[arg(long, value_name = "JSON")]
    pub settings: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Image files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Timed runs per stage, after one warm-up run.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// ONNX Runtime intra-op threads (overrides `[engine] intra_threads`).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Recognition settings as a JSON object (spec A6 keys); repeat it to time every file
    /// under each, side by side (each line then names its settings).
    #[arg(long, value_name = "JSON")]
    pub settings: Vec<String>,
}
