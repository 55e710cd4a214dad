/// A width × height in pixels, both at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Size {
    width: u32,
    height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("size must be at least 1×1, got {width}×{height}")]
pub struct SizeError {
    pub width: u32,
    pub height: u32,
}

impl Size {
    pub fn new(width: u32, height: u32) -> Result<Size, SizeError> {
        if width >= 1 && height >= 1 {
            Ok(Size { width, height })
        } else {
            Err(SizeError { width, height })
        }
    }

    pub fn width(self) -> u32 {
        self.width
    }

    pub fn height(self) -> u32 {
        self.height
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{}", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_sides_are_rejected() {
        assert!(Size::new(0, 5).is_err());
        assert!(Size::new(5, 0).is_err());
        let s = Size::new(3, 4).unwrap();
        assert_eq!((s.width(), s.height()), (3, 4));
        assert_eq!(
            Size::new(0, 1).unwrap_err().to_string(),
            "size must be at least 1×1, got 0×1"
        );
    }
}
