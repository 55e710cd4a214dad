/// An axis-aligned box in pixels (corners), used for model-input candidates.
/// Fields are public: it is a plain computation type with no invariant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PixelBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl PixelBox {
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> PixelBox {
        PixelBox { x1, y1, x2, y2 }
    }

    /// From centre and size, as the v8/v5 heads emit them.
    pub fn from_center(cx: f32, cy: f32, w: f32, h: f32) -> PixelBox {
        PixelBox {
            x1: cx - w / 2.0,
            y1: cy - h / 2.0,
            x2: cx + w / 2.0,
            y2: cy + h / 2.0,
        }
    }

    /// Area; inverted boxes count as 0.
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Area of the overlap with `other` (0 when disjoint).
    pub fn intersection(&self, other: &PixelBox) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        w * h
    }

    /// Intersection over union; 0 when the union is empty.
    pub fn iou(&self, other: &PixelBox) -> f32 {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    /// Intersection ÷ the smaller area; 0 when an area is 0.
    pub fn containment_ratio(&self, other: &PixelBox) -> f32 {
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

    #[test]
    fn overlap_measures() {
        let a = PixelBox::new(0.0, 0.0, 10.0, 10.0);
        let b = PixelBox::new(5.0, 0.0, 15.0, 10.0);
        assert_eq!(a.area(), 100.0);
        assert_eq!(a.intersection(&b), 50.0);
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        let inner = PixelBox::new(1.0, 1.0, 3.0, 3.0);
        assert_eq!(a.containment_ratio(&inner), 1.0);
        let empty = PixelBox::new(1.0, 1.0, 1.0, 5.0);
        assert_eq!(a.containment_ratio(&empty), 0.0);
        assert_eq!(empty.iou(&empty), 0.0);
        let far = PixelBox::new(20.0, 20.0, 30.0, 30.0);
        assert_eq!(a.iou(&far), 0.0);
    }

    #[test]
    fn from_center() {
        assert_eq!(
            PixelBox::from_center(200.0, 250.0, 200.0, 300.0),
            PixelBox::new(100.0, 100.0, 300.0, 400.0)
        );
    }
}
