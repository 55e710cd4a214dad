use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use domain::availability::Availability;
use domain::classes::ClassTable;
use domain::geometry::Size;
use domain::layout::OutputLayout;
use ports::engine::{MockEngineFactory, MockInferenceEngine};
use ports::model_source::MockModelSource;
use ports::{
    BatchSize, ElementType, EngineError, InferenceEngine, ModelArtifact, ModelSourceError,
    ModelSpec, RawOutput,
};

use super::{EngineManager, EngineOptions};

pub(crate) fn two_classes() -> Arc<ClassTable> {
    Arc::new(
        ClassTable::from_json(
            r##"[{"Id":0,"Name":"Normal","Color":"#00ff00","MaxSizeM":1000},
                 {"Id":1,"Name":"Fall","Color":"#ff0000","MaxSizeM":1000}]"##,
        )
        .unwrap(),
    )
}

pub(crate) fn spec(class_count: usize) -> ModelSpec {
    ModelSpec {
        input_name: "images".into(),
        input_size: Size::new(640, 640).unwrap(),
        element: ElementType::F32,
        batch: BatchSize::Fixed(1),
        layout: OutputLayout::UltralyticsV8 {
            classes: class_count,
        },
        class_count,
    }
}

/// An engine whose every run returns an empty v8 output.
pub(crate) fn working_engine(class_count: usize) -> Arc<dyn InferenceEngine> {
    let mut engine = MockInferenceEngine::new();
    engine.expect_spec().return_const(spec(class_count));
    engine
        .expect_engine_type()
        .return_const(ports::EngineKind::Onnx);
    engine.expect_precision().return_const(None);
    engine.expect_infer().returning(move |_| {
        Ok(RawOutput {
            dims: vec![1, 4 + class_count, 0],
            data: vec![],
        })
    });
    Arc::new(engine)
}

pub(crate) fn options(retry: Duration) -> EngineOptions {
    EngineOptions {
        model_name: "azaion.onnx".into(),
        start_wait: Duration::from_secs(5),
        retry_interval: retry,
    }
}

pub(crate) fn found_source() -> MockModelSource {
    let mut source = MockModelSource::new();
    source
        .expect_describe()
        .return_const("test source".to_string());
    source.expect_load().returning(|name| {
        Ok(ModelArtifact {
            name: name.to_string(),
            path: "/models/azaion.onnx".into(),
        })
    });
    source
}

pub(crate) fn factory_of(engine: Arc<dyn InferenceEngine>) -> MockEngineFactory {
    let mut factory = MockEngineFactory::new();
    factory
        .expect_build()
        .returning(move |_| Ok(Arc::clone(&engine)));
    factory
}

fn make_manager(
    source: MockModelSource,
    factory: MockEngineFactory,
    retry: Duration,
) -> Arc<EngineManager> {
    EngineManager::new(
        Arc::new(source),
        Arc::new(factory),
        two_classes(),
        options(retry),
    )
}

/// Every availability the manager publishes, in order.
pub(crate) fn record(manager: &Arc<EngineManager>) -> Arc<std::sync::Mutex<Vec<&'static str>>> {
    let seen = Arc::new(std::sync::Mutex::new(vec![
        manager.status().availability.name(),
    ]));
    let mut changes = manager.transitions();
    let sink = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok(status) = changes.recv().await {
            sink.lock().unwrap().push(status.availability.name());
        }
    });
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_lazily_and_walks_download_convert_enable() {
    let manager = make_manager(
        found_source(),
        factory_of(working_engine(2)),
        Duration::ZERO,
    );
    assert_eq!(manager.status().availability, Availability::None);
    assert!(
        manager.current().is_none(),
        "nothing starts before a request"
    );
    let seen = record(&manager);
    let engine = manager.ensure().await.expect("engine");
    assert_eq!(engine.engine_type(), ports::EngineKind::Onnx);
    let status = manager.status();
    assert_eq!(status.availability, Availability::Enabled);
    assert_eq!(status.engine_type, Some(ports::EngineKind::Onnx));
    until(|| seen.lock().unwrap().len() >= 4).await;
    assert_eq!(
        *seen.lock().unwrap(),
        ["None", "Downloading", "Converting", "Enabled"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_start() {
    let loads = Arc::new(AtomicUsize::new(0));
    let mut source = MockModelSource::new();
    source.expect_describe().return_const("slow".to_string());
    let counter = Arc::clone(&loads);
    source.expect_load().returning(move |name| {
        counter.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        Ok(ModelArtifact {
            name: name.to_string(),
            path: "/m".into(),
        })
    });
    let manager = make_manager(source, factory_of(working_engine(2)), Duration::ZERO);
    let waits = (0..8).map(|_| {
        let manager = Arc::clone(&manager);
        tokio::spawn(async move { manager.ensure().await.is_ok() })
    });
    for wait in waits {
        assert!(wait.await.unwrap());
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_model_is_an_error_with_the_reason() {
    let mut source = MockModelSource::new();
    source.expect_describe().return_const("s".to_string());
    source.expect_load().returning(|name| {
        Err(ModelSourceError::NotFound {
            name: name.to_string(),
        })
    });
    let manager = make_manager(source, MockEngineFactory::new(), Duration::from_secs(60));
    let error = manager.ensure().await.err().expect("no engine");
    match &error.status.availability {
        Availability::Error(reason) => {
            assert!(reason.as_str().contains("azaion.onnx"), "{reason:?}")
        }
        other => panic!("expected Error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_an_error_but_not_sooner_than_the_interval() {
    let loads = Arc::new(AtomicUsize::new(0));
    let mut source = MockModelSource::new();
    source.expect_describe().return_const("flaky".to_string());
    let counter = Arc::clone(&loads);
    source.expect_load().returning(move |name| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(ModelSourceError::Unavailable {
                reason: "loader answered 503".into(),
            })
        } else {
            Ok(ModelArtifact {
                name: name.to_string(),
                path: "/m".into(),
            })
        }
    });
    let manager = make_manager(
        source,
        factory_of(working_engine(2)),
        Duration::from_millis(200),
    );
    assert!(manager.ensure().await.is_err());
    // Too soon: answered from the recorded error without asking the source again.
    let again = manager.ensure().await.err().expect("no engine");
    assert!(matches!(again.status.availability, Availability::Error(_)));
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(manager.ensure().await.is_ok());
    assert_eq!(loads.load(Ordering::SeqCst), 2);
    assert_eq!(manager.status().availability, Availability::Enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn class_count_mismatch_names_both_numbers() {
    let manager = make_manager(
        found_source(),
        factory_of(working_engine(3)),
        Duration::from_secs(60),
    );
    let error = manager.ensure().await.err().expect("no engine");
    let reason = error
        .status
        .availability
        .reason()
        .unwrap_or_default()
        .to_string();
    assert!(reason.contains('3') && reason.contains('2'), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_build_and_failed_warm_up_leave_an_error() {
    let mut factory = MockEngineFactory::new();
    factory
        .expect_build()
        .returning(|_| Err(EngineError::Model("not an ONNX file".into())));
    let manager = make_manager(found_source(), factory, Duration::from_secs(60));
    let reason = manager
        .ensure()
        .await
        .err()
        .expect("no engine")
        .status
        .availability;
    assert!(reason.reason().unwrap().contains("not an ONNX file"));

    let mut broken = MockInferenceEngine::new();
    broken.expect_spec().return_const(spec(2));
    broken
        .expect_engine_type()
        .return_const(ports::EngineKind::Onnx);
    broken.expect_precision().return_const(None);
    broken
        .expect_infer()
        .returning(|_| Err(EngineError::Inference("boom".into())));
    let manager = make_manager(
        found_source(),
        factory_of(Arc::new(broken)),
        Duration::from_secs(60),
    );
    let status = manager.ensure().await.err().expect("no engine").status;
    assert!(status.availability.reason().unwrap().contains("warm-up"));
    assert_eq!(status.engine_type, None);
}

/// A factory whose runtime library cannot be loaded.
pub(crate) fn missing_library() -> MockEngineFactory {
    let mut factory = MockEngineFactory::new();
    factory.expect_build().returning(|_| {
        Err(EngineError::Runtime(
            "cannot load libopenvino_c.so.2641: no such file".into(),
        ))
    });
    factory
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_fallback_serves_as_a_warning_naming_both_engines() {
    let manager = EngineManager::with_fallback(
        Arc::new(found_source()),
        Arc::new(missing_library()),
        two_classes(),
        options(Duration::from_secs(60)),
        Arc::new(factory_of(working_engine(2))),
    );
    let seen = record(&manager);
    let engine = manager.ensure().await.expect("the fallback serves");
    assert_eq!(engine.engine_type(), ports::EngineKind::Onnx);
    let status = manager.status();
    let reason = match &status.availability {
        Availability::Warning(reason) => reason.as_str().to_string(),
        other => panic!("expected Warning, got {other:?}"),
    };
    assert!(reason.contains("libopenvino_c.so.2641"), "{reason}");
    assert!(reason.contains("serving on onnx"), "{reason}");
    assert_eq!(status.engine_type, Some(ports::EngineKind::Onnx));
    until(|| seen.lock().unwrap().len() >= 4).await;
    assert_eq!(
        *seen.lock().unwrap(),
        ["None", "Downloading", "Converting", "Warning"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fallback_or_when_it_fails_too_the_engine_is_an_error_with_both_reasons() {
    let alone = make_manager(found_source(), missing_library(), Duration::from_secs(60));
    let status = alone.ensure().await.err().expect("no engine").status;
    assert!(matches!(status.availability, Availability::Error(_)));
    assert!(
        status
            .availability
            .reason()
            .unwrap()
            .contains("libopenvino_c")
    );

    let mut broken_too = MockEngineFactory::new();
    broken_too.expect_build().returning(|_| {
        Err(EngineError::Runtime(
            "cannot load libonnxruntime.so.1.32.0".into(),
        ))
    });
    let both = EngineManager::with_fallback(
        Arc::new(found_source()),
        Arc::new(missing_library()),
        two_classes(),
        options(Duration::from_secs(60)),
        Arc::new(broken_too),
    );
    let status = both.ensure().await.err().expect("no engine").status;
    let reason = status.availability.reason().unwrap().to_string();
    assert!(matches!(status.availability, Availability::Error(_)));
    assert!(
        reason.contains("libopenvino_c") && reason.contains("libonnxruntime"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_start_is_visible_and_the_caller_gives_up_in_time() {
    let mut source = MockModelSource::new();
    source.expect_describe().return_const("slow".to_string());
    source.expect_load().returning(|name| {
        std::thread::sleep(Duration::from_millis(300));
        Ok(ModelArtifact {
            name: name.to_string(),
            path: "/m".into(),
        })
    });
    let manager = EngineManager::new(
        Arc::new(source),
        Arc::new(factory_of(working_engine(2))),
        two_classes(),
        EngineOptions {
            start_wait: Duration::from_millis(50),
            ..options(Duration::ZERO)
        },
    );
    let error = manager.ensure().await.err().expect("no engine");
    assert_eq!(error.status.availability, Availability::Downloading);
    // The start goes on without the caller.
    until(|| manager.status().availability == Availability::Enabled).await;
    assert_eq!(manager.status().availability, Availability::Enabled);
}

/// Polls `holds` until it does (or 10 s pass: the assertion after it then says why).
pub(crate) async fn until(holds: impl Fn() -> bool) {
    for _ in 0..1000 {
        if holds() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
