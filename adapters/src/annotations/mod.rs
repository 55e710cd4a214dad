//! Annotation sinks: where accepted annotations go.

pub mod file;
