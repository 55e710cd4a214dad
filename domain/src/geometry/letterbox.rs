use serde::{Deserialize, Serialize};

use super::Size;

/// How a view reaches the model input (spec A11, docs/pipeline.md §2). An engine
/// setting: the model was trained with one of them, so a request cannot change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preprocess {
    /// Ultralytics' `LetterBox`: aspect kept, centred, padded with 114 — what YOLO models
    /// are trained and validated with.
    #[default]
    Letterbox,
    /// The original service's `cv2.dnn.blobFromImage` without crop: the view resized to the
    /// whole input, aspect not kept (Ultralytics calls it `scale_fill`).
    Stretch,
}

impl Preprocess {
    pub fn as_str(self) -> &'static str {
        match self {
            Preprocess::Letterbox => "letterbox",
            Preprocess::Stretch => "stretch",
        }
    }
}

/// Where one view lands in the model input: resized to `resized()`, placed at
/// `(left, top)`, the rest padded. A letterbox keeps the aspect (one scale for both
/// axes); a stretch fills the input (a scale per axis, no padding). Scales are kept in
/// f64 because the reference does the box maths in float64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    scale_x: f64,
    scale_y: f64,
    resized: Size,
    left: u32,
    top: u32,
    input: Size,
}

/// Python's `round` (half to even), which Ultralytics' `LetterBox` uses for the new
/// size and the padding; `as` saturates, so garbage cannot wrap around.
fn round_u32(x: f64) -> u32 {
    x.round_ties_even() as u32
}

impl Letterbox {
    /// The view fitted to the input the way `mode` says.
    pub fn new(mode: Preprocess, view: Size, input: Size) -> Letterbox {
        match mode {
            Preprocess::Letterbox => Letterbox::fit(view, input),
            Preprocess::Stretch => Letterbox::stretch(view, input),
        }
    }

    /// Ultralytics' `LetterBox(center=True, auto=False, scaleup=True)`.
    pub fn fit(view: Size, input: Size) -> Letterbox {
        let (vw, vh) = (f64::from(view.width()), f64::from(view.height()));
        let (mw, mh) = (f64::from(input.width()), f64::from(input.height()));
        let r = (mw / vw).min(mh / vh);
        // Clamped to 1..=input so an extreme aspect ratio still yields a
        // drawable image (Ultralytics keeps thin images at least 1 pixel too).
        let nw = round_u32(vw * r).clamp(1, input.width());
        let nh = round_u32(vh * r).clamp(1, input.height());
        let dw = (mw - f64::from(nw)) / 2.0;
        let dh = (mh - f64::from(nh)) / 2.0;
        let left = round_u32(dw - 0.1).min(input.width() - nw);
        let top = round_u32(dh - 0.1).min(input.height() - nh);
        Letterbox {
            scale_x: r,
            scale_y: r,
            // Both sides are ≥ 1 by the clamp above.
            resized: Size::new(nw, nh).unwrap_or(input),
            left,
            top,
            input,
        }
    }

    /// `cv2.dnn.blobFromImage(view, size=input, crop=False)`: resized to the whole input.
    pub fn stretch(view: Size, input: Size) -> Letterbox {
        Letterbox {
            scale_x: f64::from(input.width()) / f64::from(view.width()),
            scale_y: f64::from(input.height()) / f64::from(view.height()),
            resized: input,
            left: 0,
            top: 0,
            input,
        }
    }

    /// Horizontal scale, view pixel → input pixel.
    pub fn scale_x(&self) -> f64 {
        self.scale_x
    }

    /// Vertical scale, view pixel → input pixel (equal to `scale_x` for a letterbox).
    pub fn scale_y(&self) -> f64 {
        self.scale_y
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
            x * self.scale_x + f64::from(self.left),
            y * self.scale_y + f64::from(self.top),
        )
    }

    /// Model-input pixel → view pixel (not clipped).
    pub fn to_view(&self, x: f32, y: f32) -> (f32, f32) {
        let (a, b) = self.to_view_f64(f64::from(x), f64::from(y));
        (a as f32, b as f32)
    }

    pub fn to_view_f64(&self, x: f64, y: f64) -> (f64, f64) {
        (
            (x - f64::from(self.left)) / self.scale_x,
            (y - f64::from(self.top)) / self.scale_y,
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
        assert!((lb.scale_x() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(lb.scale_x(), lb.scale_y());
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
    fn sizes_round_half_to_even_like_python() {
        // 1280×721 → r = 0.5, 360.5 rounds to 360 in Python (half to even), not 361.
        let lb = Letterbox::fit(size(1280, 721), size(640, 640));
        assert_eq!(lb.resized(), size(640, 360));
        assert_eq!(lb.top(), 140);
        // 1280×723 → 361.5 rounds to 362.
        let lb = Letterbox::fit(size(1280, 723), size(640, 640));
        assert_eq!(lb.resized(), size(640, 362));
        assert_eq!(lb.top(), 139);
    }

    #[test]
    fn stretch_fills_the_input_with_a_scale_per_axis() {
        let lb = Letterbox::new(Preprocess::Stretch, size(1920, 1080), size(640, 320));
        assert_eq!(lb.resized(), size(640, 320));
        assert_eq!((lb.left(), lb.top()), (0, 0));
        assert!((lb.scale_x() - 1.0 / 3.0).abs() < 1e-12);
        assert!((lb.scale_y() - 320.0 / 1080.0).abs() < 1e-12);
        let (x, y) = lb.to_view(320.0, 160.0);
        assert!((x - 960.0).abs() < 1e-3 && (y - 540.0).abs() < 1e-3);
    }

    #[test]
    fn square_view_letterbox_and_stretch_agree() {
        let a = Letterbox::new(Preprocess::Letterbox, size(900, 900), size(640, 640));
        let b = Letterbox::new(Preprocess::Stretch, size(900, 900), size(640, 640));
        assert_eq!(a, b);
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
                              fx in 0.0f64..1.0, fy in 0.0f64..1.0, stretch: bool) {
            let mode = if stretch { Preprocess::Stretch } else { Preprocess::Letterbox };
            let lb = Letterbox::new(mode, size(vw, vh), size(mw, mh));
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
