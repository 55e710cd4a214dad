//! The application core of the Detections service: use cases over the ports.
//!
//! - [`engine`]: "ensure engine", the lazy single-flight start-up (spec A4).
//! - [`detect`]: "detect frames", preprocess → infer → decode → filter.
//! - [`service`]: the driving port's implementation the HTTP adapter calls.
//! - [`detect_files`]: the `detections detect` command.
//! - [`bench`]: the `detections bench-frames` command (stage timings).
//!
//! The process around them (configuration, logging, the command line, and the choice
//! of adapters) is the `detections` binary: `src/main.rs` and its modules `cli`,
//! `commands`, `compose`, `config`, `logging`. This library never sees `adapters`: the
//! dependency is optional (feature `server`, which only the binary requires), and the
//! lint stage builds the library without it (`cargo check --lib --no-default-features`).

pub mod batcher;
pub mod bench;
pub mod detect;
pub mod detect_files;
pub mod engine;
pub mod progress;
pub mod service;
