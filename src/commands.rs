//! The program's commands, each over the composed core.

mod dead_letters;
mod detect;
mod gpu_info;
mod progress;
mod serve;

pub use dead_letters::dead_letters;
pub use detect::{bench_frames, detect};
pub use gpu_info::gpu_info;
pub use serve::serve;
