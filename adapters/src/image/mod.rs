//! Pixels: decoding client images ([`ImageCodec`]) and writing views of frames into the
//! model's input tensor ([`LetterboxPreprocessor`]).

mod annotate;
mod codec;
mod jpeg;
mod letterbox;
mod orientation;
mod planes;

pub use annotate::JpegAnnotator;
pub use codec::{ImageCodec, ImageCodecConfig};
pub use letterbox::{LetterboxPreprocessor, Region};
