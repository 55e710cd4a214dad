//! The GPU start-up (spec A4) over mocked ports: every path of the issue.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::availability::Availability;
use ports::engine::{MockEngineFactory, MockInferenceEngine};
use ports::gpu::MockGpuProbe;
use ports::model_source::MockModelSource;
use ports::{
    EngineError, GpuInfo, GpuUnavailable, InferenceEngine, InputTensor, ModelArtifact,
    ModelSourceError, Precision, RawOutput,
};

use super::tests::{spec, two_classes};
use super::{EngineManager, EngineOptions, GpuSetup};
use ports::Health;

const ENGINE: &str = "azaion.cc_9.0_sm_132.engine";
const INT8_ENGINE: &str = "azaion.cc_9.0_sm_132.int8.engine";

fn h200() -> GpuInfo {
    GpuInfo {
        name: "NVIDIA H200".into(),
        cc_major: 9,
        cc_minor: 0,
        sm_count: 132,
    }
}

/// An engine of `kind` whose output's first dimension says which engine answered.
fn engine(kind: ports::EngineKind, delay: Duration) -> Arc<dyn InferenceEngine> {
    let mut engine = MockInferenceEngine::new();
    engine.expect_spec().return_const(spec(2));
    engine.expect_engine_type().return_const(kind);
    engine.expect_precision().return_const(None);
    let marker = usize::from(kind == ports::EngineKind::Tensorrt);
    engine.expect_infer().returning(move |_| {
        std::thread::sleep(delay);
        Ok(RawOutput {
            dims: vec![marker, 6, 0],
            data: vec![],
        })
    });
    Arc::new(engine)
}

fn probe_ok() -> MockGpuProbe {
    let mut probe = MockGpuProbe::new();
    probe.expect_probe().returning(|| Ok(h200()));
    probe
}

/// A source that holds `present` (by name), records what it was asked for, and answers
/// uploads with `upload`.
fn source(
    present: &'static [&'static str],
    upload: Result<(), ModelSourceError>,
) -> (MockModelSource, Arc<Mutex<Vec<String>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let mut source = MockModelSource::new();
    source.expect_describe().return_const("loader".to_string());
    let log = Arc::clone(&asked);
    source.expect_load().returning(move |name| {
        log.lock().unwrap().push(name.to_string());
        if present.contains(&name) {
            Ok(ModelArtifact {
                name: name.to_string(),
                path: format!("/dl/{name}").into(),
            })
        } else {
            Err(ModelSourceError::NotFound {
                name: name.to_string(),
            })
        }
    });
    let log = Arc::clone(&asked);
    source.expect_upload().returning(move |name, _| {
        log.lock().unwrap().push(format!("upload {name}"));
        upload.clone()
    });
    (source, asked)
}

fn setup(probe: MockGpuProbe, int8: bool) -> GpuSetup {
    GpuSetup {
        probe: Arc::new(probe),
        tensorrt: true,
        fp16: true,
        int8,
        local_engines: None,
        cpu_fallback: None,
    }
}

fn manager(
    source: MockModelSource,
    factory: MockEngineFactory,
    gpu: GpuSetup,
) -> Arc<EngineManager> {
    EngineManager::with_gpu(
        Arc::new(source),
        Arc::new(factory),
        two_classes(),
        EngineOptions {
            model_name: "azaion.onnx".into(),
            start_wait: Duration::from_secs(5),
            retry_interval: Duration::from_secs(60),
        },
        gpu,
    )
}

/// A factory whose fallback is CUDA and whose conversion and built engine are given.
fn converting_factory(
    convert: Result<(), EngineError>,
    convert_delay: Duration,
    trt: Arc<dyn InferenceEngine>,
) -> (MockEngineFactory, Arc<Mutex<Vec<ports::Conversion>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut factory = MockEngineFactory::new();
    let cuda = engine(ports::EngineKind::Cuda, Duration::ZERO);
    factory.expect_build().returning(move |model| {
        assert_eq!(model.name, "azaion.onnx");
        Ok(Arc::clone(&cuda))
    });
    let log = Arc::clone(&seen);
    factory
        .expect_convert()
        .returning(move |model, conversion| {
            assert_eq!(model.name, "azaion.onnx");
            log.lock().unwrap().push(conversion.clone());
            std::thread::sleep(convert_delay);
            convert.clone().map(|()| ModelArtifact {
                name: conversion.engine_name.clone(),
                path: format!("/cache/{}", conversion.engine_name).into(),
            })
        });
    factory.expect_load_engine().returning(move |built| {
        assert!(built.path.starts_with("/cache"), "{built:?}");
        Ok(Arc::clone(&trt))
    });
    (factory, seen)
}

fn record(manager: &Arc<EngineManager>) -> Arc<Mutex<Vec<&'static str>>> {
    let seen = Arc::new(Mutex::new(vec![manager.status().availability.name()]));
    let mut changes = manager.transitions();
    let sink = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok(status) = changes.recv().await {
            sink.lock().unwrap().push(status.availability.name());
        }
    });
    seen
}

/// Waits until the start has settled (Enabled, Warning or Error).
async fn settled(manager: &Arc<EngineManager>) -> Health {
    let mut watch = manager.watch();
    let status = tokio::time::timeout(
        Duration::from_secs(5),
        watch.wait_for(|s| {
            matches!(
                s.availability,
                Availability::Enabled | Availability::Warning(_) | Availability::Error(_)
            )
        }),
    )
    .await
    .expect("settles in time")
    .expect("manager alive")
    .clone();
    // Let the recorder catch the last transition.
    tokio::time::sleep(Duration::from_millis(20)).await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_on_the_loader_is_loaded_and_enabled_without_the_onnx_model() {
    let (source, asked) = source(&[ENGINE], Ok(()));
    let mut factory = MockEngineFactory::new();
    factory.expect_build().never();
    factory.expect_convert().never();
    let trt = engine(ports::EngineKind::Tensorrt, Duration::ZERO);
    factory.expect_load_engine().returning(move |found| {
        assert_eq!(found.name, ENGINE);
        Ok(Arc::clone(&trt))
    });
    // INT8 asked for: its engine is looked for first, then the plain one.
    let manager = manager(source, factory, setup(probe_ok(), true));
    let seen = record(&manager);
    let engine = manager.ensure().await.expect("engine");
    assert_eq!(engine.engine_type(), ports::EngineKind::Tensorrt);
    let status = settled(&manager).await;
    assert_eq!(status.availability, Availability::Enabled);
    assert_eq!(status.engine_type, Some(ports::EngineKind::Tensorrt));
    assert_eq!(*seen.lock().unwrap(), ["None", "Downloading", "Enabled"]);
    assert_eq!(*asked.lock().unwrap(), [INT8_ENGINE, ENGINE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_in_the_local_cache_spares_the_loader() {
    let (source, asked) = source(&[], Ok(()));
    let (local, local_asked) = source_local();
    let mut factory = MockEngineFactory::new();
    let trt = engine(ports::EngineKind::Tensorrt, Duration::ZERO);
    factory
        .expect_load_engine()
        .returning(move |_| Ok(Arc::clone(&trt)));
    let mut gpu = setup(probe_ok(), false);
    gpu.local_engines = Some(Arc::new(local));
    let manager = manager(source, factory, gpu);
    assert_eq!(
        manager.ensure().await.unwrap().engine_type(),
        ports::EngineKind::Tensorrt
    );
    assert!(asked.lock().unwrap().is_empty());
    assert_eq!(*local_asked.lock().unwrap(), [ENGINE]);
}

fn source_local() -> (MockModelSource, Arc<Mutex<Vec<String>>>) {
    source(&[ENGINE], Ok(()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_engine_serves_the_fallback_converts_uploads_and_enables() {
    let (source, asked) = source(&["azaion.onnx"], Ok(()));
    let (factory, conversions) = converting_factory(
        Ok(()),
        Duration::from_millis(300),
        engine(ports::EngineKind::Tensorrt, Duration::ZERO),
    );
    let manager = manager(source, factory, setup(probe_ok(), false));
    let seen = record(&manager);
    // The first request is served by the fallback while TensorRT builds.
    let first = manager.ensure().await.expect("fallback engine");
    assert_eq!(first.engine_type(), ports::EngineKind::Cuda);
    assert_eq!(manager.status().availability, Availability::Converting);
    let status = settled(&manager).await;
    assert_eq!(status.availability, Availability::Enabled);
    assert_eq!(status.engine_type, Some(ports::EngineKind::Tensorrt));
    assert_eq!(
        manager.current().unwrap().engine_type(),
        ports::EngineKind::Tensorrt
    );
    assert_eq!(
        *seen.lock().unwrap(),
        ["None", "Downloading", "Converting", "Uploading", "Enabled"]
    );
    assert_eq!(
        *asked.lock().unwrap(),
        [ENGINE, "azaion.onnx", &format!("upload {ENGINE}")]
    );
    let conversions = conversions.lock().unwrap();
    assert_eq!(conversions.len(), 1);
    assert_eq!(conversions[0].precision, Precision::Fp16);
    assert_eq!(conversions[0].engine_name, ENGINE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn int8_is_built_when_the_calibration_cache_is_there() {
    let (source, asked) = source(&["azaion.onnx", "azaion.int8_calib.cache"], Ok(()));
    let (factory, conversions) = converting_factory(
        Ok(()),
        Duration::ZERO,
        engine(ports::EngineKind::Tensorrt, Duration::ZERO),
    );
    let manager = manager(source, factory, setup(probe_ok(), true));
    manager.ensure().await.expect("engine");
    assert_eq!(settled(&manager).await.availability, Availability::Enabled);
    let conversions = conversions.lock().unwrap();
    assert_eq!(conversions[0].precision, Precision::Int8);
    assert_eq!(conversions[0].engine_name, INT8_ENGINE);
    assert_eq!(
        conversions[0].calibration.as_deref(),
        Some(std::path::Path::new("/dl/azaion.int8_calib.cache"))
    );
    assert!(
        asked
            .lock()
            .unwrap()
            .contains(&format!("upload {INT8_ENGINE}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_is_a_warning_and_the_built_engine_serves() {
    let (source, _) = source(
        &["azaion.onnx"],
        Err(ModelSourceError::Unavailable {
            reason: "Loader answered 503".into(),
        }),
    );
    let (factory, _) = converting_factory(
        Ok(()),
        Duration::ZERO,
        engine(ports::EngineKind::Tensorrt, Duration::ZERO),
    );
    let manager = manager(source, factory, setup(probe_ok(), false));
    let seen = record(&manager);
    manager.ensure().await.expect("engine");
    let status = settled(&manager).await;
    let reason = status.availability.reason().expect("a warning").to_string();
    assert!(matches!(status.availability, Availability::Warning(_)));
    assert!(
        reason.contains("not shared") && reason.contains("503"),
        "{reason}"
    );
    assert_eq!(
        manager.current().unwrap().engine_type(),
        ports::EngineKind::Tensorrt
    );
    assert_eq!(
        *seen.lock().unwrap(),
        ["None", "Downloading", "Converting", "Uploading", "Warning"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_conversion_is_a_warning_and_the_fallback_keeps_serving() {
    let (source, asked) = source(&["azaion.onnx"], Ok(()));
    let (factory, _) = converting_factory(
        Err(EngineError::Backend("TensorRT ran out of workspace".into())),
        Duration::ZERO,
        engine(ports::EngineKind::Tensorrt, Duration::ZERO),
    );
    let manager = manager(source, factory, setup(probe_ok(), false));
    let seen = record(&manager);
    manager.ensure().await.expect("engine");
    let status = settled(&manager).await;
    let reason = status.availability.reason().expect("a warning").to_string();
    assert!(matches!(status.availability, Availability::Warning(_)));
    assert!(
        reason.contains("workspace") && reason.contains("cuda"),
        "{reason}"
    );
    assert_eq!(
        manager.current().unwrap().engine_type(),
        ports::EngineKind::Cuda
    );
    assert_eq!(
        *seen.lock().unwrap(),
        ["None", "Downloading", "Converting", "Warning"]
    );
    assert!(
        !asked
            .lock()
            .unwrap()
            .iter()
            .any(|a| a.starts_with("upload"))
    );
}

fn no_gpu() -> MockGpuProbe {
    let mut probe = MockGpuProbe::new();
    probe.expect_probe().returning(|| {
        Err(GpuUnavailable(
            "the NVIDIA driver library libcuda.so.1 cannot be loaded".into(),
        ))
    });
    probe
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_gpu_is_an_error_a_person_can_act_on() {
    let (source, asked) = source(&["azaion.onnx"], Ok(()));
    let mut factory = MockEngineFactory::new();
    factory.expect_build().never();
    let manager = manager(source, factory, setup(no_gpu(), false));
    let seen = record(&manager);
    let error = manager.ensure().await.err().expect("no engine");
    let reason = error.status.availability.reason().unwrap().to_string();
    assert!(matches!(error.status.availability, Availability::Error(_)));
    assert!(
        reason.contains("libcuda.so.1")
            && reason.contains("--gpus all")
            && reason.contains("allow_cpu_fallback"),
        "{reason}"
    );
    assert!(asked.lock().unwrap().is_empty(), "nothing downloaded");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(*seen.lock().unwrap(), ["None", "Downloading", "Error"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_gpu_with_the_cpu_fallback_allowed_is_a_warning() {
    let (source, _) = source(&["azaion.onnx"], Ok(()));
    let mut gpu = setup(no_gpu(), false);
    let mut cpu = MockEngineFactory::new();
    let onnx = engine(ports::EngineKind::Onnx, Duration::ZERO);
    cpu.expect_build().returning(move |_| Ok(Arc::clone(&onnx)));
    gpu.cpu_fallback = Some(Arc::new(cpu));
    let manager = manager(source, MockEngineFactory::new(), gpu);
    let seen = record(&manager);
    assert_eq!(
        manager.ensure().await.unwrap().engine_type(),
        ports::EngineKind::Onnx
    );
    let status = settled(&manager).await;
    let reason = status.availability.reason().expect("a warning").to_string();
    assert!(matches!(status.availability, Availability::Warning(_)));
    assert!(
        reason.contains("libcuda.so.1") && reason.contains("CPU"),
        "{reason}"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        ["None", "Downloading", "Converting", "Warning"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_gpu_libraries_are_an_error_never_a_silent_cpu_session() {
    let (source, _) = source(&["azaion.onnx"], Ok(()));
    let mut factory = MockEngineFactory::new();
    factory.expect_build().returning(|_| {
        Err(EngineError::Backend(
            "the CUDA execution provider could not be registered: libcudnn.so.9 missing".into(),
        ))
    });
    factory.expect_convert().never();
    let manager = manager(source, factory, setup(probe_ok(), false));
    let error = manager.ensure().await.err().expect("no engine");
    let reason = error.status.availability.reason().unwrap().to_string();
    assert!(
        reason.contains("libcudnn.so.9") && reason.contains("allow_cpu_fallback"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cuda_backend_serves_its_session_without_tensorrt() {
    let (source, asked) = source(&["azaion.onnx"], Ok(()));
    let mut factory = MockEngineFactory::new();
    let cuda = engine(ports::EngineKind::Cuda, Duration::ZERO);
    factory
        .expect_build()
        .returning(move |_| Ok(Arc::clone(&cuda)));
    factory.expect_convert().never();
    factory.expect_load_engine().never();
    let mut gpu = setup(probe_ok(), false);
    gpu.tensorrt = false;
    let manager = manager(source, factory, gpu);
    let seen = record(&manager);
    assert_eq!(
        manager.ensure().await.unwrap().engine_type(),
        ports::EngineKind::Cuda
    );
    assert_eq!(settled(&manager).await.availability, Availability::Enabled);
    assert_eq!(
        *seen.lock().unwrap(),
        ["None", "Downloading", "Converting", "Enabled"]
    );
    assert_eq!(*asked.lock().unwrap(), ["azaion.onnx"]);
}

/// Requests keep coming while the engine switches: every one succeeds, those in flight
/// finish on the fallback, and once switched new ones run on TensorRT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_fails_no_request_under_concurrent_load() {
    let (source, _) = source(&["azaion.onnx"], Ok(()));
    let mut factory = MockEngineFactory::new();
    // A slow fallback, so calls are in flight at the moment of the switch.
    let cuda = engine(ports::EngineKind::Cuda, Duration::from_millis(30));
    factory
        .expect_build()
        .returning(move |_| Ok(Arc::clone(&cuda)));
    factory.expect_convert().returning(|_, conversion| {
        std::thread::sleep(Duration::from_millis(200));
        Ok(ModelArtifact {
            name: conversion.engine_name.clone(),
            path: "/cache/built".into(),
        })
    });
    let trt = engine(ports::EngineKind::Tensorrt, Duration::from_millis(5));
    factory
        .expect_load_engine()
        .returning(move |_| Ok(Arc::clone(&trt)));
    let manager = manager(source, factory, setup(probe_ok(), false));
    manager.ensure().await.expect("fallback");

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(Mutex::new(Vec::new()));
    let tickets = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..6 {
        let (manager, stop, failures, answered, tickets) = (
            Arc::clone(&manager),
            Arc::clone(&stop),
            Arc::clone(&failures),
            Arc::clone(&answered),
            Arc::clone(&tickets),
        );
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let Ok(engine) = manager.ensure().await else {
                    failures.fetch_add(1, Ordering::SeqCst);
                    continue;
                };
                // The order in which requests took their engine.
                let ticket = tickets.fetch_add(1, Ordering::SeqCst);
                let outcome = tokio::task::spawn_blocking(move || {
                    let input =
                        InputTensor::new(engine.spec().element, engine.spec().input_size, 1);
                    engine.infer(&input).map(|out| out.dims[0])
                })
                .await
                .unwrap();
                match outcome {
                    Ok(marker) => answered.lock().unwrap().push((ticket, marker)),
                    Err(_) => {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    assert_eq!(settled(&manager).await.availability, Availability::Enabled);
    // Requests begun after the switch run on TensorRT.
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    let mut answered = answered.lock().unwrap().clone();
    // Calls in flight at the switch finish after it, on the fallback they took.
    answered.sort_unstable();
    let markers: Vec<usize> = answered.iter().map(|&(_, m)| m).collect();
    let first_trt = markers
        .iter()
        .position(|&m| m == 1)
        .expect("TensorRT answered");
    assert!(first_trt >= 6, "the fallback served first: {markers:?}");
    assert!(
        markers[first_trt..].iter().all(|&m| m == 1),
        "after the switch every new request took TensorRT: {markers:?}"
    );
}
