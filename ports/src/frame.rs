//! Pixels: decoding bytes into frames, and writing a view of a frame into the model's tensor.

use domain::geometry::Size;

use domain::tiling::View;

use crate::engine::TensorSlot;

/// One decoded frame: RGB, 8 bits per channel, rows top to bottom, no padding.
#[derive(Clone, PartialEq, Eq)]
pub struct RgbFrame {
    size: Size,
    pixels: Vec<u8>,
}

impl std::fmt::Debug for RgbFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RgbFrame")
            .field("width", &self.size.width())
            .field("height", &self.size.height())
            .finish_non_exhaustive()
    }
}

impl RgbFrame {
    /// `None` when the buffer is not exactly `width × height × 3` bytes.
    pub fn new(size: Size, pixels: Vec<u8>) -> Option<Self> {
        let expected = size.width() as usize * size.height() as usize * 3;
        (pixels.len() == expected).then_some(Self { size, pixels })
    }

    pub fn size(&self) -> Size {
        self.size
    }

    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    pub fn into_pixels(self) -> Vec<u8> {
        self.pixels
    }
}

/// Why bytes could not become a frame. All of these are the client's input, never ours.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the file is empty")]
    Empty,
    #[error("unsupported or unrecognised image format")]
    UnknownFormat,
    #[error("image of {width}×{height} pixels exceeds the limit of {limit} pixels")]
    TooLarge { width: u32, height: u32, limit: u64 },
    #[error("the image is corrupt or truncated: {0}")]
    Corrupt(String),
}

/// Turns encoded image bytes into an [`RgbFrame`]. Blocking, CPU-bound: call it off the
/// async runtime.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait FrameCodec: Send + Sync {
    fn decode(&self, bytes: &[u8]) -> Result<RgbFrame, DecodeError>;
    /// JPEG-encodes a frame (annotation images).
    fn encode_jpeg(&self, frame: &RgbFrame, quality: u8) -> Result<Vec<u8>, DecodeError>;
}

/// Writes one view (the whole frame or a tile) of a frame into one batch slot of the
/// model's input tensor: crop, letterbox-resize, pad with 114, scale to 0..1, NCHW.
/// Blocking, CPU-bound.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Preprocessor: Send + Sync {
    fn fill<'a>(
        &self,
        frame: &RgbFrame,
        view: &View,
        slot: TensorSlot<'a>,
    ) -> Result<(), PreprocessError>;
}

/// A view that cannot be written into the slot: a bug of ours, never the client's input.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("preprocessing failed: {0}")]
pub struct PreprocessError(pub String);

/// One box to draw on an annotated image, in frame pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawnBox {
    pub x1: u32,
    pub y1: u32,
    pub x2: u32,
    pub y2: u32,
    pub color: [u8; 3],
    pub text: String,
}

/// Writes a frame with boxes and labels drawn on it (`detect --annotate`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait FrameAnnotator: Send + Sync {
    fn write(
        &self,
        frame: &RgbFrame,
        boxes: &[DrawnBox],
        path: &std::path::Path,
    ) -> Result<(), AnnotateError>;
}

/// The drawn frame could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode the drawn frame: {0}")]
    Encode(String),
}
