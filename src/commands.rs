//! The program's commands, each over the composed core.

mod detect;
mod gpu_info;
mod serve;

pub use detect::{bench_frames, detect};
pub use gpu_info::gpu_info;
pub use serve::serve;
