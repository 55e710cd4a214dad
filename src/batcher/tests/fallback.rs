//! A model that refuses batches at run time: its views go one per call, no view fails.

use std::sync::Arc;
use std::time::Duration;

use ports::{BatchSize, InferenceEngine};

use super::super::single_view::SingleView;
use super::{RecordingEngine, batcher, markers_of, submission, submit, wait_until};

/// An engine that says it takes 8 but runs only at 1, gated on its first call.
fn batch_one_only() -> (
    Arc<RecordingEngine>,
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
) {
    let (engine, entered, release) = RecordingEngine::gated(BatchSize::Dynamic { max: 8 });
    let mut engine = Arc::into_inner(engine).unwrap();
    engine.runs_up_to = Some(1);
    (Arc::new(engine), entered, release)
}

#[test]
fn a_refused_batch_is_served_one_view_per_call_now_and_later() {
    let (engine, entered, release) = batch_one_only();
    let batcher = batcher(1, Duration::ZERO);
    let first = submit(&batcher, submission(&engine, 1, &[1]));
    entered.recv().unwrap();
    let others: Vec<_> = (2..=4)
        .map(|m| (m, submit(&batcher, submission(&engine, 1, &[m]))))
        .collect();
    wait_until("three views queue", || batcher.queued() == 3);
    release.send(()).unwrap();

    assert_eq!(markers_of(&first.join().unwrap().unwrap()), vec![1]);
    for (marker, pending) in others {
        assert_eq!(
            markers_of(&pending.join().unwrap().unwrap()),
            vec![marker],
            "no view fails because views were batched"
        );
    }
    let calls = engine.calls();
    assert_eq!(calls.len(), 5, "{calls:?}");
    let mut refused = calls[1].clone();
    refused.sort_unstable();
    assert_eq!(refused, vec![2, 3, 4], "one batched try");
    assert!(calls[2..].iter().all(|c| c.len() == 1), "{calls:?}");

    // Remembered: a later request's views never share a call again.
    let result = batcher.run(submission(&engine, 8, &[5, 6, 7])).unwrap();
    assert_eq!(markers_of(&result), vec![5, 6, 7]);
    assert_eq!(engine.calls()[5..], [vec![5], vec![6], vec![7]]);
}

#[test]
fn a_view_that_fails_alone_after_a_refused_batch_still_fails() {
    let mut engine = RecordingEngine::new(BatchSize::Dynamic { max: 8 });
    engine.runs_up_to = Some(1);
    engine.fail_on = Some(3);
    let engine = Arc::new(engine);
    let batcher = batcher(1, Duration::ZERO);
    let error = batcher.run(submission(&engine, 8, &[2, 3, 4])).unwrap_err();
    assert!(error.to_string().contains("fake engine failed"), "{error}");
    assert_eq!(engine.calls()[..2], [vec![2, 3, 4], vec![2]]);
}

#[test]
fn single_view_engines_are_remembered_once_and_forgotten_with_the_engine() {
    let registry = SingleView::default();
    let first: Arc<dyn InferenceEngine> =
        Arc::new(RecordingEngine::new(BatchSize::Dynamic { max: 8 }));
    let other: Arc<dyn InferenceEngine> =
        Arc::new(RecordingEngine::new(BatchSize::Dynamic { max: 8 }));
    assert!(!registry.contains(&first));
    assert!(registry.insert(&first), "the first time: the caller logs");
    assert!(!registry.insert(&first), "the second time: nothing to log");
    assert!(registry.contains(&first));
    assert!(!registry.contains(&other), "per engine instance");
    drop(first);
    let replacement: Arc<dyn InferenceEngine> =
        Arc::new(RecordingEngine::new(BatchSize::Dynamic { max: 8 }));
    assert!(!registry.contains(&replacement));
}
