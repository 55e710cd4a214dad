//! JPEG through libjpeg-turbo (the TurboJPEG API), the decoder of `cv2.imdecode`: the same
//! IDCT (`JDCT_ISLOW`) and the same "fancy" chroma upsampling, so the pixels equal
//! OpenCV's (docs/pipeline.md §0).

use std::cell::RefCell;

use ports::DecodeError;
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat};

/// What the header says, read before anything is allocated for the pixels.
#[derive(Debug, Clone, Copy)]
pub struct JpegHeader {
    pub width: u32,
    pub height: u32,
    /// CMYK/YCCK JPEGs cannot be converted to RGB by TurboJPEG: another decoder takes them.
    pub rgb_convertible: bool,
}

thread_local! {
    // A decompressor per decoding thread: its set-up is paid once, not per photo.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

fn corrupt(error: turbojpeg::Error) -> DecodeError {
    DecodeError::Corrupt(error.to_string())
}

fn with_decompressor<T>(
    f: impl FnOnce(&mut Decompressor) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(decompressor) => decompressor,
            None => slot.insert(
                Decompressor::new()
                    .map_err(|e| DecodeError::Corrupt(format!("libjpeg-turbo: {e}")))?,
            ),
        };
        f(decompressor)
    })
}

pub fn read_header(bytes: &[u8]) -> Result<JpegHeader, DecodeError> {
    with_decompressor(|d| {
        let header = d.read_header(bytes).map_err(corrupt)?;
        let side = |n: usize| {
            u32::try_from(n)
                .map_err(|_| DecodeError::Corrupt(format!("JPEG side {n} is too large")))
        };
        Ok(JpegHeader {
            width: side(header.width)?,
            height: side(header.height)?,
            rgb_convertible: !matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK),
        })
    })
}

/// RGB8 pixels, row after row, of a JPEG whose header was read with [`read_header`].
pub fn decode_rgb(bytes: &[u8], header: JpegHeader) -> Result<Vec<u8>, DecodeError> {
    let (width, height) = (header.width as usize, header.height as usize);
    let mut pixels = vec![0u8; width * height * 3];
    with_decompressor(|d| {
        d.decompress(
            bytes,
            Image {
                pixels: pixels.as_mut_slice(),
                width,
                pitch: width * 3,
                height,
                format: PixelFormat::RGB,
            },
        )
        .map_err(corrupt)
    })?;
    Ok(pixels)
}
