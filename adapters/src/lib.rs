//! Adapters: every implementation of a port. Inbound: [`http`]. Outbound: model
//! sources, engines, image codecs and preprocessing, annotation sinks.

pub mod annotations;
pub mod http;
pub mod model_source;
