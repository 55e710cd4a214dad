//! Adapters: every implementation of a port over concrete libraries. Inbound: [`http`].
//! Outbound: model sources, the ONNX Runtime engine, image codecs and preprocessing,
//! annotation sinks. No library type leaves this crate; only port types cross.

pub mod annotations;
pub mod client_setup;
pub mod cluster;
pub mod engine;
pub mod events;
pub mod gpu;
pub mod http;
pub mod image;
pub mod jobs;
pub mod media;
pub mod model_source;
pub mod video;
