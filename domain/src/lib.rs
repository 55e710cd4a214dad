//! Pure domain of the Detections service: no I/O, no async, no framework
//! types. See docs/pipeline.md for the per-frame semantics.

pub mod auth;
pub mod availability;
pub mod classes;
pub mod detection;
pub mod geometry;
pub mod job;
pub mod layout;
pub mod media;
pub mod merge;
pub mod postprocess;
pub mod settings;
pub mod tiling;
pub mod tracking;
