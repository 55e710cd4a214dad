//! Crop a view, resize it as `cv2.resize(INTER_LINEAR)` does (SIMD), place it (letterbox
//! or stretch) and write it into a tensor slot.

use std::cell::RefCell;

use domain::geometry::Letterbox;
use domain::tiling::View;
use fast_image_resize::images::{CroppedImage, Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use ports::{PreprocessError, Preprocessor, RgbFrame, TensorSlot};

use super::planes::{Element, Placement, write_planes};

thread_local! {
    // One resizer and one RGB8 scratch image per worker thread: after the first frame of a
    // given size no frame allocates (the buffer only grows).
    static SCRATCH: RefCell<(Resizer, Vec<u8>)> = RefCell::new((Resizer::new(), Vec::new()));
}

/// `docs/pipeline.md` §2: bilinear resize (OpenCV's `INTER_LINEAR`) to `resized()`, placed
/// at `(left, top)`, padding 114, values ÷ 255, NCHW, RGB. A stretch is the same with the
/// whole input as `resized()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct LetterboxPreprocessor;

/// A rectangle of a frame, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl LetterboxPreprocessor {
    pub fn new() -> Self {
        Self
    }

    /// [`Preprocessor::fill`] for any region and letterbox, not only a planned view.
    pub fn fill_region(
        &self,
        frame: &RgbFrame,
        region: Region,
        letterbox: &Letterbox,
        slot: TensorSlot<'_>,
    ) -> Result<(), PreprocessError> {
        let crop = Crop::checked(frame, region, letterbox)?;
        match slot {
            TensorSlot::F32(slot) => fill_slot(frame, &crop, slot),
            TensorSlot::F16(slot) => fill_slot(frame, &crop, slot),
        }
    }
}

impl Preprocessor for LetterboxPreprocessor {
    fn fill<'a>(
        &self,
        frame: &RgbFrame,
        view: &View,
        slot: TensorSlot<'a>,
    ) -> Result<(), PreprocessError> {
        let tile = view.tile();
        let region = Region {
            x: tile.x(),
            y: tile.y(),
            width: tile.width(),
            height: tile.height(),
        };
        self.fill_region(frame, region, view.letterbox(), slot)
    }
}

/// A region checked against the frame and the model input.
struct Crop {
    x: usize,
    y: usize,
    width: usize,
    height: usize,
    place: Placement,
}

impl Crop {
    fn checked(
        frame: &RgbFrame,
        region: Region,
        letterbox: &Letterbox,
    ) -> Result<Self, PreprocessError> {
        let (fw, fh) = (
            frame.size().width() as usize,
            frame.size().height() as usize,
        );
        let (x, y) = (region.x as usize, region.y as usize);
        let (width, height) = (region.width as usize, region.height as usize);
        if width == 0 || height == 0 || x + width > fw || y + height > fh {
            return Err(PreprocessError(format!(
                "tile {width}×{height} at ({x}, {y}) is outside the {fw}×{fh} frame"
            )));
        }
        let (input, resized) = (letterbox.input(), letterbox.resized());
        let place = Placement {
            input_w: input.width() as usize,
            input_h: input.height() as usize,
            left: letterbox.left() as usize,
            top: letterbox.top() as usize,
            width: resized.width() as usize,
            height: resized.height() as usize,
            stride: resized.width() as usize * 3,
        };
        if place.left + place.width > place.input_w || place.top + place.height > place.input_h {
            return Err(PreprocessError(format!(
                "letterbox {}×{} at ({}, {}) does not fit the {}×{} input",
                place.width, place.height, place.left, place.top, place.input_w, place.input_h
            )));
        }
        Ok(Self {
            x,
            y,
            width,
            height,
            place,
        })
    }
}

fn fill_slot<T: Element>(
    frame: &RgbFrame,
    crop: &Crop,
    slot: &mut [T],
) -> Result<(), PreprocessError> {
    let place = crop.place;
    if slot.len() != 3 * place.input_w * place.input_h {
        return Err(PreprocessError(format!(
            "tensor slot holds {} values, the {}×{} input needs {}",
            slot.len(),
            place.input_w,
            place.input_h,
            3 * place.input_w * place.input_h
        )));
    }
    let frame_stride = frame.size().width() as usize * 3;
    if crop.width == place.width && crop.height == place.height {
        // Already the right size: read the frame in place, no resize and no scratch copy.
        let start = crop.y * frame_stride + crop.x * 3;
        let place = Placement {
            stride: frame_stride,
            ..place
        };
        write_planes(&frame.pixels()[start..], place, slot);
        return Ok(());
    }
    SCRATCH.with_borrow_mut(|(resizer, buffer)| {
        resize_into(resizer, buffer, frame, crop)?;
        write_planes(buffer, place, slot);
        Ok(())
    })
}

fn resize_into(
    resizer: &mut Resizer,
    buffer: &mut Vec<u8>,
    frame: &RgbFrame,
    crop: &Crop,
) -> Result<(), PreprocessError> {
    let size = frame.size();
    let source = ImageRef::new(size.width(), size.height(), frame.pixels(), PixelType::U8x3)
        .map_err(|e| PreprocessError(format!("frame buffer: {e}")))?;
    let (w, h) = (crop.place.width, crop.place.height);
    buffer.resize(w * h * 3, 0);
    let mut target = Image::from_slice_u8(
        w as u32,
        h as u32,
        &mut buffer[..w * h * 3],
        PixelType::U8x3,
    )
    .map_err(|e| PreprocessError(format!("resize buffer: {e}")))?;
    // A cropped view of the frame: no copy of the tile, and the filter sees the tile's edges
    // as image edges, exactly as if the tile had been cut out first (a crop box in
    // `ResizeOptions` would blend in pixels from beyond the tile).
    let tile = CroppedImage::new(
        &source,
        crop.x as u32,
        crop.y as u32,
        crop.width as u32,
        crop.height as u32,
    )
    .map_err(|e| PreprocessError(format!("tile: {e}")))?;
    // Interpolation, not convolution: `cv2.resize(INTER_LINEAR)` takes the 2×2 nearest
    // source pixels whatever the scale (no antialiasing when shrinking), and that is what
    // the models were trained on (docs/pipeline.md §2).
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Interpolation(FilterType::Bilinear));
    resizer
        .resize(&tile, &mut target, &options)
        .map_err(|e| PreprocessError(format!("resize failed: {e}")))
}
