//! Model sources: where the engine's model comes from.

pub mod loader;
pub mod local;
