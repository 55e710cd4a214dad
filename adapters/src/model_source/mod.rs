//! Model sources: where the engine's model comes from.

pub mod local;
pub mod loader;
