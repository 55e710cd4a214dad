//! Oversized headers are refused before any large allocation. Own test binary: the counting
//! allocator sees only these tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};

use adapters::image::{ImageCodec, ImageCodecConfig};
use image::{ImageFormat, RgbImage};
use ports::{DecodeError, FrameCodec};

/// Records the largest single allocation.
struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BIG: u32 = 60_000;
/// Far below the 10.8 GB a 60000×60000 RGB frame would take.
const MAX_ALLOWED_ALLOCATION: usize = 16 << 20;

fn small(format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    RgbImage::new(8, 8).write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid 8×8 PNG whose IHDR (with a correct CRC) claims 60000×60000.
fn huge_png() -> Vec<u8> {
    let mut png = small(ImageFormat::Png);
    // Signature (8), length (4), "IHDR" (4), then width and height.
    png[16..20].copy_from_slice(&BIG.to_be_bytes());
    png[20..24].copy_from_slice(&BIG.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A valid 8×8 JPEG whose frame header (SOF0) claims 60000×60000.
fn huge_jpeg() -> Vec<u8> {
    let mut jpeg = small(ImageFormat::Jpeg);
    let sof = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("SOF0");
    // Marker (2), length (2), precision (1), height (2), width (2).
    let big = (BIG as u16).to_be_bytes();
    jpeg[sof + 5..sof + 7].copy_from_slice(&big);
    jpeg[sof + 7..sof + 9].copy_from_slice(&big);
    jpeg
}

fn assert_too_large(bytes: &[u8]) {
    let before = LARGEST.load(Ordering::Relaxed);
    let result = ImageCodec::default().decode(bytes);
    assert!(
        matches!(
            result,
            Err(DecodeError::TooLarge {
                width: BIG,
                height: BIG,
                ..
            })
        ),
        "{result:?}"
    );
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= MAX_ALLOWED_ALLOCATION.max(before),
        "an allocation of {largest} bytes was made"
    );
}

#[test]
fn huge_png_header_is_refused_without_allocating() {
    assert_too_large(&huge_png());
}

#[test]
fn huge_jpeg_header_is_refused_without_allocating() {
    assert_too_large(&huge_jpeg());
}

#[test]
fn limits_are_configurable() {
    let codec = ImageCodec::new(ImageCodecConfig {
        max_width: 4,
        max_height: 4,
        ..ImageCodecConfig::default()
    });
    let result = codec.decode(&small(ImageFormat::Png));
    assert!(
        matches!(
            result,
            Err(DecodeError::TooLarge {
                width: 8,
                height: 8,
                limit: 16
            })
        ),
        "{result:?}"
    );
    let codec = ImageCodec::new(ImageCodecConfig {
        max_alloc: 100,
        ..ImageCodecConfig::default()
    });
    let result = codec.decode(&small(ImageFormat::Bmp));
    assert!(
        matches!(result, Err(DecodeError::TooLarge { .. })),
        "{result:?}"
    );
}
