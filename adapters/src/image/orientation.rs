//! EXIF `Orientation`: phones store most photos sideways and say so in a tag. Like
//! `cv2.imdecode`, the frame is turned upright before anything else sees it (detection,
//! tiling, the ground sampling distance, the frame sent with an annotation).

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, RgbImage};

/// The orientation a JPEG's EXIF block asks for; upright when it has none or a broken one
/// (a bad tag must not make a decodable photo fail).
pub fn of_jpeg(bytes: &[u8]) -> Orientation {
    JpegDecoder::new(Cursor::new(bytes))
        .and_then(|mut decoder| decoder.orientation())
        .unwrap_or(Orientation::NoTransforms)
}

/// RGB8 pixels turned as `orientation` says; returns the new width and height too.
pub fn apply(
    pixels: Vec<u8>,
    width: u32,
    height: u32,
    orientation: Orientation,
) -> Option<(Vec<u8>, u32, u32)> {
    if orientation == Orientation::NoTransforms {
        return Some((pixels, width, height));
    }
    let mut image = DynamicImage::ImageRgb8(RgbImage::from_raw(width, height, pixels)?);
    image.apply_orientation(orientation);
    let rgb = image.into_rgb8();
    let (w, h) = rgb.dimensions();
    Some((rgb.into_raw(), w, h))
}
