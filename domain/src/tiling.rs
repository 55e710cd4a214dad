//! Whole frame or tiles (docs/pipeline.md §1, spec A11).

use serde::{Deserialize, Serialize};

use crate::geometry::{Letterbox, Preprocess, Size};
use crate::settings::RecognitionSettings;

/// Tiles cover about this many metres on the ground.
const TILE_GROUND_M: f64 = 25.0;
/// A frame is tiled when a side exceeds this multiple of the model input.
const TILE_TRIGGER: f64 = 1.5;

/// Whether large frames are cut into tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tiling {
    /// Spec A11: tiled when a side exceeds 1.5 × the model input.
    #[default]
    Auto,
    /// Always one view, the whole frame (ordinary photos with a small-input model).
    Off,
}

/// How frames become views: set by the service's configuration, not by a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViewRules {
    pub preprocess: Preprocess,
    pub tiling: Tiling,
}

/// A crop of the frame in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    x: u32,
    y: u32,
    size: Size,
}

impl Tile {
    /// The crop of `size` at `(x, y)` of a frame.
    pub fn new(x: u32, y: u32, size: Size) -> Tile {
        Tile { x, y, size }
    }
    pub fn x(&self) -> u32 {
        self.x
    }
    pub fn y(&self) -> u32 {
        self.y
    }
    pub fn width(&self) -> u32 {
        self.size.width()
    }
    pub fn height(&self) -> u32 {
        self.size.height()
    }
    pub fn size(&self) -> Size {
        self.size
    }
    /// Whether this tile is the whole `frame` (one view, or the full-frame pass).
    pub fn is_whole(&self, frame: Size) -> bool {
        self.x == 0 && self.y == 0 && self.size == frame
    }
}

/// One input to the engine: a tile (or the whole frame) and how it fits the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    tile: Tile,
    letterbox: Letterbox,
}

impl View {
    pub fn tile(&self) -> &Tile {
        &self.tile
    }
    pub fn letterbox(&self) -> &Letterbox {
        &self.letterbox
    }
}

/// The views of one frame, in engine order: tiles row by row, then (when tiled with
/// the full-frame pass on) the whole frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FramePlan {
    frame: Size,
    gsd: f64,
    tiled: bool,
    /// Whether the last view is the full-frame pass over a tiled frame.
    full_frame_pass: bool,
    views: Vec<View>,
}

impl FramePlan {
    pub fn views(&self) -> &[View] {
        &self.views
    }
    pub fn is_tiled(&self) -> bool {
        self.tiled
    }
    /// The tiles (or the one whole-frame view), without the full-frame pass.
    pub fn tiles(&self) -> &[View] {
        &self.views[..self.views.len() - usize::from(self.full_frame_pass)]
    }
    /// Whether the last view is the whole frame seen in addition to its tiles.
    pub fn has_full_frame_pass(&self) -> bool {
        self.full_frame_pass
    }
    /// Ground sampling distance, metres per frame pixel.
    pub fn gsd(&self) -> f64 {
        self.gsd
    }
    pub fn frame(&self) -> Size {
        self.frame
    }
}

/// Origins `0, step, 2·step, …` while the tile ends before the edge, then
/// one last tile flush with the edge.
fn origins(size: u32, tile: u32, step: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut x: u32 = 0;
    while u64::from(x) + u64::from(tile) < u64::from(size) {
        out.push(x);
        x = x.saturating_add(step);
    }
    out.push(size - tile);
    out
}

fn step(side: u32, overlap_percent: u32) -> u32 {
    // Same float expression as the reference so floors agree.
    let s = (f64::from(side) * (1.0 - f64::from(overlap_percent) / 100.0)).floor();
    (s as u32).max(1)
}

pub fn plan_views(
    frame: Size,
    input: Size,
    settings: &RecognitionSettings,
    rules: ViewRules,
) -> FramePlan {
    let (w, h) = (frame.width(), frame.height());
    let (mw, mh) = (input.width(), input.height());
    let gsd = settings.ground_sampling_distance(w);
    let tiled = rules.tiling == Tiling::Auto
        && (f64::from(w) > TILE_TRIGGER * f64::from(mw)
            || f64::from(h) > TILE_TRIGGER * f64::from(mh));
    let whole = View {
        tile: Tile {
            x: 0,
            y: 0,
            size: frame,
        },
        letterbox: Letterbox::new(rules.preprocess, frame, input),
    };
    let mut views = if !tiled {
        vec![whole]
    } else {
        // `as` saturates: a tiny gsd just means "as large as the frame".
        let ground = (TILE_GROUND_M / gsd).round() as u32;
        let t = ground.max(mw.max(mh));
        let (tw, th) = (t.min(w), t.min(h));
        let overlap = settings.big_image_tile_overlap_percent();
        let xs = origins(w, tw, step(tw, overlap));
        let ys = origins(h, th, step(th, overlap));
        // tw, th ≥ 1 because t ≥ 1 and the frame's sides are ≥ 1.
        let tile_size = Size::new(tw, th).unwrap_or(frame);
        let letterbox = Letterbox::new(rules.preprocess, tile_size, input);
        ys.iter()
            .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
            .map(|(x, y)| View {
                tile: Tile {
                    x,
                    y,
                    size: tile_size,
                },
                letterbox,
            })
            .collect()
    };
    // Objects larger than a tile are seen whole only here (§5.2); a grid of one tile
    // already is the whole frame.
    let full_frame_pass = tiled && views.len() > 1 && settings.tile_full_frame_pass();
    if full_frame_pass {
        views.push(whole);
    }
    FramePlan {
        frame,
        gsd,
        tiled,
        full_frame_pass,
        views,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn size(w: u32, h: u32) -> Size {
        Size::new(w, h).unwrap()
    }

    #[test]
    fn small_frame_is_one_view() {
        let plan = plan_views(
            size(1280, 720),
            size(1280, 1280),
            &RecognitionSettings::default(),
            ViewRules::default(),
        );
        assert!(!plan.is_tiled());
        assert_eq!(plan.views().len(), 1);
        let v = plan.views()[0];
        assert_eq!(
            (
                v.tile().x(),
                v.tile().y(),
                v.tile().width(),
                v.tile().height()
            ),
            (0, 0, 1280, 720)
        );
        assert_eq!(v.letterbox().resized(), size(1280, 720));
        assert_eq!(plan.frame(), size(1280, 720));
        // The trigger is strict: exactly 1.5 × the input is not tiled.
        let plan = plan_views(
            size(960, 960),
            size(640, 640),
            &RecognitionSettings::default(),
            ViewRules::default(),
        );
        assert!(!plan.is_tiled());
        assert_eq!(plan.views()[0].letterbox().resized(), size(640, 640));
    }

    #[test]
    fn hd_frame_is_tiled_for_a_640_model() {
        // docs/pipeline.md §1: 1280 > 1.5 × 640, so a 1280×720 frame is tiled
        // for a 640 model: tiles 640×640, x 0, 512, 640; y 0, 80.
        let plan = plan_views(
            size(1280, 720),
            size(640, 640),
            &RecognitionSettings::default(),
            ViewRules::default(),
        );
        assert!(plan.is_tiled());
        let origins: Vec<(u32, u32)> = plan
            .tiles()
            .iter()
            .map(|v| (v.tile().x(), v.tile().y()))
            .collect();
        assert_eq!(
            origins,
            [(0, 0), (512, 0), (640, 0), (0, 80), (512, 80), (640, 80)]
        );
        // Then the full-frame pass: the whole frame letterboxed to 640×360.
        assert_eq!(plan.views().len(), 7);
        let whole = plan.views()[6];
        assert!(whole.tile().is_whole(plan.frame()));
        assert_eq!(whole.letterbox().resized(), size(640, 360));
        // Without tile merging (or without the pass), the tiles alone, as the original.
        for off in [
            json!({"tile_merge": false}),
            json!({"tile_full_frame_pass": "off"}),
        ] {
            let s = RecognitionSettings::from_json(&off).unwrap();
            let plan = plan_views(size(1280, 720), size(640, 640), &s, ViewRules::default());
            assert_eq!(plan.views().len(), 6, "{off}");
            assert!(!plan.has_full_frame_pass());
        }
    }

    #[test]
    fn large_photo_grid() {
        // gsd ≈ 0.0716 m/px → 25 m ≈ 349 px < 640, so tiles are 640×640;
        // step floor(640 × 0.8) = 512. x: 0..=4608 (10) + 4832 = 11 columns;
        // y: 0..=2560 (6) + 3008 = 7 rows.
        let plan = plan_views(
            size(5472, 3648),
            size(640, 640),
            &RecognitionSettings::default(),
            ViewRules::default(),
        );
        assert!(plan.is_tiled());
        assert!((plan.gsd() - 0.071_577).abs() < 1e-6);
        assert_eq!(plan.tiles().len(), 77);
        // The full-frame pass is the 78th view: the whole frame, letterboxed.
        assert_eq!(plan.views().len(), 78);
        assert!(plan.has_full_frame_pass());
        let whole = plan.views()[77];
        assert!(whole.tile().is_whole(plan.frame()));
        assert_eq!(whole.letterbox().resized(), size(640, 427));
        let xs: Vec<u32> = plan.views()[..11].iter().map(|v| v.tile().x()).collect();
        assert_eq!(
            xs,
            [0, 512, 1024, 1536, 2048, 2560, 3072, 3584, 4096, 4608, 4832]
        );
        let ys: Vec<u32> = plan
            .tiles()
            .iter()
            .step_by(11)
            .map(|v| v.tile().y())
            .collect();
        assert_eq!(ys, [0, 512, 1024, 1536, 2048, 2560, 3008]);
        assert!(
            plan.tiles()
                .iter()
                .all(|v| v.tile().width() == 640 && v.tile().height() == 640)
        );
        assert_eq!(plan.views()[0].letterbox().scale_x(), 1.0);
    }

    #[test]
    fn ground_size_sets_the_tile_side() {
        // altitude 100 → gsd ≈ 0.0179 m/px → 25 m ≈ 1397 px.
        let s = RecognitionSettings::from_json(&json!({"altitude": 100})).unwrap();
        let plan = plan_views(size(5472, 3648), size(640, 640), &s, ViewRules::default());
        let t = plan.views()[0].tile();
        assert_eq!((t.width(), t.height()), (1397, 1397));
    }

    #[test]
    fn tile_never_exceeds_a_narrow_frame() {
        let plan = plan_views(
            size(4000, 300),
            size(640, 640),
            &RecognitionSettings::default(),
            ViewRules::default(),
        );
        assert!(plan.is_tiled());
        assert!(
            plan.tiles()
                .iter()
                .all(|v| v.tile().height() == 300 && v.tile().y() == 0)
        );
    }

    proptest! {
        #[test]
        fn tiles_cover_the_frame(w in 1u32..6000, h in 1u32..6000, m in 32u32..1024,
                                 overlap in 0u32..=99, alt in 10.0f64..2000.0) {
            let s = RecognitionSettings::from_json(
                &json!({"big_image_tile_overlap_percent": overlap, "altitude": alt})).unwrap();
            let plan = plan_views(size(w, h), size(m, m), &s, ViewRules::default());
            let tiles: Vec<Tile> = plan.tiles().iter().map(|v| *v.tile()).collect();
            // The full-frame pass comes with every grid of more than one tile.
            prop_assert_eq!(plan.has_full_frame_pass(), tiles.len() > 1);
            prop_assert_eq!(plan.views().len(), tiles.len() + usize::from(tiles.len() > 1));
            for t in &tiles {
                prop_assert!(t.x() + t.width() <= w && t.y() + t.height() <= h);
            }
            // Coverage, per axis: the grid is a product of x and y origins.
            let tw = tiles[0].width();
            let th = tiles[0].height();
            let mut xs: Vec<u32> = tiles.iter().map(Tile::x).collect();
            let mut ys: Vec<u32> = tiles.iter().map(Tile::y).collect();
            xs.sort_unstable(); xs.dedup();
            ys.sort_unstable(); ys.dedup();
            prop_assert_eq!(tiles.len(), xs.len() * ys.len());
            for (origins, side, total) in [(&xs, tw, w), (&ys, th, h)] {
                prop_assert_eq!(origins[0], 0);
                prop_assert_eq!(origins[origins.len() - 1] + side, total);
                let min_overlap = (f64::from(side) * f64::from(overlap) / 100.0).floor() as u32;
                for pair in origins.windows(2) {
                    // Next tile starts inside the previous one, with at least
                    // the configured overlap.
                    prop_assert!(pair[1] > pair[0]);
                    prop_assert!(pair[0] + side >= pair[1] + min_overlap,
                        "origins {:?} side {} overlap {}", pair, side, min_overlap);
                }
            }
        }
    }
}
