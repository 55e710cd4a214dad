//! Writing a resized RGB8 image into one NCHW tensor slot: padding, `÷ 255`, channel split.

use half::f16;

/// An element of the model's input tensor, with the exact values the pipeline uses.
pub(crate) trait Element: Copy + Send + Sync + 'static {
    /// `v ÷ 255` for every byte value: a lookup is exact and cheaper than dividing.
    fn table() -> &'static [Self; 256];
    /// The letterbox padding, `114 ÷ 255`.
    fn pad() -> Self {
        Self::table()[114]
    }
}

impl Element for f32 {
    fn table() -> &'static [f32; 256] {
        static TABLE: std::sync::OnceLock<[f32; 256]> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| std::array::from_fn(|v| v as f32 / 255.0))
    }
}

impl Element for f16 {
    fn table() -> &'static [f16; 256] {
        static TABLE: std::sync::OnceLock<[f16; 256]> = std::sync::OnceLock::new();
        TABLE.get_or_init(|| std::array::from_fn(|v| f16::from_f32(v as f32 / 255.0)))
    }
}

/// Where the image lies inside the `input_w × input_h` slot.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    pub input_w: usize,
    pub input_h: usize,
    pub left: usize,
    pub top: usize,
    pub width: usize,
    pub height: usize,
    /// Bytes from one source row to the next (≥ `width × 3`; more for a crop of a wider frame).
    pub stride: usize,
}

/// Fills `slot` (`3 × input_h × input_w`) from `rgb` (`height` rows of `width × 3` bytes,
/// `stride` apart): the image
/// at (left, top), everything else the padding value. The caller checked every bound.
pub(crate) fn write_planes<T: Element>(rgb: &[u8], place: Placement, slot: &mut [T]) {
    let table = T::table();
    let pad = T::pad();
    let plane = place.input_w * place.input_h;
    let (red, rest) = slot.split_at_mut(plane);
    let (green, blue) = rest.split_at_mut(plane);
    let right = place.left + place.width;
    let bottom = place.top + place.height;
    for ((r_row, g_row), (b_row, y)) in red
        .chunks_exact_mut(place.input_w)
        .zip(green.chunks_exact_mut(place.input_w))
        .zip(blue.chunks_exact_mut(place.input_w).zip(0..place.input_h))
    {
        if y < place.top || y >= bottom {
            r_row.fill(pad);
            g_row.fill(pad);
            b_row.fill(pad);
            continue;
        }
        for row in [&mut *r_row, &mut *g_row, &mut *b_row] {
            row[..place.left].fill(pad);
            row[right..].fill(pad);
        }
        let src_row = &rgb[(y - place.top) * place.stride..][..place.width * 3];
        // Row by row with exact-length slices: no bounds checks in the inner loop.
        let (r, g, b) = (
            &mut r_row[place.left..right],
            &mut g_row[place.left..right],
            &mut b_row[place.left..right],
        );
        for (((px, r), g), b) in src_row.chunks_exact(3).zip(r).zip(g).zip(b) {
            *r = table[px[0] as usize];
            *g = table[px[1] as usize];
            *b = table[px[2] as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_exact_division() {
        assert_eq!(f32::table()[255], 1.0);
        assert_eq!(f32::pad(), 114.0 / 255.0);
        assert_eq!(f16::pad(), f16::from_f32(114.0 / 255.0));
    }

    #[test]
    fn image_placed_and_padded() {
        // 2×1 image into a 4×3 slot at (1, 1).
        let rgb = [255, 0, 0, 0, 255, 0];
        let place = Placement {
            input_w: 4,
            input_h: 3,
            left: 1,
            top: 1,
            width: 2,
            height: 1,
            stride: 6,
        };
        let mut slot = vec![0.0f32; 3 * 12];
        write_planes(&rgb, place, &mut slot);
        let p = f32::pad();
        assert_eq!(&slot[..12], &[p, p, p, p, p, 1.0, 0.0, p, p, p, p, p]);
        assert_eq!(&slot[12..24], &[p, p, p, p, p, 0.0, 1.0, p, p, p, p, p]);
        assert_eq!(&slot[24..], &[p, p, p, p, p, 0.0, 0.0, p, p, p, p, p]);
    }
}
