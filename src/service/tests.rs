use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::availability::Availability;
use domain::settings::SettingsPatch;
use ports::engine::MockEngineFactory;
use ports::frame::{MockFrameCodec, MockPreprocessor};
use ports::model_source::MockModelSource;
use ports::{DecodeError, DetectError, DetectRequest, DetectionService, ModelArtifact};

use super::{Admission, Application};
use crate::detect::FrameDetector;
use crate::engine::tests::{two_classes, working_engine};
use crate::engine::{EngineManager, EngineOptions};

fn application(codec: MockFrameCodec, admission: Admission) -> Application {
    let mut source = MockModelSource::new();
    source.expect_describe().return_const("s".to_string());
    source.expect_load().returning(|name| {
        Ok(ModelArtifact {
            name: name.into(),
            path: "/m".into(),
        })
    });
    let mut factory = MockEngineFactory::new();
    let engine = working_engine(2);
    factory
        .expect_build()
        .returning(move |_| Ok(Arc::clone(&engine)));
    let mut preprocessor = MockPreprocessor::new();
    preprocessor.expect_fill().returning(|_, _, _| Ok(()));
    let engines = EngineManager::new(
        Arc::new(source),
        Arc::new(factory),
        two_classes(),
        EngineOptions {
            model_name: "azaion.onnx".into(),
            start_wait: Duration::from_secs(5),
            retry_interval: Duration::ZERO,
        },
    );
    let detector = FrameDetector::new(Arc::new(codec), Arc::new(preprocessor), two_classes(), 0.7);
    Application::new(engines, Arc::new(detector), admission)
}

fn request(content: &'static [u8]) -> DetectRequest {
    DetectRequest {
        content: Bytes::from_static(content),
        file_name: Some("x.jpg".into()),
        settings: SettingsPatch::default(),
        credentials: None,
    }
}

const ONE_BY_ONE: Admission = Admission {
    max_running: 1,
    queue_capacity: 1,
};

fn decoding_codec() -> MockFrameCodec {
    let mut codec = MockFrameCodec::new();
    codec.expect_decode().returning(|_| {
        Ok(ports::RgbFrame::new(
            domain::geometry::Size::new(64, 48).unwrap(),
            vec![0; 64 * 48 * 3],
        )
        .unwrap())
    });
    codec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_does_not_start_the_engine_and_detect_does() {
    let app = application(decoding_codec(), ONE_BY_ONE);
    assert_eq!(app.health().availability, Availability::None);
    assert_eq!(app.health().engine_type, None);
    let detections = app.detect(request(b"jpeg")).await.unwrap();
    assert!(detections.is_empty());
    assert_eq!(app.health().availability, Availability::Enabled);
    assert_eq!(app.health().engine_type, Some("onnx"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_undecodable_files_are_the_clients_mistake() {
    let mut codec = MockFrameCodec::new();
    codec
        .expect_decode()
        .returning(|_| Err(DecodeError::UnknownFormat));
    let app = application(codec, ONE_BY_ONE);
    let empty = app.detect(request(b"")).await.unwrap_err();
    assert_eq!(empty, DetectError::BadInput("the file is empty".into()));
    let garbage = app.detect(request(b"\x00\x01garbage")).await.unwrap_err();
    assert!(
        matches!(&garbage, DetectError::BadInput(m) if m.contains("unsupported or unrecognised image format")),
        "{garbage:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy() {
    let app = Arc::new(application(decoding_codec(), ONE_BY_ONE));
    // Hold the only running slot and the only queue place.
    let running = Arc::clone(&app.running).try_acquire_owned().unwrap();
    let queued = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { app.detect(request(b"jpeg")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = app.detect(request(b"jpeg")).await.unwrap_err();
    assert!(matches!(refused, DetectError::Busy { .. }), "{refused:?}");
    drop(running);
    assert!(
        queued.await.unwrap().is_ok(),
        "the queued one runs once a slot frees"
    );
}
