use super::Size;

/// The Ultralytics letterbox of one view into the model input
/// (docs/pipeline.md §2). The scale is kept in f64 because the reference does
/// the box maths in float64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    scale: f64,
    resized: Size,
    left: u32,
    top: u32,
    input: Size,
}

/// Round half away from zero (what `f64::round` does), as the document says.
fn round_u32(x: f64) -> u32 {
    // `as` saturates, so garbage cannot wrap around.
    x.round() as u32
}

impl Letterbox {
    pub fn fit(view: Size, input: Size) -> Letterbox {
        let (vw, vh) = (f64::from(view.width()), f64::from(view.height()));
        let (mw, mh) = (f64::from(input.width()), f64::from(input.height()));
        let r = (mw / vw).min(mh / vh);
        // Clamped to 1..=input so an extreme aspect ratio still yields a
        // drawable image; the document's formula never leaves that range
        // otherwise.
        let nw = round_u32(vw * r).clamp(1, input.width());
        let nh = round_u32(vh * r).clamp(1, input.height());
        let dw = (mw - f64::from(nw)) / 2.0;
        let dh = (mh - f64::from(nh)) / 2.0;
        let left = round_u32(dw - 0.1).min(input.width() - nw);
        let top = round_u32(dh - 0.1).min(input.height() - nh);
        Letterbox {
            scale: r,
            // Both sides are ≥ 1 by the clamp above.
            resized: Size::new(nw, nh).unwrap_or(input),
            left,
            top,
            input,
        }
    }

    pub fn scale(&self) -> f32 {
        self.scale as f32
    }

    /// The scale at full precision.
    pub fn scale_f64(&self) -> f64 {
        self.scale
    }

    pub fn resized(&self) -> Size {
        self.resized
    }

    pub fn left(&self) -> u32 {
        self.left
    }

    pub fn top(&self) -> u32 {
        self.top
    }

    pub fn input(&self) -> Size {
        self.input
    }

    /// View pixel → model-input pixel.
    pub fn to_input(&self, x: f32, y: f32) -> (f32, f32) {
        let (a, b) = self.to_input_f64(f64::from(x), f64::from(y));
        (a as f32, b as f32)
    }

    pub fn to_input_f64(&self, x: f64, y: f64) -> (f64, f64) {
        (
            x * self.scale + f64::from(self.left),
            y * self.scale + f64::from(self.top),
        )
    }

    /// Model-input pixel → view pixel (not clipped).
    pub fn to_view(&self, x: f32, y: f32) -> (f32, f32) {
        let (a, b) = self.to_view_f64(f64::from(x), f64::from(y));
        (a as f32, b as f32)
    }

    pub fn to_view_f64(&self, x: f64, y: f64) -> (f64, f64) {
        (
            (x - f64::from(self.left)) / self.scale,
            (y - f64::from(self.top)) / self.scale,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn size(w: u32, h: u32) -> Size {
        Size::new(w, h).unwrap()
    }

    #[test]
    fn full_hd_into_640() {
        let lb = Letterbox::fit(size(1920, 1080), size(640, 640));
        assert!((lb.scale() - 1.0 / 3.0).abs() < 1e-7);
        assert_eq!(lb.resized(), size(640, 360));
        assert_eq!((lb.left(), lb.top()), (0, 140));
        assert_eq!(lb.input(), size(640, 640));
        let (x, y) = lb.to_view(320.0, 320.0);
        assert!((x - 960.0).abs() < 1e-3 && (y - 540.0).abs() < 1e-3);
    }

    #[test]
    fn odd_padding_rounds_like_ultralytics() {
        // 640×361 → nh = 361, dh = 139.5: top = round(139.4) = 139.
        let lb = Letterbox::fit(size(640, 361), size(640, 640));
        assert_eq!(lb.resized(), size(640, 361));
        assert_eq!(lb.top(), 139);
    }

    #[test]
    fn extreme_aspect_ratio_stays_drawable() {
        let lb = Letterbox::fit(size(1, 100_000), size(640, 640));
        assert_eq!(lb.resized().width(), 1);
        assert!(lb.left() < 640);
    }

    proptest! {
        #[test]
        fn round_trip_and_fit(vw in 1u32..8000, vh in 1u32..8000, mw in 32u32..2048, mh in 32u32..2048,
                              fx in 0.0f64..1.0, fy in 0.0f64..1.0) {
            let lb = Letterbox::fit(size(vw, vh), size(mw, mh));
            prop_assert!(lb.left() + lb.resized().width() <= mw);
            prop_assert!(lb.top() + lb.resized().height() <= mh);
            let (x, y) = ((fx * f64::from(vw)) as f32, (fy * f64::from(vh)) as f32);
            let (ix, iy) = lb.to_input(x, y);
            let (bx, by) = lb.to_view(ix, iy);
            prop_assert!((bx - x).abs() <= 1.0, "x {} -> {}", x, bx);
            prop_assert!((by - y).abs() <= 1.0, "y {} -> {}", y, by);
        }
    }
}
