//! Adapters: implementations of the ports over concrete libraries. No library type leaves
//! this crate; only port types cross.

pub mod engine;
pub mod image;
