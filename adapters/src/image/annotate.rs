//! `detect --annotate`: draws boxes and labels on a frame and writes it as JPEG.

use std::path::Path;

use font8x8::UnicodeFonts;
use ports::{AnnotateError, DrawnBox, FrameAnnotator, RgbFrame};

/// Draws 2-pixel box outlines and an 8×8 bitmap label on a filled band above each box.
#[derive(Debug, Default)]
pub struct JpegAnnotator;

const THICKNESS: u32 = 2;
const GLYPH: u32 = 8;
const JPEG_QUALITY: u8 = 90;

impl FrameAnnotator for JpegAnnotator {
    fn write(
        &self,
        frame: &RgbFrame,
        boxes: &[DrawnBox],
        path: &Path,
    ) -> Result<(), AnnotateError> {
        let io = |source| AnnotateError::Io {
            path: path.to_path_buf(),
            source,
        };
        let (width, height) = (frame.size().width(), frame.size().height());
        let mut canvas = Canvas {
            pixels: frame.pixels().to_vec(),
            width,
            height,
        };
        for drawn in boxes {
            canvas.outline(drawn);
            canvas.label(drawn);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = std::fs::File::create(path).map_err(io)?;
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(
            std::io::BufWriter::new(file),
            JPEG_QUALITY,
        );
        encoder
            .encode(
                &canvas.pixels,
                width,
                height,
                image::ExtendedColorType::Rgb8,
            )
            .map_err(|e| AnnotateError::Encode(e.to_string()))
    }
}

struct Canvas {
    pixels: Vec<u8>,
    width: u32,
    height: u32,
}

impl Canvas {
    fn put(&mut self, x: u32, y: u32, color: [u8; 3]) {
        if x < self.width && y < self.height {
            let at = (y as usize * self.width as usize + x as usize) * 3;
            self.pixels[at..at + 3].copy_from_slice(&color);
        }
    }

    fn fill(&mut self, x1: u32, y1: u32, x2: u32, y2: u32, color: [u8; 3]) {
        for y in y1..y2.min(self.height) {
            for x in x1..x2.min(self.width) {
                self.put(x, y, color);
            }
        }
    }

    fn outline(&mut self, b: &DrawnBox) {
        let (x2, y2) = (b.x2 + 1, b.y2 + 1);
        self.fill(b.x1, b.y1, x2, b.y1 + THICKNESS, b.color);
        self.fill(b.x1, y2.saturating_sub(THICKNESS), x2, y2, b.color);
        self.fill(b.x1, b.y1, b.x1 + THICKNESS, y2, b.color);
        self.fill(x2.saturating_sub(THICKNESS), b.y1, x2, y2, b.color);
    }

    /// White text on the box colour, above the box when there is room, else inside it.
    fn label(&mut self, b: &DrawnBox) {
        let band = GLYPH + 4;
        let top = if b.y1 >= band { b.y1 - band } else { b.y1 };
        let text_width = b.text.chars().count() as u32 * GLYPH + 4;
        self.fill(b.x1, top, b.x1 + text_width, top + band, b.color);
        for (i, ch) in b.text.chars().enumerate() {
            let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else {
                continue;
            };
            let x0 = b.x1 + 2 + i as u32 * GLYPH;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..GLYPH {
                    if bits & (1 << col) != 0 {
                        self.put(x0 + col, top + 2 + row as u32, [255, 255, 255]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::geometry::Size;

    #[test]
    fn writes_a_jpeg_with_the_box_drawn() {
        let frame = RgbFrame::new(Size::new(64, 48).unwrap(), vec![0; 64 * 48 * 3]).unwrap();
        let path = std::env::temp_dir()
            .join(format!("detections-annotate-{}", std::process::id()))
            .join("a.jpg");
        let drawn = DrawnBox {
            x1: 10,
            y1: 20,
            x2: 40,
            y2: 40,
            color: [255, 0, 0],
            text: "Fall 0.90".into(),
        };
        JpegAnnotator.write(&frame, &[drawn], &path).unwrap();
        let written = image::open(&path).unwrap().to_rgb8();
        assert_eq!(written.dimensions(), (64, 48));
        let edge = written.get_pixel(25, 39);
        assert!(edge[0] > 180 && edge[1] < 80, "box edge is red: {edge:?}");
        let inside = written.get_pixel(25, 30);
        assert!(inside[0] < 60, "inside stays dark: {inside:?}");
    }
}
