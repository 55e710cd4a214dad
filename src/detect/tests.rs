use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use domain::geometry::Size;
use domain::settings::{RecognitionSettings, SettingsPatch};
use ports::engine::MockInferenceEngine;
use ports::frame::{MockFrameCodec, MockPreprocessor};
use ports::{BatchSize, DecodeError, InferenceEngine, RawOutput, RgbFrame};

use super::{BatchingConfig, FrameDetector, FrameError};
use crate::engine::tests::{spec, two_classes};

fn frame(width: u32, height: u32) -> Arc<RgbFrame> {
    Arc::new(
        RgbFrame::new(
            Size::new(width, height).unwrap(),
            vec![0; (width * height * 3) as usize],
        )
        .unwrap(),
    )
}

fn shared(engine: MockInferenceEngine) -> Arc<dyn InferenceEngine> {
    Arc::new(engine)
}

/// A v8 output `[batch, 6, 1]` holding one box per item: centre, size, two scores.
fn v8_one_box(batch: usize, cx: f32, cy: f32, w: f32, h: f32, scores: [f32; 2]) -> RawOutput {
    let mut data = Vec::new();
    for _ in 0..batch {
        data.extend_from_slice(&[cx, cy, w, h, scores[0], scores[1]]);
    }
    RawOutput {
        dims: vec![batch, 6, 1],
        data,
    }
}

fn detector(preprocessed: Arc<AtomicUsize>) -> FrameDetector {
    let mut preprocessor = MockPreprocessor::new();
    preprocessor.expect_fill().returning(move |_, _, _| {
        preprocessed.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    FrameDetector::new(
        Arc::new(MockFrameCodec::new()),
        Arc::new(preprocessor),
        two_classes(),
        0.7,
        BatchingConfig::default(),
    )
}

#[test]
fn a_box_in_model_pixels_comes_back_normalised_to_the_whole_frame() {
    let mut engine = MockInferenceEngine::new();
    engine.expect_spec().return_const(spec(2));
    engine
        .expect_infer()
        .times(1)
        .returning(|_| Ok(v8_one_box(1, 320.0, 320.0, 64.0, 64.0, [0.1, 0.9])));
    let detector = detector(Arc::new(AtomicUsize::new(0)));
    let detections = detector
        .detect_frame(
            &shared(engine),
            &frame(960, 540),
            &RecognitionSettings::default(),
        )
        .unwrap();
    let dtos = detector.to_dtos(&detections);
    assert_eq!(dtos.len(), 1);
    let d = &dtos[0];
    // 960×540 (below 1.5 × 640, so one view) → scale 2/3, 140 px of padding on top:
    // (320, 320) is the frame's centre, 64 px are 96 frame pixels.
    assert!((d.center_x - 0.5).abs() < 1e-6, "{d:?}");
    assert!((d.center_y - 0.5).abs() < 1e-6, "{d:?}");
    assert!((d.width - 96.0 / 960.0).abs() < 1e-6, "{d:?}");
    assert!((d.height - 96.0 / 540.0).abs() < 1e-6, "{d:?}");
    assert_eq!(d.class_num, 1);
    assert_eq!(d.label, "Fall");
    assert!((d.confidence - 0.9).abs() < 1e-6);
}

#[test]
fn boxes_below_the_threshold_are_dropped() {
    let mut engine = MockInferenceEngine::new();
    engine.expect_spec().return_const(spec(2));
    engine
        .expect_infer()
        .returning(|_| Ok(v8_one_box(1, 320.0, 320.0, 64.0, 64.0, [0.2, 0.0])));
    let detector = detector(Arc::new(AtomicUsize::new(0)));
    let detections = detector
        .detect_frame(
            &shared(engine),
            &frame(640, 640),
            &RecognitionSettings::default(),
        )
        .unwrap();
    assert!(detections.is_empty());
}

#[test]
fn tiles_are_batched_up_to_the_settings_and_the_engine() {
    let mut dynamic = spec(2);
    dynamic.batch = BatchSize::Dynamic { max: 3 };
    let batches = Arc::new(Mutex::new(Vec::new()));
    let mut engine = MockInferenceEngine::new();
    engine.expect_spec().return_const(dynamic);
    let seen = Arc::clone(&batches);
    engine.expect_infer().returning(move |input| {
        seen.lock().unwrap().push(input.batch());
        Ok(v8_one_box(input.batch(), 10.0, 10.0, 4.0, 4.0, [0.0, 0.0]))
    });
    let preprocessed = Arc::new(AtomicUsize::new(0));
    let detector = detector(Arc::clone(&preprocessed));
    let settings = RecognitionSettings::default()
        .merged(&SettingsPatch::from_json_str(r#"{"modelBatchSize": 4}"#).unwrap());
    let big = frame(5472, 3648);
    let plan = domain::tiling::plan_views(
        big.size(),
        Size::new(640, 640).unwrap(),
        &settings,
        domain::tiling::ViewRules::default(),
    );
    let views = plan.views().len();
    assert!(views > 3, "the frame is tiled");
    detector
        .detect_frame(&shared(engine), &big, &settings)
        .unwrap();
    let batches = batches.lock().unwrap();
    assert!(
        batches.iter().all(|&b| b <= 3),
        "engine cap wins: {batches:?}"
    );
    assert_eq!(batches.iter().sum::<usize>(), views);
    assert_eq!(batches.len(), views.div_ceil(3));
    assert_eq!(preprocessed.load(Ordering::SeqCst), views);
}

#[test]
fn an_output_that_does_not_match_its_layout_is_an_output_error() {
    let mut engine = MockInferenceEngine::new();
    engine.expect_spec().return_const(spec(2));
    engine.expect_infer().returning(|_| {
        Ok(RawOutput {
            dims: vec![1, 6, 10],
            data: vec![0.0; 7],
        })
    });
    let detector = detector(Arc::new(AtomicUsize::new(0)));
    let error = detector
        .detect_frame(
            &shared(engine),
            &frame(640, 480),
            &RecognitionSettings::default(),
        )
        .unwrap_err();
    assert!(matches!(error, FrameError::Output(_)), "{error:?}");
}

#[test]
fn empty_bytes_never_reach_the_codec() {
    let detector = detector(Arc::new(AtomicUsize::new(0)));
    assert_eq!(detector.decode(&[]).unwrap_err(), DecodeError::Empty);
}
