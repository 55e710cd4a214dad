//! `kind = "auto"`: the fastest engine that starts serves, whatever the order.

use std::sync::Arc;
use std::time::Duration;

use domain::availability::Availability;
use ports::engine::{MockEngineFactory, MockInferenceEngine};
use ports::{ComputePrecision, EngineKind, InferenceEngine, RawOutput};

use super::tests::{
    factory_of, found_source, missing_library, options, record, spec, two_classes, until,
};
use super::{Contender, EngineManager};

/// An engine of `kind` whose every call takes `per_call`.
fn engine_taking(
    kind: EngineKind,
    precision: Option<ComputePrecision>,
    per_call: Duration,
) -> Arc<dyn InferenceEngine> {
    let mut engine = MockInferenceEngine::new();
    engine.expect_spec().return_const(spec(2));
    engine.expect_engine_type().return_const(kind);
    engine.expect_precision().return_const(precision);
    engine.expect_infer().returning(move |_| {
        std::thread::sleep(per_call);
        Ok(RawOutput {
            dims: vec![1, 6, 0],
            data: vec![],
        })
    });
    Arc::new(engine)
}

fn contender(kind: EngineKind, factory: MockEngineFactory) -> Contender {
    Contender {
        kind,
        factory: Arc::new(factory),
    }
}

fn slow_onnx() -> Contender {
    let engine = engine_taking(EngineKind::Onnx, None, Duration::from_millis(40));
    contender(EngineKind::Onnx, factory_of(engine))
}

fn fast_openvino() -> Contender {
    let engine = engine_taking(
        EngineKind::Openvino,
        Some(ComputePrecision::Bf16),
        Duration::from_millis(2),
    );
    contender(EngineKind::Openvino, factory_of(engine))
}

fn auto(contenders: Vec<Contender>) -> Arc<EngineManager> {
    EngineManager::fastest_of(
        Arc::new(found_source()),
        contenders,
        two_classes(),
        options(Duration::from_secs(60)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_faster_engine_serves_whichever_is_listed_first() {
    for contenders in [
        vec![slow_onnx(), fast_openvino()],
        vec![fast_openvino(), slow_onnx()],
    ] {
        let manager = auto(contenders);
        let seen = record(&manager);
        let engine = manager.ensure().await.expect("an engine");
        assert_eq!(engine.engine_type(), EngineKind::Openvino);
        let status = manager.status();
        assert_eq!(status.availability, Availability::Enabled);
        assert_eq!(status.engine_type, Some(EngineKind::Openvino));
        assert_eq!(status.precision, Some(ComputePrecision::Bf16));
        until(|| seen.lock().unwrap().len() >= 4).await;
        assert_eq!(
            *seen.lock().unwrap(),
            ["None", "Downloading", "Converting", "Enabled"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contender_that_cannot_start_leaves_the_other_serving_as_a_warning() {
    let manager = auto(vec![
        slow_onnx(),
        contender(EngineKind::Openvino, missing_library()),
    ]);
    let engine = manager.ensure().await.expect("ONNX Runtime serves");
    assert_eq!(engine.engine_type(), EngineKind::Onnx);
    let status = manager.status();
    let Availability::Warning(reason) = &status.availability else {
        panic!("expected Warning, got {:?}", status.availability);
    };
    assert!(
        reason.as_str().contains("openvino cannot start")
            && reason.as_str().contains("libopenvino_c.so.2641")
            && reason.as_str().contains("serving on onnx"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_no_contender_starts_the_engine_is_an_error_naming_each() {
    let mut broken = MockEngineFactory::new();
    broken.expect_build().returning(|_| {
        Err(ports::EngineError::Runtime(
            "cannot load libonnxruntime.so.1.32.0".into(),
        ))
    });
    let manager = auto(vec![
        contender(EngineKind::Onnx, broken),
        contender(EngineKind::Openvino, missing_library()),
    ]);
    let status = manager.ensure().await.err().expect("no engine").status;
    let reason = status.availability.reason().unwrap().to_string();
    assert!(matches!(status.availability, Availability::Error(_)));
    assert!(
        reason.contains("onnx: ")
            && reason.contains("libonnxruntime")
            && reason.contains("openvino: ")
            && reason.contains("libopenvino_c"),
        "{reason}"
    );
}
