//! The merge seen through the whole per-frame path: a 1152×640 frame for a 640 model is
//! two tiles, x 0..640 and 512..1152 (the seam region is 512..640), and the full-frame
//! pass (the frame letterboxed to 640×356). A "perfect model" reports, in each view,
//! the part of every object inside that view.

use serde_json::json;

use super::*;
use crate::classes::ClassTable;
use crate::detection::Candidate;
use crate::geometry::PixelBox;
use crate::settings::RecognitionSettings;
use crate::tiling::{FramePlan, ViewRules, plan_views};

/// An object in frame pixels.
#[derive(Clone, Copy, Debug)]
struct Object {
    x1: f64,
    y1: f64,
    x2: f64,
    y2: f64,
    /// The confidence every view gives it.
    confidence: f32,
    class: u32,
}

fn object(x1: f64, y1: f64, x2: f64, y2: f64) -> Object {
    Object {
        x1,
        y1,
        x2,
        y2,
        confidence: 0.8,
        class: 0,
    }
}

fn frame() -> Size {
    Size::new(1152, 640).unwrap()
}

fn plan(settings: &RecognitionSettings) -> FramePlan {
    plan_views(
        frame(),
        Size::new(640, 640).unwrap(),
        settings,
        ViewRules::default(),
    )
}

fn classes() -> ClassTable {
    ClassTable::from_json(
        r##"[{"Id": 0, "Name": "Person", "Color": "#ff0000", "MaxSizeM": 1000},
             {"Id": 1, "Name": "Car", "Color": "#00ff00", "MaxSizeM": 1000}]"##,
    )
    .unwrap()
}

/// What each view reports: the part of each object inside it, in model-input pixels.
/// `seen(view, object)` may veto or change the confidence of a sighting.
/// The full-frame pass's boxes are `full_frame_error` pixels too large on every side (it
/// sees at a coarser scale).
fn perfect_model(
    plan: &FramePlan,
    objects: &[Object],
    seen: impl Fn(usize, &Object) -> Option<f32>,
    full_frame_error: f64,
) -> Vec<Vec<Candidate>> {
    let full_frame = plan.has_full_frame_pass().then(|| plan.views().len() - 1);
    plan.views()
        .iter()
        .enumerate()
        .map(|(index, view)| {
            let t = view.tile();
            let (tx1, ty1) = (f64::from(t.x()), f64::from(t.y()));
            let (tx2, ty2) = (tx1 + f64::from(t.width()), ty1 + f64::from(t.height()));
            objects
                .iter()
                .filter_map(|o| {
                    let score = seen(index, o)?;
                    let e = if full_frame == Some(index) {
                        full_frame_error
                    } else {
                        0.0
                    };
                    let (x1, y1) = ((o.x1 - e).max(tx1) - tx1, (o.y1 - e).max(ty1) - ty1);
                    let (x2, y2) = ((o.x2 + e).min(tx2) - tx1, (o.y2 + e).min(ty2) - ty1);
                    if x2 <= x1 || y2 <= y1 {
                        return None;
                    }
                    let lb = view.letterbox();
                    let (ix1, iy1) = lb.to_input_f64(x1, y1);
                    let (ix2, iy2) = lb.to_input_f64(x2, y2);
                    Some(Candidate {
                        bbox: PixelBox::new(ix1 as f32, iy1 as f32, ix2 as f32, iy2 as f32),
                        score,
                        class: o.class,
                    })
                })
                .collect()
        })
        .collect()
}

fn detect(settings: serde_json::Value, objects: &[Object]) -> Vec<Detection> {
    detect_with(settings, objects, |_, o| Some(o.confidence))
}

fn detect_with(
    settings: serde_json::Value,
    objects: &[Object],
    seen: impl Fn(usize, &Object) -> Option<f32>,
) -> Vec<Detection> {
    detect_coarse(settings, objects, seen, 0.0)
}

fn detect_coarse(
    settings: serde_json::Value,
    objects: &[Object],
    seen: impl Fn(usize, &Object) -> Option<f32>,
    full_frame_error: f64,
) -> Vec<Detection> {
    let settings = RecognitionSettings::from_json(&settings).unwrap();
    let plan = plan(&settings);
    let per_view = perfect_model(&plan, objects, seen, full_frame_error);
    // End-to-end layout: no NMS inside a view, so what a view reports is what it saw.
    plan.finish(per_view, false, 0.7, &settings, &classes())
}

/// The detection's box in frame pixels.
fn pixels(d: &Detection) -> (f64, f64, f64, f64) {
    let (x1, y1, x2, y2) = d.bbox().corners();
    (x1 * 1152.0, y1 * 640.0, x2 * 1152.0, y2 * 640.0)
}

fn assert_box(d: &Detection, o: &Object) {
    let (x1, y1, x2, y2) = pixels(d);
    // The full-frame pass sees at 0.556 scale; float32 candidates keep < 0.01 px.
    for (got, want) in [(x1, o.x1), (y1, o.y1), (x2, o.x2), (y2, o.y2)] {
        assert!((got - want).abs() < 0.01, "{:?} vs {o:?}", pixels(d));
    }
}

#[test]
fn the_plan_is_two_tiles_and_the_whole_frame() {
    let plan = plan(&RecognitionSettings::default());
    let tiles: Vec<_> = plan
        .views()
        .iter()
        .map(|v| (v.tile().x(), v.tile().y(), v.tile().width()))
        .collect();
    assert_eq!(tiles, [(0, 0, 640), (512, 0, 640), (0, 0, 1152)]);
}

#[test]
fn an_object_cut_by_the_seam_is_one_box_equal_to_it() {
    // Wider than the 128 px overlap: each tile sees a part, cut at its inner border
    // (tile 0 up to x 640, tile 1 from x 512); intersection over the smaller part 0.67.
    let person = object(450.0, 100.0, 750.0, 400.0);
    for settings in [json!({}), json!({"tile_full_frame_pass": false})] {
        let dets = detect(settings.clone(), &[person]);
        assert_eq!(dets.len(), 1, "{settings}: {dets:?}");
        assert_box(&dets[0], &person);
    }
    // The original (merge off): the cut part with the higher confidence, alone, as
    // overlap removal drops the other half (containment 0.67 > 0.6).
    let dets = detect(json!({"tile_merge": false}), &[person]);
    assert_eq!(dets.len(), 1);
    assert_eq!(pixels(&dets[0]).2.round(), 640.0, "{:?}", pixels(&dets[0]));
}

#[test]
fn a_part_seen_whole_by_the_neighbour_becomes_that_box() {
    // Tile 0 sees 600..640 (cut); tile 1 sees it all (600 > 512).
    let car = Object {
        class: 1,
        ..object(600.0, 50.0, 700.0, 120.0)
    };
    // The cut part has the higher confidence: it still takes the whole box in.
    let dets = detect_with(json!({"tile_full_frame_pass": false}), &[car], |view, _| {
        Some(if view == 0 { 0.9 } else { 0.6 })
    });
    assert_eq!(dets.len(), 1, "{dets:?}");
    assert_box(&dets[0], &car);
    assert_eq!(dets[0].confidence().value(), f64::from(0.9f32));
}

#[test]
fn neighbours_at_a_seam_stay_two() {
    // A is whole in both tiles; B lies across x 640, so tile 0 sees its left end
    // (590..640, cut), which lies mostly (intersection over the part: 0.525) inside A.
    // B's part cannot be A's: A stops short of the border it is cut at.
    let a = object(560.0, 100.0, 625.0, 300.0);
    let b = object(590.0, 150.0, 700.0, 350.0);
    let dets = detect_with(json!({}), &[a, b], |view, o| {
        // A, the most confident, is merged first; only tile 1 finds it (were it found in
        // tile 0 too, tile 0's part of B could not join it anyway: one view, one object).
        match (o.x1 == a.x1, view) {
            (true, 1) => Some(0.9),
            (true, _) => None,
            (false, _) => Some(0.6 + 0.01 * view as f32),
        }
    });
    assert_eq!(dets.len(), 2, "{dets:?}");
    assert_box(&dets[0], &a);
    assert_box(&dets[1], &b);
}

#[test]
fn overlapping_boxes_seen_whole_are_not_fused() {
    // Two people, one partly behind the other: IoU 0.30, intersection over the smaller
    // 0.525. Each tile sees one of them (the other one is not detected there).
    let front = object(520.0, 100.0, 580.0, 300.0);
    let back = object(545.0, 120.0, 620.0, 320.0);
    let dets = detect_with(json!({}), &[front, back], |view, o| {
        match (view, o.x1 == front.x1) {
            (0, true) | (1, false) => Some(0.7),
            _ => None,
        }
    });
    assert_eq!(dets.len(), 2, "{dets:?}");
}

#[test]
fn an_object_larger_than_a_tile_comes_back_once() {
    // 900 px wide: tile 0 sees 100..640, tile 1 512..1000 (intersection over the
    // smaller part 0.26: too little to tell they are one); the full-frame pass sees it
    // whole and the parts lie inside it.
    let truck = Object {
        class: 1,
        ..object(100.0, 80.0, 1000.0, 560.0)
    };
    let dets = detect(json!({}), &[truck]);
    assert_eq!(dets.len(), 1, "{dets:?}");
    assert_box(&dets[0], &truck);
    // Without the full-frame pass: the two parts (overlap removal keeps both: 0.26).
    let dets = detect(json!({"tile_full_frame_pass": false}), &[truck]);
    assert_eq!(dets.len(), 2, "{dets:?}");
}

#[test]
fn the_full_frame_pass_only_decides_where_no_tile_saw_the_end() {
    // The full-frame pass sees 3 px too much on every side.
    let person = object(450.0, 100.0, 750.0, 400.0);
    let dets = detect_coarse(json!({}), &[person], |_, o| Some(o.confidence), 3.0);
    assert_eq!(dets.len(), 1, "{dets:?}");
    assert_box(&dets[0], &person);
    // A truck wider than a tile whose right part tile 1 misses: tile 0 saw its left end
    // (x 100) and that it goes on past x 640; only the full-frame pass saw the rest.
    let truck = object(100.0, 80.0, 1000.0, 560.0);
    let dets = detect_coarse(
        json!({}),
        &[truck],
        |view, o| (view != 1).then_some(o.confidence),
        3.0,
    );
    assert_eq!(dets.len(), 1, "{dets:?}");
    assert_box(&dets[0], &object(100.0, 80.0, 1003.0, 560.0));
}

#[test]
fn what_a_tile_sees_whole_keeps_the_tiles_box() {
    // Inside tile 0 only. The full-frame pass sees it too — more confidently, and a bit
    // off (coarser) — and is dropped: the tile saw it at a finer scale.
    let person = object(100.0, 100.0, 200.0, 300.0);
    let dets = detect_with(json!({}), &[person], |view, _| {
        Some(if view == 2 { 0.95 } else { 0.7 })
    });
    assert_eq!(dets.len(), 1);
    assert_box(&dets[0], &person);
    assert_eq!(dets[0].confidence().value(), f64::from(0.7f32));
    // And exactly what the original gives.
    let original = detect_with(json!({"tile_merge": false}), &[person], |_, _| Some(0.7));
    assert_eq!(dets, original);
}

/// A sighting by view `view` (a tile of [`plan`]) of a box in frame pixels.
fn sighting(view: usize, x1: f64, y1: f64, x2: f64, y2: f64, class: u32) -> Sighting {
    let plan = plan(&RecognitionSettings::default());
    let bbox = NormBox::from_pixel_corners(x1, y1, x2, y2, frame()).unwrap();
    let det = Detection::new(bbox, ClassId::new(class), Confidence::new(0.8).unwrap());
    Sighting::new(det, view, plan.views()[view].tile(), frame(), view == 2)
}

#[test]
fn a_small_object_inside_a_large_cut_one_stays() {
    // Same class: a car on a car transporter that lies across the seam. Both tiles see
    // the car whole and a part of the transporter.
    let sightings = vec![
        sighting(0, 450.0, 100.0, 640.0, 300.0, 1),
        sighting(0, 540.0, 150.0, 600.0, 200.0, 1),
        sighting(1, 512.0, 100.0, 750.0, 300.0, 1),
        sighting(1, 540.0, 150.0, 600.0, 200.0, 1),
    ];
    assert!(sightings[0].is_cut() && sightings[2].is_cut());
    assert!(!sightings[1].is_cut() && !sightings[3].is_cut());
    let merged = merge_across_views(sightings, 0.5);
    assert_eq!(merged.len(), 2, "{merged:?}");
    assert_box(&merged[0], &object(450.0, 100.0, 750.0, 300.0));
    assert_box(&merged[1], &object(540.0, 150.0, 600.0, 200.0));
}

#[test]
fn the_merge_threshold_is_a_setting() {
    // The seam-crossing person of the first test: intersection over the smaller part
    // 0.67, so a threshold of 0.7 keeps the parts apart.
    let person = object(450.0, 100.0, 750.0, 400.0);
    // (Overlap removal, which would drop one of them, is set apart here.)
    let apart = |merge: f64| {
        detect(
            json!({"tile_full_frame_pass": false, "tile_merge_threshold": merge,
                   "tracking_intersection_threshold": 0.9}),
            &[person],
        )
    };
    assert_eq!(apart(0.7).len(), 2);
    let merged = apart(0.6);
    assert_eq!(merged.len(), 1);
    assert_box(&merged[0], &person);
}

#[test]
fn frame_edges_are_no_cuts() {
    let tile = Tile::new(0, 0, Size::new(640, 640).unwrap());
    let at = |x1: f64, x2: f64| {
        let b = NormBox::from_pixel_corners(x1, 10.0, x2, 100.0, frame()).unwrap();
        Cuts::of(&b, &tile, frame())
    };
    // The tile's left and top sides are the frame's: not cuts.
    assert!(!at(0.0, 100.0).any());
    // Its right side (x 640) is inner: within 2 % (12.8 px) is a cut.
    assert!(at(500.0, 640.0).any());
    assert!(at(500.0, 628.0).any());
    assert!(!at(500.0, 626.0).any());
}
