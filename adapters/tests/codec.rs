//! Decoding client bytes into frames: every supported format, and typed errors for the rest.

use std::io::Cursor;

use adapters::image::ImageCodec;
use image::{ImageFormat, Rgb, RgbImage};
use ports::{DecodeError, FrameCodec};

/// A 32×24 test card: a colour that depends on the position, so a transposed or shifted
/// decode would show.
fn card() -> RgbImage {
    RgbImage::from_fn(32, 24, |x, y| Rgb([(x * 8) as u8, (y * 10) as u8, 200]))
}

fn encoded(format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    card()
        .write_to(&mut out, format)
        .expect("encode test image");
    out.into_inner()
}

fn assert_decodes(format: ImageFormat, tolerance: u8) {
    let frame = ImageCodec::default()
        .decode(&encoded(format))
        .unwrap_or_else(|e| panic!("{format:?}: {e}"));
    assert_eq!(
        (frame.size().width(), frame.size().height()),
        (32, 24),
        "{format:?}"
    );
    let worst = frame
        .pixels()
        .iter()
        .zip(card().as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(
        worst <= tolerance,
        "{format:?}: a channel is off by {worst}"
    );
}

#[test]
fn decodes_png_bmp_tiff_exactly() {
    for format in [ImageFormat::Png, ImageFormat::Bmp, ImageFormat::Tiff] {
        assert_decodes(format, 0);
    }
}

#[test]
fn decodes_lossless_webp_exactly() {
    // image's WebP encoder is lossless.
    assert_decodes(ImageFormat::WebP, 0);
}

#[test]
fn decodes_jpeg_closely() {
    assert_decodes(ImageFormat::Jpeg, 40);
}

#[test]
fn format_is_found_by_content() {
    // No file name is given at all: only the magic bytes can tell PNG from JPEG.
    let png = ImageCodec::default()
        .decode(&encoded(ImageFormat::Png))
        .unwrap();
    let jpeg = ImageCodec::default()
        .decode(&encoded(ImageFormat::Jpeg))
        .unwrap();
    assert_eq!(png.size(), jpeg.size());
}

#[test]
fn grey_and_alpha_images_become_rgb() {
    let grey = image::GrayImage::from_pixel(5, 4, image::Luma([77]));
    let mut bytes = Cursor::new(Vec::new());
    grey.write_to(&mut bytes, ImageFormat::Png).unwrap();
    let frame = ImageCodec::default().decode(bytes.get_ref()).unwrap();
    assert_eq!(frame.pixels().len(), 5 * 4 * 3);
    assert!(frame.pixels().iter().all(|&v| v == 77));

    let rgba = image::RgbaImage::from_pixel(3, 2, image::Rgba([1, 2, 3, 128]));
    let mut bytes = Cursor::new(Vec::new());
    rgba.write_to(&mut bytes, ImageFormat::Png).unwrap();
    let frame = ImageCodec::default().decode(bytes.get_ref()).unwrap();
    assert_eq!(&frame.pixels()[..3], &[1, 2, 3]);
}

#[test]
fn empty_input_is_empty() {
    assert_eq!(ImageCodec::default().decode(&[]), Err(DecodeError::Empty));
}

#[test]
fn random_bytes_are_an_unknown_format() {
    // A fixed xorshift sequence: "random", yet the same on every run.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    assert_eq!(
        ImageCodec::default().decode(&bytes),
        Err(DecodeError::UnknownFormat)
    );
    assert_eq!(
        ImageCodec::default().decode(b"hello"),
        Err(DecodeError::UnknownFormat)
    );
}

#[test]
fn unsupported_formats_are_unknown() {
    // GIF is recognised by its magic bytes but is not one of the formats we decode.
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    assert_eq!(
        ImageCodec::default().decode(gif),
        Err(DecodeError::UnknownFormat)
    );
}

#[test]
fn truncated_images_are_corrupt() {
    for format in [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::WebP,
        ImageFormat::Tiff,
        ImageFormat::Bmp,
    ] {
        let bytes = encoded(format);
        for cut in [bytes.len() / 2, 40.min(bytes.len() - 1)] {
            match ImageCodec::default().decode(&bytes[..cut]) {
                Err(DecodeError::Corrupt(reason)) => assert!(!reason.is_empty()),
                other => panic!("{format:?} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn a_jpeg_cut_after_its_header_is_corrupt() {
    let bytes = encoded(ImageFormat::Jpeg);
    // Keep the markers up to the start of the scan, drop the entropy-coded data.
    let sos = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("SOS marker");
    let result = ImageCodec::default().decode(&bytes[..sos + 4]);
    assert!(matches!(result, Err(DecodeError::Corrupt(_))), "{result:?}");
}

#[test]
fn jpeg_round_trip() {
    let codec = ImageCodec::default();
    let frame = codec.decode(&encoded(ImageFormat::Png)).unwrap();
    let jpeg = codec.encode_jpeg(&frame, 90).unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    let back = codec.decode(&jpeg).unwrap();
    assert_eq!(back.size(), frame.size());
}

#[test]
fn a_large_truncated_jpeg_is_corrupt() {
    let image = RgbImage::from_fn(640, 480, |x, y| {
        Rgb([(x ^ y) as u8, (x * 3) as u8, (y * 7) as u8])
    });
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Jpeg).unwrap();
    let bytes = bytes.into_inner();
    let result = ImageCodec::default().decode(&bytes[..bytes.len() * 6 / 10]);
    assert!(matches!(result, Err(DecodeError::Corrupt(_))), "{result:?}");
}

/// `jpeg` with an EXIF block (APP1) saying `orientation`, right after its SOI marker.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    // TIFF header (little endian), one IFD entry: 0x0112 Orientation, SHORT, count 1.
    let mut tiff = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let length = u16::try_from(app1.len() + 2).unwrap();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn jpeg_exif_orientation_turns_the_frame_upright() {
    let codec = ImageCodec::default();
    let jpeg = encoded(ImageFormat::Jpeg);
    let stored = codec.decode(&jpeg).unwrap();
    let stored = RgbImage::from_raw(32, 24, stored.into_pixels()).unwrap();
    // 6: turn 90° clockwise to show; 3: 180°; 8: 90° counter-clockwise; 1: as stored.
    for (orientation, expected) in [
        (6, image::imageops::rotate90(&stored)),
        (3, image::imageops::rotate180(&stored)),
        (8, image::imageops::rotate270(&stored)),
        (1, stored.clone()),
    ] {
        let frame = codec
            .decode(&with_exif_orientation(&jpeg, orientation))
            .unwrap();
        assert_eq!(
            (frame.size().width(), frame.size().height()),
            expected.dimensions(),
            "orientation {orientation}"
        );
        assert_eq!(
            frame.pixels(),
            expected.as_raw().as_slice(),
            "orientation {orientation}"
        );
    }
}

#[test]
fn a_broken_exif_block_means_upright() {
    let jpeg = encoded(ImageFormat::Jpeg);
    let mut broken = with_exif_orientation(&jpeg, 6);
    // Corrupt the TIFF byte-order mark: the tag cannot be read, the photo still decodes.
    broken[12] = b'X';
    let frame = ImageCodec::default().decode(&broken).unwrap();
    assert_eq!((frame.size().width(), frame.size().height()), (32, 24));
}
