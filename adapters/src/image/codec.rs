//! Encoded bytes ⇄ [`RgbFrame`]: JPEG with libjpeg-turbo (as `cv2.imdecode`), the other
//! formats with the `image` crate; EXIF orientation applied to all of them.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use domain::geometry::Size;
use image::error::{ImageError, LimitErrorKind};
use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageFormat, ImageReader, Limits};
use ports::{DecodeError, FrameCodec, RgbFrame};

use super::{jpeg, orientation};

/// Bounds on what a client's image may make us allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageCodecConfig {
    /// Widest image accepted, in pixels.
    pub max_width: u32,
    /// Tallest image accepted, in pixels.
    pub max_height: u32,
    /// Largest single buffer a decoder may allocate, in bytes.
    pub max_alloc: u64,
}

impl Default for ImageCodecConfig {
    fn default() -> Self {
        Self {
            max_width: 20_000,
            max_height: 20_000,
            max_alloc: 1 << 30,
        }
    }
}

/// Decodes JPEG, PNG, BMP, WebP and TIFF, recognised by content (magic bytes), never by name.
#[derive(Debug, Clone, Default)]
pub struct ImageCodec {
    config: ImageCodecConfig,
}

impl ImageCodec {
    pub fn new(config: ImageCodecConfig) -> Self {
        Self { config }
    }

    /// Decoding limits; without the sides for the header read, so that an oversized header
    /// still yields its dimensions (and a `TooLarge` that names them).
    fn limits(&self, with_sides: bool) -> Limits {
        // `Limits` is non-exhaustive: start from "none" and set what we bound.
        let mut limits = Limits::no_limits();
        if with_sides {
            limits.max_image_width = Some(self.config.max_width);
            limits.max_image_height = Some(self.config.max_height);
        }
        limits.max_alloc = Some(self.config.max_alloc);
        limits
    }

    /// The most pixels an RGB8 frame may have under the configured bounds.
    fn pixel_limit(&self) -> u64 {
        let by_side = u64::from(self.config.max_width) * u64::from(self.config.max_height);
        by_side.min(self.config.max_alloc / 3)
    }

    fn reader<'a>(
        &self,
        bytes: &'a [u8],
        with_sides: bool,
    ) -> Result<ImageReader<Cursor<&'a [u8]>>, DecodeError> {
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        match reader.format() {
            None => return Err(DecodeError::UnknownFormat),
            Some(ImageFormat::Jpeg) if !jpeg_is_complete(bytes) => {
                return Err(DecodeError::Corrupt(
                    "the JPEG data ends before its end-of-image marker (truncated)".into(),
                ));
            }
            Some(_) => {}
        }
        reader.limits(self.limits(with_sides));
        Ok(reader)
    }

    fn decode_inner(&self, bytes: &[u8]) -> Result<RgbFrame, DecodeError> {
        let reader = self.reader(bytes, false)?;
        if reader.format() == Some(ImageFormat::Jpeg)
            && let Ok(header) = jpeg::read_header(bytes)
            && header.rgb_convertible
        {
            return self.decode_jpeg(bytes, header);
        }
        // Header first: refuse an oversized image before any decoder allocates for it.
        let (width, height) = reader
            .into_dimensions()
            .map_err(|e| self.map_error(e, None))?;
        self.check_size(width, height)?;
        let mut decoder = self
            .reader(bytes, true)?
            .into_decoder()
            .map_err(|e| self.map_error(e, Some((width, height))))?;
        let orientation = decoder
            .orientation()
            .unwrap_or(image::metadata::Orientation::NoTransforms);
        let mut image = DynamicImage::from_decoder(decoder)
            .map_err(|e| self.map_error(e, Some((width, height))))?;
        image.apply_orientation(orientation);
        to_frame(image)
    }

    /// libjpeg-turbo, the decoder of `cv2.imdecode`; then the EXIF orientation.
    fn decode_jpeg(&self, bytes: &[u8], header: jpeg::JpegHeader) -> Result<RgbFrame, DecodeError> {
        self.check_size(header.width, header.height)?;
        let pixels = jpeg::decode_rgb(bytes, header)?;
        let upright = orientation::apply(
            pixels,
            header.width,
            header.height,
            orientation::of_jpeg(bytes),
        );
        let (pixels, width, height) = upright.ok_or_else(wrong_buffer)?;
        frame(width, height, pixels)
    }

    /// Refuses a frame larger than the configured bounds, before its pixels are allocated.
    fn check_size(&self, width: u32, height: u32) -> Result<(), DecodeError> {
        if width > self.config.max_width
            || height > self.config.max_height
            || u64::from(width) * u64::from(height) > self.pixel_limit()
        {
            return Err(DecodeError::TooLarge {
                width,
                height,
                limit: self.pixel_limit(),
            });
        }
        Ok(())
    }

    fn map_error(&self, error: ImageError, dims: Option<(u32, u32)>) -> DecodeError {
        match error {
            ImageError::Unsupported(_) => DecodeError::UnknownFormat,
            ImageError::Limits(limit) => match (limit.kind(), dims) {
                (
                    LimitErrorKind::DimensionError | LimitErrorKind::InsufficientMemory,
                    Some((w, h)),
                ) => DecodeError::TooLarge {
                    width: w,
                    height: h,
                    limit: self.pixel_limit(),
                },
                // Dimensions unknown (the header itself was refused): say what the limit is.
                _ => DecodeError::Corrupt(format!("image exceeds the decoding limits: {limit}")),
            },
            other => DecodeError::Corrupt(other.to_string()),
        }
    }
}

/// Whether an end-of-image marker follows the last scan. The JPEG decoder pads a cut-off
/// scan with grey and succeeds; a truncated upload must be refused instead (as Pillow, the
/// reference decoder, does). Markers cannot occur inside entropy-coded data, so the last
/// `FF DA` is the last scan's start.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(scan), Some(end)) => end > scan,
        // No scan at all: the decoder reports that itself.
        (None, _) => true,
        (Some(_), None) => false,
    }
}

fn to_frame(image: DynamicImage) -> Result<RgbFrame, DecodeError> {
    // Free when the decoder produced RGB8 already (JPEG, most PNGs): no full-size copy.
    let rgb = image.into_rgb8();
    let (width, height) = rgb.dimensions();
    frame(width, height, rgb.into_raw())
}

fn frame(width: u32, height: u32, pixels: Vec<u8>) -> Result<RgbFrame, DecodeError> {
    let size = Size::new(width, height)
        .map_err(|e| DecodeError::Corrupt(format!("image has no pixels: {e}")))?;
    RgbFrame::new(size, pixels).ok_or_else(wrong_buffer)
}

fn wrong_buffer() -> DecodeError {
    DecodeError::Corrupt("decoder returned a buffer of the wrong size".into())
}

impl FrameCodec for ImageCodec {
    fn decode(&self, bytes: &[u8]) -> Result<RgbFrame, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        // Decoders parse hostile input; a panic in one must not take the worker down.
        catch_unwind(AssertUnwindSafe(|| self.decode_inner(bytes))).unwrap_or_else(|_| {
            Err(DecodeError::Corrupt(
                "the decoder failed on this image".into(),
            ))
        })
    }

    fn encode_jpeg(&self, frame: &RgbFrame, quality: u8) -> Result<Vec<u8>, DecodeError> {
        let size = frame.size();
        let mut out = Vec::with_capacity(frame.pixels().len() / 8);
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
            .encode(
                frame.pixels(),
                size.width(),
                size.height(),
                ExtendedColorType::Rgb8,
            )
            .map_err(|e| DecodeError::Corrupt(format!("JPEG encoding failed: {e}")))?;
        Ok(out)
    }
}
