use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::availability::Availability;
use domain::settings::SettingsPatch;
use ports::engine::MockEngineFactory;
use ports::frame::{MockFrameCodec, MockPreprocessor};
use ports::model_source::MockModelSource;
use std::path::PathBuf;
use std::sync::Mutex;

use domain::auth::{BearerToken, Credentials};
use domain::job::{MediaKind, MediaStatus};
use domain::media::MediaId;
use ports::media::MockMediaStore;
use ports::{
    Annotation, AnnotationError, AnnotationSink, CatalogError, DecodeError, DetectError,
    DetectRequest, DetectionService, EventPublisher, MediaCatalog, MediaJobRequest, MediaRecord,
    ModelArtifact, StreamEvent, SubscribeRequest,
};

use super::{Admission, Application, Collaborators, Limits};
use crate::detect::FrameDetector;
use crate::engine::tests::{two_classes, working_engine};
use crate::engine::{EngineManager, EngineOptions};

pub(super) fn application(codec: MockFrameCodec, admission: Admission) -> (Application, World) {
    application_on(codec, admission, working_engine(2))
}

fn application_on(
    codec: MockFrameCodec,
    admission: Admission,
    engine: Arc<dyn ports::InferenceEngine>,
) -> (Application, World) {
    let mut source = MockModelSource::new();
    source.expect_describe().return_const("s".to_string());
    source.expect_load().returning(|name| {
        Ok(ModelArtifact {
            name: name.into(),
            path: "/m".into(),
        })
    });
    let mut factory = MockEngineFactory::new();
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
    let detector = FrameDetector::new(
        Arc::new(codec),
        Arc::new(preprocessor),
        two_classes(),
        0.7,
        crate::batcher::BatchingConfig::default(),
    );
    let mut store = MockMediaStore::new();
    store
        .expect_store()
        .returning(|id, _, ext, _| Ok(format!("/media/{id}.{ext}").into()));
    store
        .expect_read()
        .returning(|_, _| Ok(Bytes::from_static(b"\xFF\xD8\xFFjpeg")));
    // Our disk is full: a staged upload takes no byte.
    store
        .expect_stage()
        .returning(|_| Ok(Box::new(super::upload_tests::FullDisk)));
    let mut video = ports::video::MockVideoDecoder::new();
    video
        .expect_open()
        .returning(|_, _| Err(ports::VideoError::Unreadable("not here".into())));
    let world = World::default();
    let app = Application::new(
        Collaborators {
            engines,
            detector: Arc::new(detector),
            events: Arc::new(world.clone()),
            sink: Arc::new(world.clone()),
            catalog: Arc::new(world.clone()),
            store: Arc::new(store),
            video: Arc::new(video),
            memory: ports::MemoryBudget::new(1 << 30, 32 << 20),
            jobs: Arc::new(adapters::jobs::InMemoryJobRegistry::default()),
            cluster: None,
        },
        Limits {
            admission,
            max_media_bytes: 1 << 20,
        },
    );
    (app, world)
}

/// Records what the application tells the outside world, in order.
#[derive(Clone, Default)]
pub(super) struct World {
    log: Arc<Mutex<Vec<String>>>,
}

impl World {
    fn push(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    async fn wait_for(&self, line: &str) {
        for _ in 0..200 {
            if self.lines().iter().any(|l| l == line) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never saw {line:?} in {:?}", self.lines());
    }
}

impl EventPublisher for World {
    fn publish(&self, event: StreamEvent) {
        if let StreamEvent::Detection(e) = event {
            self.push(format!(
                "event {} {:?} {}{}",
                e.media_id,
                e.media_status,
                e.annotations.len(),
                e.error.map(|r| format!(" {r}")).unwrap_or_default()
            ));
        }
    }
    fn subscribe(&self, _: SubscribeRequest) -> ports::EventSubscription {
        unreachable!("not used here")
    }
    fn close(&self) {
        self.push("events closed".into());
    }
    fn subscribers(&self) -> usize {
        0
    }
}

#[async_trait::async_trait]
impl AnnotationSink for World {
    async fn deliver(&self, a: &Annotation, auth: Option<String>) -> Result<(), AnnotationError> {
        self.push(format!("annotation {} {auth:?}", a.media_id));
        Ok(())
    }
    async fn close(&self, _: Duration) {
        self.push("sink closed".into());
    }
}

#[async_trait::async_trait]
impl MediaCatalog for World {
    async fn refresh(&self, c: &Credentials) -> Result<BearerToken, CatalogError> {
        self.push("refresh".into());
        Ok(c.token.clone())
    }
    async fn create_media(&self, r: &MediaRecord, t: &BearerToken) -> Result<(), CatalogError> {
        self.push(format!(
            "create {} {} {}",
            r.id,
            r.path.display(),
            t.header()
        ));
        Ok(())
    }
    async fn set_status(
        &self,
        id: &MediaId,
        s: MediaStatus,
        _: &BearerToken,
    ) -> Result<(), CatalogError> {
        self.push(format!("status {id} {}", s.name()));
        Ok(())
    }
    async fn media_path(&self, id: &MediaId, _: &BearerToken) -> Result<PathBuf, CatalogError> {
        if id.as_str() == "unknown" {
            return Err(CatalogError::NotFound(id.to_string()));
        }
        Ok(format!("/media/{id}.jpg").into())
    }
    async fn user_settings(&self, _: &str, _: &BearerToken) -> Result<SettingsPatch, CatalogError> {
        Ok(SettingsPatch::default())
    }
}

fn credentials() -> Credentials {
    Credentials {
        token: BearerToken::parse("Bearer test-jwt-123").unwrap(),
        refresh_token: None,
    }
}

fn request(content: &'static [u8]) -> DetectRequest {
    DetectRequest {
        content: ports::UploadContent::Memory(Bytes::from_static(content)),
        file_name: Some("x.jpg".into()),
        settings: SettingsPatch::default(),
        credentials: None,
    }
}

pub(super) const ONE_BY_ONE: Admission = Admission {
    max_running: 1,
    max_videos: 1,
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
    let (app, _) = application(decoding_codec(), ONE_BY_ONE);
    assert_eq!(app.health().availability, Availability::None);
    assert_eq!(app.health().engine_type, None);
    let detections = app.detect(request(b"jpeg")).await.unwrap();
    assert!(detections.is_empty());
    assert_eq!(app.health().availability, Availability::Enabled);
    assert_eq!(app.health().engine_type, Some(ports::EngineKind::Onnx));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_undecodable_files_are_the_clients_mistake() {
    let mut codec = MockFrameCodec::new();
    codec
        .expect_decode()
        .returning(|_| Err(DecodeError::UnknownFormat));
    let (app, _) = application(codec, ONE_BY_ONE);
    let empty = app.detect(request(b"")).await.unwrap_err();
    assert_eq!(empty, DetectError::BadInput("the file is empty".into()));
    let garbage = app.detect(request(b"\x00\x01garbage")).await.unwrap_err();
    assert!(
        matches!(&garbage, DetectError::BadInput(m) if m.contains("unsupported or unrecognised image format")),
        "{garbage:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_video_never_holds_the_slot_a_photo_needs() {
    let app = application(decoding_codec(), ONE_BY_ONE).0;
    // The only video slot is taken (a long video is running).
    let video = app.admit(MediaKind::Video).await.unwrap();
    let photo = tokio::time::timeout(Duration::from_secs(10), app.detect(request(b"jpeg")))
        .await
        .expect("the photo runs at once, beside the video");
    assert!(photo.is_ok(), "{photo:?}");
    // A second video waits for the first.
    let second = tokio::time::timeout(Duration::from_millis(100), app.admit(MediaKind::Video));
    assert!(second.await.is_err(), "one video at a time here");
    drop(video);
    let _next = app.admit(MediaKind::Video).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_busy() {
    let app = Arc::new(application(decoding_codec(), ONE_BY_ONE).0);
    // Hold the only running slot and the only queue place.
    let running = Arc::clone(&app.shared.running).try_acquire_owned().unwrap();
    let queued = {
        let app = Arc::clone(&app);
        tokio::spawn(async move { app.detect(request(b"jpeg")).await })
    };
    // Until the first request holds the queue place, however slow the machine.
    for _ in 0..500 {
        if app.shared.waiting.load(std::sync::atomic::Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = app.detect(request(b"jpeg")).await.unwrap_err();
    assert!(matches!(refused, DetectError::Busy { .. }), "{refused:?}");
    drop(running);
    assert!(
        queued.await.unwrap().is_ok(),
        "the queued one runs once a slot frees"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_with_a_token_is_stored_recorded_and_its_status_walks_to_processed() {
    let (app, world) = application(decoding_codec(), ONE_BY_ONE);
    let mut with_token = request(b"\xFF\xD8\xFFjpeg");
    with_token.credentials = Some(credentials());
    app.detect(with_token).await.unwrap();
    let id = MediaId::of_content(b"\xFF\xD8\xFFjpeg");
    world.wait_for(&format!("status {id} AIProcessed")).await;
    let lines = world.lines();
    let trail: Vec<&String> = lines.iter().filter(|l| !l.starts_with("event")).collect();
    assert_eq!(
        trail,
        [
            &format!("create {id} /media/{id}.jpg Bearer test-jwt-123"),
            &format!("status {id} AIProcessing"),
            &format!("status {id} AIProcessed"),
        ]
    );
    assert!(
        lines.contains(&format!("event {id} AiProcessed 0")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_nothing_reaches_the_catalogue_but_subscribers_hear() {
    let (app, world) = application(decoding_codec(), ONE_BY_ONE);
    app.detect(request(b"jpeg")).await.unwrap();
    let id = MediaId::of_content(b"jpeg");
    assert_eq!(world.lines(), [format!("event {id} AiProcessed 0")]);
}

fn job(id: &str) -> MediaJobRequest {
    MediaJobRequest {
        media_id: MediaId::parse(id).unwrap(),
        credentials: credentials(),
        settings: SettingsPatch::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_job_runs_in_the_background_and_a_second_one_conflicts() {
    let (app, world) = application(decoding_codec(), ONE_BY_ONE);
    // Hold the slot so the job stays unfinished while we ask again.
    let slot = Arc::clone(&app.shared.running).try_acquire_owned().unwrap();
    app.start_media_job(job("m1")).await.unwrap();
    let again = app.start_media_job(job("m1")).await.unwrap_err();
    assert!(matches!(again, DetectError::Conflict(_)), "{again:?}");
    assert_eq!(
        app.job(&MediaId::parse("m1").unwrap())
            .await
            .unwrap()
            .status,
        domain::job::JobStatus::Queued
    );
    drop(slot);
    world.wait_for("status m1 AIProcessed").await;
    world.wait_for("event m1 AiProcessed 0").await;
    assert_eq!(
        app.job(&MediaId::parse("m1").unwrap())
            .await
            .unwrap()
            .status,
        domain::job::JobStatus::Processed
    );
    app.start_media_job(job("m1"))
        .await
        .expect("a finished media can run again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_media_fails_with_an_error_event_and_status() {
    let (app, world) = application(decoding_codec(), ONE_BY_ONE);
    app.start_media_job(job("unknown")).await.unwrap();
    world.wait_for("status unknown Error").await;
    assert!(
        world
            .lines()
            .iter()
            .any(|l| l.starts_with("event unknown Error 0 no such media")),
        "{:?}",
        world.lines()
    );
    let view = app.job(&MediaId::parse("unknown").unwrap()).await.unwrap();
    assert_eq!(view.status, domain::job::JobStatus::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_shutdown_end_jobs_with_an_error_and_refuse_new_work() {
    let (app, world) = application(decoding_codec(), ONE_BY_ONE);
    let slot = Arc::clone(&app.shared.running).try_acquire_owned().unwrap();
    app.start_media_job(job("c1")).await.unwrap();
    let view = app
        .cancel_job(&MediaId::parse("c1").unwrap())
        .await
        .unwrap();
    assert_eq!(view.status, domain::job::JobStatus::Cancelled);
    world.wait_for("event c1 Error 0 cancelled").await;
    world.wait_for("status c1 Error").await;
    app.start_media_job(job("s1")).await.unwrap();
    app.shutdown(Duration::from_secs(5)).await;
    drop(slot);
    let lines = world.lines();
    assert!(
        lines.contains(&"event s1 Error 0 the service is shutting down".to_string()),
        "{lines:?}"
    );
    assert!(lines.contains(&"status s1 Error".to_string()), "{lines:?}");
    assert_eq!(&lines[lines.len() - 2..], ["sink closed", "events closed"]);
    assert_eq!(
        app.detect(request(b"jpeg")).await.unwrap_err(),
        DetectError::ShuttingDown
    );
    assert!(matches!(
        app.start_media_job(job("s2")).await,
        Err(DetectError::ShuttingDown)
    ));
    assert!(matches!(
        app.cancel_job(&MediaId::parse("none").unwrap()).await,
        Err(DetectError::NotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_concurrent_detections_run_at_most_two_at_once_and_all_succeed() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    // Hand-written: a mockall mock runs its closures under a lock, one call at a time.
    struct SlowEngine {
        spec: ports::ModelSpec,
        now: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }
    impl ports::InferenceEngine for SlowEngine {
        fn spec(&self) -> &ports::ModelSpec {
            &self.spec
        }
        fn engine_type(&self) -> ports::EngineKind {
            ports::EngineKind::Onnx
        }
        fn infer(&self, _: &ports::InputTensor) -> Result<ports::RawOutput, ports::EngineError> {
            let running = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(running, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            self.now.fetch_sub(1, Ordering::SeqCst);
            Ok(ports::RawOutput {
                dims: vec![1, 6, 0],
                data: vec![],
            })
        }
    }
    let engine = SlowEngine {
        spec: crate::engine::tests::spec(2),
        now: Arc::clone(&now),
        most: Arc::clone(&most),
    };
    let admission = Admission {
        max_running: 2,
        max_videos: 2,
        queue_capacity: 8,
    };
    let (app, _) = application_on(decoding_codec(), admission, Arc::new(engine));
    // Start the engine first so its warm-up run does not count.
    app.engines().ensure().await.unwrap();
    most.store(0, Ordering::SeqCst);
    let app = Arc::new(app);
    let requests: Vec<_> = (0..4)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.detect(request(b"jpeg")).await })
        })
        .collect();
    for outcome in futures_join(requests.into_iter()).await {
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    assert_eq!(most.load(Ordering::SeqCst), 2, "two at once, never more");
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}
