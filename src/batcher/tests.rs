//! The batcher with a fake engine that records which views each call carried: every
//! view's frame is filled with a marker byte, the preprocessor writes it into the slot,
//! and the engine answers one box per item centred at `100 + marker`.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::geometry::Size;
use domain::layout::OutputLayout;
use domain::settings::RecognitionSettings;
use domain::tiling::{View, ViewRules, plan_views};
use ports::{
    BatchSize, ElementType, EngineError, InferenceEngine, InputTensor, ModelSpec, PreprocessError,
    Preprocessor, RawOutput, RgbFrame, TensorSlot,
};

use super::{Batcher, BatchingConfig, Submission};
use crate::detect::FrameError;

mod fallback;

const SIDE: u32 = 32;

/// Writes the frame's first byte (its marker) into the slot's first value.
struct MarkerPreprocessor;

impl Preprocessor for MarkerPreprocessor {
    fn fill<'a>(
        &self,
        frame: &RgbFrame,
        _view: &View,
        slot: TensorSlot<'a>,
    ) -> Result<(), PreprocessError> {
        match slot {
            TensorSlot::F32(values) => values[0] = f32::from(frame.pixels()[0]),
            TensorSlot::F16(_) => return Err(PreprocessError("f32 only".into())),
        }
        Ok(())
    }
}

/// Records each call's markers; the first call waits for `release` when gated; a call
/// carrying `fail_on` fails; a call of more than `runs_up_to` items is a rejected batch.
struct RecordingEngine {
    spec: ModelSpec,
    calls: Mutex<Vec<Vec<u8>>>,
    entered: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<Option<mpsc::Receiver<()>>>,
    fail_on: Option<u8>,
    runs_up_to: Option<usize>,
}

impl RecordingEngine {
    fn new(batch: BatchSize) -> Self {
        Self {
            spec: ModelSpec {
                input_name: "images".into(),
                input_size: Size::new(SIDE, SIDE).unwrap(),
                element: ElementType::F32,
                batch,
                layout: OutputLayout::UltralyticsV8 { classes: 2 },
                class_count: 2,
            },
            calls: Mutex::new(Vec::new()),
            entered: Mutex::new(None),
            release: Mutex::new(None),
            fail_on: None,
            runs_up_to: None,
        }
    }

    /// The first call signals `entered` and then waits until the returned sender sends.
    fn gated(batch: BatchSize) -> (Arc<Self>, mpsc::Receiver<()>, mpsc::Sender<()>) {
        let engine = Self::new(batch);
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        *engine.entered.lock().unwrap() = Some(entered_tx);
        *engine.release.lock().unwrap() = Some(release_rx);
        (Arc::new(engine), entered_rx, release_tx)
    }

    fn calls(&self) -> Vec<Vec<u8>> {
        self.calls.lock().unwrap().clone()
    }
}

impl InferenceEngine for RecordingEngine {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn engine_type(&self) -> ports::EngineKind {
        ports::EngineKind::Onnx
    }

    fn infer(&self, input: &InputTensor) -> Result<RawOutput, EngineError> {
        let item = 3 * (SIDE * SIDE) as usize;
        let values = input.as_f32().unwrap();
        let markers: Vec<u8> = (0..input.batch()).map(|i| values[i * item] as u8).collect();
        self.calls.lock().unwrap().push(markers.clone());
        if let Some(entered) = self.entered.lock().unwrap().take() {
            entered.send(()).unwrap();
            let release = self.release.lock().unwrap().take().unwrap();
            release.recv().unwrap();
        }
        if self.runs_up_to.is_some_and(|n| markers.len() > n) {
            return Err(EngineError::BatchRejected {
                batch: markers.len(),
                reason: "Dimension of input 0 must be 1".into(),
            });
        }
        if self.fail_on.is_some_and(|m| markers.contains(&m)) {
            return Err(EngineError::Inference("the fake engine failed".into()));
        }
        let mut data = Vec::new();
        for marker in &markers {
            data.extend_from_slice(&[100.0 + f32::from(*marker), 100.0, 10.0, 10.0, 0.9, 0.0]);
        }
        Ok(RawOutput {
            dims: vec![markers.len(), 6, 1],
            data,
        })
    }
}

fn view() -> View {
    let size = Size::new(SIDE, SIDE).unwrap();
    plan_views(
        size,
        size,
        &RecognitionSettings::default(),
        ViewRules::default(),
    )
    .views()[0]
}

fn frame(marker: u8) -> Arc<RgbFrame> {
    let size = Size::new(SIDE, SIDE).unwrap();
    Arc::new(RgbFrame::new(size, vec![marker; (SIDE * SIDE * 3) as usize]).unwrap())
}

fn submission(engine: &Arc<RecordingEngine>, cap: usize, markers: &[u8]) -> Submission {
    Submission {
        engine: Arc::clone(engine) as Arc<dyn InferenceEngine>,
        cap,
        threshold: 0.5,
        views: markers.iter().map(|&m| (frame(m), view())).collect(),
    }
}

/// The centre x of each view's single box, minus 100: the view's marker.
fn markers_of(result: &[Vec<domain::detection::Candidate>]) -> Vec<u8> {
    result
        .iter()
        .map(|candidates| {
            assert_eq!(candidates.len(), 1, "{candidates:?}");
            let bbox = candidates[0].bbox;
            ((bbox.x1 + bbox.x2) / 2.0 - 100.0).round() as u8
        })
        .collect()
}

fn batcher(workers: usize, max_delay: Duration) -> Arc<Batcher> {
    Arc::new(Batcher::new(
        Arc::new(MarkerPreprocessor),
        BatchingConfig { workers, max_delay },
    ))
}

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting until {what}");
}

type Pending = std::thread::JoinHandle<Result<Vec<Vec<domain::detection::Candidate>>, FrameError>>;

fn submit(batcher: &Arc<Batcher>, submission: Submission) -> Pending {
    let batcher = Arc::clone(batcher);
    std::thread::spawn(move || batcher.run(submission))
}

#[test]
fn views_of_concurrent_requests_share_one_engine_call() {
    let (engine, entered, release) = RecordingEngine::gated(BatchSize::Dynamic { max: 8 });
    let batcher = batcher(1, Duration::ZERO);
    // A batch size of 1 in each request's settings (the default) limits that request's
    // views per call, not the call: the others fill it.
    let first = submit(&batcher, submission(&engine, 1, &[1]));
    entered.recv().unwrap();
    let others: Vec<_> = (2..=5)
        .map(|m| (m, submit(&batcher, submission(&engine, 1, &[m]))))
        .collect();
    wait_until("four views queue", || batcher.queued() == 4);
    release.send(()).unwrap();

    assert_eq!(markers_of(&first.join().unwrap().unwrap()), vec![1]);
    for (marker, pending) in others {
        assert_eq!(
            markers_of(&pending.join().unwrap().unwrap()),
            vec![marker],
            "each request gets its own view's boxes back"
        );
    }
    let calls = engine.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let mut second = calls[1].clone();
    second.sort_unstable();
    assert_eq!(
        second,
        vec![2, 3, 4, 5],
        "one call for the four queued requests"
    );
}

#[test]
fn a_long_video_does_not_starve_a_single_photo() {
    let (engine, entered, release) = RecordingEngine::gated(BatchSize::Fixed(1));
    let batcher = batcher(1, Duration::ZERO);
    let video = submit(&batcher, submission(&engine, 1, &[7; 20]));
    entered.recv().unwrap();
    let photo = submit(&batcher, submission(&engine, 1, &[9]));
    wait_until("the photo queues behind the video", || {
        batcher.queued() == 20
    });
    release.send(()).unwrap();

    assert_eq!(markers_of(&photo.join().unwrap().unwrap()), vec![9]);
    assert_eq!(markers_of(&video.join().unwrap().unwrap()), vec![7; 20]);
    let calls = engine.calls();
    assert_eq!(calls.len(), 21);
    let photo_call = calls.iter().position(|c| c == &[9]).unwrap();
    assert!(
        photo_call <= 2,
        "the photo runs within two calls of arriving, not after the video's 19 views: {calls:?}"
    );
}

#[test]
fn the_settings_batch_size_caps_a_call_and_views_keep_their_order() {
    let engine = Arc::new(RecordingEngine::new(BatchSize::Dynamic { max: 8 }));
    let batcher = batcher(1, Duration::ZERO);
    let result = batcher
        .run(submission(&engine, 2, &[1, 2, 3, 4, 5]))
        .unwrap();
    assert_eq!(markers_of(&result), vec![1, 2, 3, 4, 5]);
    assert_eq!(engine.calls(), vec![vec![1, 2], vec![3, 4], vec![5]]);
}

#[test]
fn views_come_back_in_order_when_two_workers_share_a_submission() {
    let engine = Arc::new(RecordingEngine::new(BatchSize::Dynamic { max: 3 }));
    let batcher = batcher(2, Duration::ZERO);
    let markers: Vec<u8> = (1..=20).collect();
    let result = batcher.run(submission(&engine, 3, &markers)).unwrap();
    assert_eq!(markers_of(&result), markers);
    assert!(engine.calls().iter().all(|c| c.len() <= 3));
}

#[test]
fn a_partial_batch_waits_up_to_the_delay_for_more_views() {
    let engine = Arc::new(RecordingEngine::new(BatchSize::Dynamic { max: 3 }));
    // The batch is full (3) long before the delay ends, so the test does not wait for it.
    let batcher = batcher(1, Duration::from_secs(30));
    let first = submit(&batcher, submission(&engine, 3, &[1]));
    let second = submit(&batcher, submission(&engine, 3, &[2, 3]));
    assert_eq!(markers_of(&first.join().unwrap().unwrap()), vec![1]);
    assert_eq!(markers_of(&second.join().unwrap().unwrap()), vec![2, 3]);
    // Whichever came first waited for the other: one call carried all three views.
    let mut calls = engine.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls[0].sort_unstable();
    assert_eq!(calls[0], vec![1, 2, 3]);
}

#[test]
fn a_failed_call_fails_its_views_and_the_next_request_still_runs() {
    let mut failing = RecordingEngine::new(BatchSize::Fixed(1));
    failing.fail_on = Some(4);
    let engine = Arc::new(failing);
    let batcher = batcher(1, Duration::ZERO);
    let error = batcher.run(submission(&engine, 1, &[3, 4])).unwrap_err();
    assert!(
        matches!(&error, FrameError::Engine(EngineError::Inference(m)) if m.contains("fake engine failed")),
        "{error:?}"
    );
    let result = batcher.run(submission(&engine, 1, &[5])).unwrap();
    assert_eq!(markers_of(&result), vec![5]);
}

#[test]
fn views_for_two_engines_never_share_a_call() {
    let (old, entered, release) = RecordingEngine::gated(BatchSize::Dynamic { max: 8 });
    let new = Arc::new(RecordingEngine::new(BatchSize::Dynamic { max: 8 }));
    let batcher = batcher(1, Duration::ZERO);
    let first = submit(&batcher, submission(&old, 8, &[1]));
    entered.recv().unwrap();
    let on_old = submit(&batcher, submission(&old, 8, &[2]));
    wait_until("a view for the old engine queues", || batcher.queued() == 1);
    let on_new = submit(&batcher, submission(&new, 8, &[3]));
    wait_until("a view for the new engine queues", || batcher.queued() == 2);
    release.send(()).unwrap();

    assert_eq!(markers_of(&first.join().unwrap().unwrap()), vec![1]);
    assert_eq!(markers_of(&on_old.join().unwrap().unwrap()), vec![2]);
    assert_eq!(markers_of(&on_new.join().unwrap().unwrap()), vec![3]);
    assert_eq!(old.calls(), vec![vec![1], vec![2]]);
    assert_eq!(new.calls(), vec![vec![3]]);
}

#[test]
fn an_empty_submission_needs_no_engine_call() {
    let engine = Arc::new(RecordingEngine::new(BatchSize::Fixed(1)));
    let batcher = batcher(1, Duration::ZERO);
    assert!(batcher.run(submission(&engine, 1, &[])).unwrap().is_empty());
    assert!(engine.calls().is_empty());
}
