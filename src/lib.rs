//! The application core of the Detections service: use cases over the ports.
//!
//! - [`engine`]: "ensure engine", the lazy single-flight start-up (spec A4).
//! - [`detect`]: "detect frames", preprocess → infer → decode → filter.
//! - [`service`]: the driving port's implementation the HTTP adapter calls.
//! - [`detect_files`]: the `detections detect` command.
//! - [`bench`]: the `detections bench-frames` command (stage timings).
//! - [`config`], [`logging`], [`cli`]: the process around them.
//!
//! Concrete adapters are named only in `main.rs`.

pub mod batcher;
pub mod bench;
pub mod cli;
pub mod config;
pub mod detect;
pub mod detect_files;
pub mod engine;
pub mod job_registry;
pub mod logging;
pub mod service;
