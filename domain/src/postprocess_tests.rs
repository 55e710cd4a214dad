use super::*;
use crate::geometry::PixelBox;
use crate::tiling::{ViewRules, plan_views};
use proptest::prelude::*;

fn cand(x1: f32, y1: f32, x2: f32, y2: f32, score: f32, class: u32) -> Candidate {
    Candidate {
        bbox: PixelBox::new(x1, y1, x2, y2),
        score,
        class,
    }
}

fn det(cx: f64, cy: f64, w: f64, h: f64, conf: f64, class: u32) -> Detection {
    Detection::new(
        NormBox::new(cx, cy, w, h).unwrap(),
        ClassId::new(class),
        Confidence::new(conf).unwrap(),
    )
}

fn classes() -> ClassTable {
    ClassTable::from_json(
        r##"[{"Id": 0, "Name": "Normal", "Color": "#ff0000", "MaxSizeM": 1000},
             {"Id": 1, "Name": "Fall", "Color": "#00ff00", "MaxSizeM": 1000}]"##,
    )
    .unwrap()
}

fn size(w: u32, h: u32) -> Size {
    Size::new(w, h).unwrap()
}

#[test]
fn nms_matches_the_fixture() {
    // scripts/make_fixtures.py V8_BOXES: A, B (NMS'd by A), C, D, F (E is
    // below the threshold and filtered before NMS).
    let kept = nms_class_wise(
        vec![
            cand(100.0, 100.0, 300.0, 400.0, 0.875, 0),
            cand(110.0, 110.0, 310.0, 410.0, 0.75, 0),
            cand(105.0, 105.0, 305.0, 405.0, 0.625, 1),
            cand(400.0, 300.0, 560.0, 500.0, 0.5, 1),
            cand(450.0, 40.0, 530.0, 120.0, 0.5, 0),
        ],
        0.7,
        300,
    );
    let scores: Vec<(f32, u32)> = kept.iter().map(|c| (c.score, c.class)).collect();
    assert_eq!(scores, [(0.875, 0), (0.625, 1), (0.5, 1), (0.5, 0)]);
    assert_eq!(nms_class_wise(kept, 0.7, 2).len(), 2);
}

#[test]
fn whole_frame_pipeline() {
    // 1920×1080 into 1280 (not tiled: 1920 ≤ 1.5 × 1280): r = 2/3, top = 280.
    let plan = plan_views(
        size(1920, 1080),
        size(1280, 1280),
        &RecognitionSettings::default(),
        ViewRules::default(),
    );
    assert!(!plan.is_tiled());
    let cands = vec![
        cand(200.0, 280.0, 600.0, 880.0, 0.875, 0), // → (300,0)-(900,900)
        cand(200.0, 280.0, 600.0, 880.0, 0.2, 1),   // below threshold
        cand(0.0, 0.0, 1280.0, 200.0, 0.9, 1),      // entirely in the padding
        cand(240.0, 320.0, 400.0, 480.0, 0.8, 1),   // inside the first: overlap removal
        cand(1000.0, 800.0, 1040.0, 840.0, 0.6, 7), // unknown class
    ];
    let dets = plan.finish(
        vec![cands],
        true,
        0.7,
        &RecognitionSettings::default(),
        &classes(),
    );
    assert_eq!(dets.len(), 1);
    let b = dets[0].bbox();
    assert!((b.cx() - 600.0 / 1920.0).abs() < 1e-9);
    assert!((b.cy() - 450.0 / 1080.0).abs() < 1e-9);
    assert!((b.w() - 600.0 / 1920.0).abs() < 1e-9);
    assert!((b.h() - 900.0 / 1080.0).abs() < 1e-9);
    assert_eq!(dets[0].confidence().value(), 0.875);
}

#[test]
fn stretch_maps_each_axis_back_with_its_own_scale() {
    // 1920×1080 stretched to 1280×1280: x × 3/2, y × 27/32 back (no padding).
    let rules = ViewRules {
        preprocess: crate::geometry::Preprocess::Stretch,
        ..ViewRules::default()
    };
    let plan = plan_views(
        size(1920, 1080),
        size(1280, 1280),
        &RecognitionSettings::default(),
        rules,
    );
    assert!(!plan.is_tiled());
    let lb = plan.views()[0].letterbox();
    assert_eq!((lb.left(), lb.top()), (0, 0));
    assert_eq!(lb.resized(), size(1280, 1280));
    // (320, 320)-(640, 960) in the input → (480, 270)-(960, 810) in the frame.
    let dets = plan.finish(
        vec![vec![cand(320.0, 320.0, 640.0, 960.0, 0.875, 0)]],
        true,
        0.7,
        &RecognitionSettings::default(),
        &classes(),
    );
    let b = dets[0].bbox();
    assert!((b.cx() - 720.0 / 1920.0).abs() < 1e-9);
    assert!((b.cy() - 540.0 / 1080.0).abs() < 1e-9);
    assert!((b.w() - 480.0 / 1920.0).abs() < 1e-9);
    assert!((b.h() - 540.0 / 1080.0).abs() < 1e-9);
}

#[test]
fn tiling_off_keeps_a_large_frame_whole() {
    let rules = ViewRules {
        tiling: crate::tiling::Tiling::Off,
        ..ViewRules::default()
    };
    let plan = plan_views(
        size(5472, 3648),
        size(640, 640),
        &RecognitionSettings::default(),
        rules,
    );
    assert!(!plan.is_tiled());
    assert_eq!(plan.views().len(), 1);
    assert_eq!(plan.views()[0].tile().size(), size(5472, 3648));
    assert_eq!(plan.views()[0].letterbox().resized(), size(640, 427));
}

#[test]
fn tiled_pipeline_maps_tile_origins_and_dedupes() {
    // 1280×720 for a 640 model: tiles at x 0, 512, 640 and y 0, 80 (scale 1).
    let plan = plan_views(
        size(1280, 720),
        size(640, 640),
        &RecognitionSettings::default(),
        ViewRules::default(),
    );
    assert!(plan.is_tiled());
    let mut per_view = vec![Vec::new(); plan.views().len()];
    // The same object seen from tiles (512, 0) and (640, 0).
    per_view[1].push(cand(200.0, 100.0, 260.0, 160.0, 0.7, 0));
    per_view[2].push(cand(72.0, 100.0, 132.0, 160.0, 0.8, 0));
    // Another object in tile (0, 80).
    per_view[3].push(cand(10.0, 10.0, 50.0, 50.0, 0.5, 1));
    let dets = plan.finish(
        per_view,
        true,
        0.7,
        &RecognitionSettings::default(),
        &classes(),
    );
    assert_eq!(dets.len(), 2);
    assert_eq!(dets[0].confidence().value(), 0.800000011920929);
    assert!((dets[0].bbox().cx() - 742.0 / 1280.0).abs() < 1e-9);
    assert!((dets[1].bbox().cy() - 110.0 / 720.0).abs() < 1e-9);
}

#[test]
fn duplicates_need_every_coordinate_close() {
    let a = det(0.5, 0.5, 0.1, 0.1, 0.9, 0);
    let dup = det(0.505, 0.495, 0.11, 0.1, 0.9, 0);
    let other_class = det(0.5, 0.5, 0.1, 0.1, 0.8, 1);
    let far = det(0.52, 0.5, 0.1, 0.1, 0.95, 0);
    let kept = remove_cross_tile_duplicates(vec![a, dup, other_class, far]);
    assert_eq!(kept, vec![far, a, other_class]);
}

#[test]
fn overlap_removal_is_class_agnostic() {
    let big = det(0.5, 0.5, 0.4, 0.4, 0.6, 0);
    let inside = det(0.5, 0.5, 0.1, 0.1, 0.9, 1);
    let half = det(0.75, 0.5, 0.2, 0.2, 0.5, 0); // half inside big: 0.5 ≤ 0.6
    assert_eq!(
        remove_overlaps(vec![big, inside, half], 0.6),
        vec![inside, half]
    );
}

#[test]
fn size_filter() {
    let table =
        ClassTable::from_json(r##"[{"Id": 0, "Name": "Car", "Color": "#ff0000", "MaxSizeM": 7}]"##)
            .unwrap();
    let frame = size(1000, 500);
    // gsd 0.1 m/px: 0.07 × 1000 px = 70 px = 7 m (kept); 0.08 → 8 m (dropped).
    let ok = det(0.5, 0.5, 0.07, 0.01, 0.5, 0);
    let winter_ok = det(0.5, 0.5, 0.01, 0.14, 0.5, 20);
    let too_big = det(0.5, 0.5, 0.08, 0.01, 0.5, 40);
    let unknown = det(0.5, 0.5, 0.01, 0.01, 0.5, 1);
    let dets = vec![ok, winter_ok, too_big, unknown];
    assert_eq!(
        filter_by_size(dets.clone(), &table, 0.1, frame),
        vec![ok, winter_ok]
    );
    assert_eq!(
        filter_by_size(dets, &table, f64::NAN, frame),
        vec![ok, winter_ok, too_big]
    );
}

fn arb_cand() -> impl Strategy<Value = Candidate> {
    (
        0.0f32..600.0,
        0.0f32..600.0,
        1.0f32..200.0,
        1.0f32..200.0,
        0.0f32..1.0,
        0u32..3,
    )
        .prop_map(|(x, y, w, h, s, c)| cand(x, y, x + w, y + h, s, c))
}

proptest! {
    #[test]
    fn nms_properties(cands in proptest::collection::vec(arb_cand(), 0..60), iou in 0.1f32..0.9) {
        let kept = nms_class_wise(cands.clone(), iou, MAX_DETECTIONS);
        for k in &kept {
            prop_assert!(cands.contains(k));
        }
        for pair in kept.windows(2) {
            prop_assert!(pair[0].score >= pair[1].score);
        }
        for (i, a) in kept.iter().enumerate() {
            for b in &kept[i + 1..] {
                prop_assert!(a.class != b.class || a.bbox.iou(&b.bbox) <= iou);
            }
        }
    }
}
