//! Sizes, boxes and the letterbox transform (docs/pipeline.md §2, §4.3).

mod letterbox;
mod norm;
mod pixel;
mod size;

pub use letterbox::{Letterbox, Preprocess};
pub use norm::{BoxError, NormBox};
pub use pixel::PixelBox;
pub use size::{Size, SizeError};
