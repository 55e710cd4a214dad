use super::Size;

/// A box normalised to the whole original frame: centre and size, each in
/// 0..=1 (spec A5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormBox {
    cx: f64,
    cy: f64,
    w: f64,
    h: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("box {field} must be a finite number between 0 and 1, got {value}")]
pub struct BoxError {
    pub field: &'static str,
    pub value: f64,
}

impl NormBox {
    pub fn new(cx: f64, cy: f64, w: f64, h: f64) -> Result<NormBox, BoxError> {
        for (field, value) in [("cx", cx), ("cy", cy), ("w", w), ("h", h)] {
            if !(0.0..=1.0).contains(&value) {
                // NaN fails `contains`, so it lands here too.
                return Err(BoxError { field, value });
            }
        }
        Ok(NormBox { cx, cy, w, h })
    }

    /// Corners in frame pixels → normalised box, clipping to the frame
    /// first; `None` when nothing of positive width and height is left or a
    /// coordinate is not finite (docs/pipeline.md §4.3).
    pub fn from_pixel_corners(x1: f64, y1: f64, x2: f64, y2: f64, frame: Size) -> Option<NormBox> {
        let (fw, fh) = (f64::from(frame.width()), f64::from(frame.height()));
        if ![x1, y1, x2, y2].iter().all(|v| v.is_finite()) {
            return None;
        }
        let (x1, x2) = (x1.clamp(0.0, fw), x2.clamp(0.0, fw));
        let (y1, y2) = (y1.clamp(0.0, fh), y2.clamp(0.0, fh));
        if x2 - x1 <= 0.0 || y2 - y1 <= 0.0 {
            return None;
        }
        NormBox::new(
            (x1 + x2) / 2.0 / fw,
            (y1 + y2) / 2.0 / fh,
            (x2 - x1) / fw,
            (y2 - y1) / fh,
        )
        .ok()
    }

    pub fn cx(&self) -> f64 {
        self.cx
    }

    pub fn cy(&self) -> f64 {
        self.cy
    }

    pub fn w(&self) -> f64 {
        self.w
    }

    pub fn h(&self) -> f64 {
        self.h
    }

    /// (x1, y1, x2, y2) in normalised units.
    pub fn corners(&self) -> (f64, f64, f64, f64) {
        (
            self.cx - self.w / 2.0,
            self.cy - self.h / 2.0,
            self.cx + self.w / 2.0,
            self.cy + self.h / 2.0,
        )
    }

    pub fn area(&self) -> f64 {
        self.w * self.h
    }

    pub fn intersection(&self, other: &NormBox) -> f64 {
        let (ax1, ay1, ax2, ay2) = self.corners();
        let (bx1, by1, bx2, by2) = other.corners();
        (ax2.min(bx2) - ax1.max(bx1)).max(0.0) * (ay2.min(by2) - ay1.max(by1)).max(0.0)
    }

    /// IoU; valid on normalised boxes because both areas scale by W·H.
    pub fn iou(&self, other: &NormBox) -> f64 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    /// The smallest box holding both.
    pub fn union(&self, other: &NormBox) -> NormBox {
        let (ax1, ay1, ax2, ay2) = self.corners();
        let (bx1, by1, bx2, by2) = other.corners();
        NormBox::from_corners(ax1.min(bx1), ay1.min(by1), ax2.max(bx2), ay2.max(by2))
    }

    /// Normalised corners → box, clamped into 0..1. Corners recomputed from centre ±
    /// half size may stray past 0..1 by a rounding error; clamping keeps the box valid.
    pub fn from_corners(x1: f64, y1: f64, x2: f64, y2: f64) -> NormBox {
        let (x1, y1) = (x1.clamp(0.0, 1.0), y1.clamp(0.0, 1.0));
        let (x2, y2) = (x2.max(x1).min(1.0), y2.max(y1).min(1.0));
        NormBox {
            cx: ((x1 + x2) / 2.0).clamp(0.0, 1.0),
            cy: ((y1 + y2) / 2.0).clamp(0.0, 1.0),
            w: (x2 - x1).clamp(0.0, 1.0),
            h: (y2 - y1).clamp(0.0, 1.0),
        }
    }

    /// Intersection ÷ the smaller area (0 when an area is 0); the ratio is
    /// scale-free, so normalised units give the pixel answer.
    pub fn containment_ratio(&self, other: &NormBox) -> f64 {
        let smaller = self.area().min(other.area());
        if smaller > 0.0 {
            self.intersection(other) / smaller
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Size {
        Size::new(200, 100).unwrap()
    }

    #[test]
    fn union_holds_both() {
        let a = NormBox::from_pixel_corners(10.0, 20.0, 50.0, 60.0, frame()).unwrap();
        let b = NormBox::from_pixel_corners(40.0, 10.0, 200.0, 30.0, frame()).unwrap();
        let u = a.union(&b);
        let expected = NormBox::from_pixel_corners(10.0, 10.0, 200.0, 60.0, frame()).unwrap();
        for (got, want) in [
            (u.cx(), expected.cx()),
            (u.cy(), expected.cy()),
            (u.w(), expected.w()),
            (u.h(), expected.h()),
        ] {
            assert!((got - want).abs() < 1e-12, "{u:?} vs {expected:?}");
        }
        let same = a.union(&a);
        assert!((same.cx() - a.cx()).abs() < 1e-12 && (same.h() - a.h()).abs() < 1e-12);
    }

    #[test]
    fn new_checks_ranges() {
        assert!(NormBox::new(0.5, 0.5, 1.0, 0.0).is_ok());
        let e = NormBox::new(0.5, 1.5, 0.1, 0.1).unwrap_err();
        assert_eq!(e.field, "cy");
        assert_eq!(
            e.to_string(),
            "box cy must be a finite number between 0 and 1, got 1.5"
        );
        assert_eq!(
            NormBox::new(f64::NAN, 0.0, 0.0, 0.0).unwrap_err().field,
            "cx"
        );
    }

    #[test]
    fn from_corners_clips_and_normalises() {
        let b = NormBox::from_pixel_corners(-10.0, 20.0, 100.0, 200.0, frame()).unwrap();
        assert_eq!((b.cx(), b.cy(), b.w(), b.h()), (0.25, 0.6, 0.5, 0.8));
        assert!(NormBox::from_pixel_corners(210.0, 0.0, 300.0, 10.0, frame()).is_none());
        assert!(NormBox::from_pixel_corners(5.0, 5.0, 5.0, 10.0, frame()).is_none());
        assert!(NormBox::from_pixel_corners(f64::NAN, 5.0, 6.0, 10.0, frame()).is_none());
    }

    #[test]
    fn overlap_measures() {
        let a = NormBox::new(0.25, 0.5, 0.5, 1.0).unwrap();
        let b = NormBox::new(0.5, 0.5, 0.5, 1.0).unwrap();
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-12);
        let small = NormBox::new(0.25, 0.5, 0.1, 0.1).unwrap();
        assert!((a.containment_ratio(&small) - 1.0).abs() < 1e-12);
        let empty = NormBox::new(0.25, 0.5, 0.0, 0.1).unwrap();
        assert_eq!(a.containment_ratio(&empty), 0.0);
    }
}
