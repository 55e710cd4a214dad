//! Every handler's answers to what can go wrong, through the real router on a real
//! socket, with the generated `MockDetectionService` behind it: no engine, no ONNX
//! Runtime, milliseconds on any laptop.

use std::sync::{Arc, Mutex};

use adapters::http::{HttpConfig, router};
use async_trait::async_trait;
use domain::availability::Availability;
use ports::driving::MockDetectionService;
use ports::{DetectError, Health, MemoryBudget, StagedUpload, UploadContent, UploadSink};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

async fn serve(service: MockDetectionService, config: HttpConfig) -> String {
    let app = router(Arc::new(service), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

async fn start(service: MockDetectionService) -> String {
    serve(service, HttpConfig::default()).await
}

/// Status, `Retry-After` and the JSON body.
async fn answer(response: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, response.json().await.unwrap_or(Value::Null))
}

fn photo_form() -> Form {
    Form::new().part(
        "file",
        Part::bytes(vec![0xFF, 0xD8, 0xFF, 0xE0]).file_name("p.jpg"),
    )
}

async fn post_detect(base: &str, form: Form) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/detect"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    answer(response).await
}

/// What the mock's `detect` answers, for one request.
fn detect_answers(result: Result<Vec<ports::DetectionDto>, DetectError>) -> MockDetectionService {
    let mut service = MockDetectionService::new();
    service.expect_detect().return_once(move |_| result);
    service
}

#[tokio::test]
async fn detect_maps_every_failure_to_its_status() {
    let cases: Vec<(DetectError, u16, bool)> = vec![
        (
            DetectError::BadInput("the file is empty".into()),
            400,
            false,
        ),
        (DetectError::Unprocessable("no frames".into()), 422, false),
        (DetectError::Unauthorized("expired".into()), 401, false),
        (DetectError::NotFound("no such media".into()), 404, false),
        (DetectError::Conflict("running".into()), 409, false),
        (DetectError::Upstream("loader down".into()), 502, false),
        (
            DetectError::Busy {
                retry_after_secs: 3,
            },
            503,
            true,
        ),
        (DetectError::ShuttingDown, 503, false),
        (DetectError::Internal("disk".into()), 500, false),
    ];
    for (error, status, retry) in cases {
        let text = match error {
            // The cause of a 500 goes to the log, not to the client.
            DetectError::Internal(_) => adapters::http::INTERNAL_DETAIL.to_string(),
            _ => error.to_string(),
        };
        let base = start(detect_answers(Err(error))).await;
        let (got, retry_after, body) = post_detect(&base, photo_form()).await;
        assert_eq!(got, status, "{text}: {body}");
        assert_eq!(body["detail"], text.as_str());
        assert_eq!(retry_after.is_some(), retry, "{text}");
    }
}

#[tokio::test]
async fn the_client_s_mistakes_are_400_and_401_without_reaching_the_service() {
    // No expectations: any call to the service would fail the test.
    let base = start(MockDetectionService::new()).await;
    let (status, _, body) = post_detect(&base, Form::new().text("config", "{}")).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (400, Some("the form has no `file` part"))
    );
    let (status, _, body) = post_detect(&base, photo_form().text("config", "{not json")).await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().starts_with("config: "),
        "{body}"
    );
    // A config part is settings, not a way around the memory budget.
    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(100 * 1024));
    let (status, _, body) = post_detect(&base, photo_form().text("config", huge)).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (400, Some("config: larger than 64 KiB"))
    );
    let (status, _, body) = post_detect(
        &base,
        photo_form().text("config", r#"{"tile_merge": "maybe"}"#),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["detail"],
        "config: tile_merge must be true or false, got \"maybe\""
    );
    let response = reqwest::Client::new()
        .post(format!("{base}/detect"))
        .header("Authorization", "Basic abc")
        .multipart(photo_form())
        .send()
        .await
        .unwrap();
    assert_eq!(answer(response).await.0, 401);
    let response = reqwest::Client::new()
        .post(format!("{base}/detect"))
        .header("Content-Type", "multipart/form-data; boundary=x")
        .body("garbage")
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let config = HttpConfig {
        max_body_bytes: 1024,
        ..HttpConfig::default()
    };
    let base = serve(MockDetectionService::new(), config).await;
    let big = Form::new().part("file", Part::bytes(vec![7u8; 4096]).file_name("big.bin"));
    let (status, _, _) = post_detect(&base, big).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_full_memory_budget_sheds_uploads_with_503_and_retry_after() {
    let budget = MemoryBudget::new(64 * 1024, 64 * 1024);
    let config = HttpConfig {
        budget: Arc::clone(&budget),
        ..HttpConfig::default()
    };
    // Taken by someone else: nothing fits, and the service is never asked.
    let held = budget.reserve(60 * 1024).unwrap();
    let base = serve(MockDetectionService::new(), config).await;
    let body = Form::new().part("file", Part::bytes(vec![7u8; 32 * 1024]).file_name("a.bin"));
    let (status, retry, body) = post_detect(&base, body).await;
    assert_eq!((status, retry.as_deref()), (503, Some("2")), "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("memory budget"),
        "{body}"
    );
    let response = reqwest::Client::new()
        .post(format!("{base}/detect/video"))
        .header("X-Filename", "v.mp4")
        .body(vec![0u8; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(answer(response).await.0, 503);
    drop(held);
    assert_eq!(budget.reserved(), 0, "a shed request holds nothing");
}

/// Records what the handler writes to the staged upload.
struct RecordingSink(Arc<Mutex<Vec<u8>>>);

#[async_trait]
impl UploadSink for RecordingSink {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), DetectError> {
        self.0.lock().unwrap().extend_from_slice(chunk);
        Ok(())
    }
    async fn finish(self: Box<Self>) -> Result<StagedUpload, DetectError> {
        let written = self.0.lock().unwrap();
        Ok(StagedUpload {
            path: "/staged/upload".into(),
            size: written.len() as u64,
            head: written
                .iter()
                .take(ports::STAGED_HEAD_BYTES)
                .copied()
                .collect(),
            cleanup: Box::new(()),
        })
    }
}

#[tokio::test]
async fn videos_and_large_bodies_go_to_a_staged_upload_photos_stay_in_memory() {
    // A video by its first bytes (`ftyp` at 4), small as it is; a body over the
    // in-memory limit; a photo within it.
    let video = [&[0, 0, 0, 24][..], b"ftypisom", &[1u8; 100]].concat();
    let large = vec![9u8; 300 * 1024];
    let photo = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
    for (bytes, staged) in [(video, true), (large, true), (photo, false)] {
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut service = MockDetectionService::new();
        let sink = Arc::clone(&written);
        service
            .expect_stage_upload()
            .returning(move || Ok(Box::new(RecordingSink(Arc::clone(&sink)))));
        let expected = bytes.clone();
        service.expect_detect().return_once(move |request| {
            match (&request.content, staged) {
                (UploadContent::Staged(upload), true) => {
                    assert_eq!(upload.size, expected.len() as u64);
                }
                (UploadContent::Memory(content), false) => assert_eq!(content[..], expected[..]),
                (other, _) => panic!("staged {staged}: got {other:?}"),
            }
            Ok(vec![])
        });
        let config = HttpConfig {
            budget: MemoryBudget::new(1 << 30, 256 * 1024),
            ..HttpConfig::default()
        };
        let base = serve(service, config).await;
        let form = Form::new().part("file", Part::bytes(bytes.clone()).file_name("upload"));
        let (status, _, body) = post_detect(&base, form).await;
        assert_eq!(status, 200, "{body}");
        if staged {
            assert_eq!(
                *written.lock().unwrap(),
                bytes,
                "every byte staged, in order"
            );
        }
    }
}

#[tokio::test]
async fn jobs_answer_404_and_health_never_waits() {
    let mut service = MockDetectionService::new();
    service.expect_job().returning(|_| None);
    service.expect_cancel_job().returning(|id| {
        Err(DetectError::NotFound(format!(
            "no detection job for media {id}"
        )))
    });
    service.expect_health().returning(|| Health {
        availability: Availability::Downloading,
        engine_type: None,
        precision: None,
    });
    service.expect_cluster().returning(|| None);
    let base = start(service).await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{base}/detect/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer(response).await.0, 404);
    let response = client
        .delete(format!("{base}/detect/abc"))
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (404, Some("no detection job for media abc"))
    );
    let response = client.get(format!("{base}/health")).send().await.unwrap();
    let (status, _, body) = answer(response).await;
    assert_eq!(
        (status, body["aiAvailability"].as_str()),
        (200, Some("Downloading"))
    );
    // One process: the original's body, nothing added.
    assert!(
        body.get("replica").is_none() && body.get("broker").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn a_replica_whose_broker_is_unreachable_is_healthy_but_not_ready() {
    let mut service = MockDetectionService::new();
    service.expect_health().returning(|| Health {
        availability: Availability::Enabled,
        engine_type: Some(ports::EngineKind::Onnx),
        precision: None,
    });
    let reachable = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::clone(&reachable);
    service.expect_cluster().returning(move || {
        Some(ports::ClusterStatus {
            replica: "r1".into(),
            broker_reachable: seen.load(std::sync::atomic::Ordering::SeqCst),
        })
    });
    let base = start(service).await;
    let client = reqwest::Client::new();
    let (status, _, body) =
        answer(client.get(format!("{base}/health")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["replica"].as_str(), body["broker"].as_str()),
        (Some("r1"), Some("unreachable"))
    );
    let ready = client.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    reachable.store(true, std::sync::atomic::Ordering::SeqCst);
    let ready = client.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_stalled_request_gets_503_with_a_detail() {
    let mut service = MockDetectionService::new();
    service.expect_job().returning(|_| None);
    let base = serve(
        service,
        HttpConfig {
            request_timeout: std::time::Duration::from_secs(1),
            ..HttpConfig::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let chosen = client
        .get(format!("{base}/detect/abc"))
        .header("x-request-id", "client-chosen-7")
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.headers()["x-request-id"], "client-chosen-7");
    let made = client
        .get(format!("{base}/detect/abc"))
        .send()
        .await
        .unwrap();
    let made_id = made.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(!made_id.is_empty());
    let again = client
        .get(format!("{base}/detect/abc"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        again.headers()["x-request-id"],
        made_id.as_str(),
        "ids are unique"
    );

    // A body that stops arriving: the time limit answers, in the API's error shape.
    use futures_util::StreamExt;
    let stream = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"--x\r\n"))
    })
    .chain(futures_util::stream::pending());
    let response = client
        .post(format!("{base}/detect"))
        .header("content-type", "multipart/form-data; boundary=x")
        .header("content-length", "1000")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert!(!response.headers()["x-request-id"].is_empty());
    let (status, _, body) = answer(response).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (503, Some("the request took longer than 1 s"))
    );
}
