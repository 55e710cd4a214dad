//! `GET /detect/stream` as a client sees it: the raw SSE bytes over a real socket, with
//! a real [`EventBus`] behind a small test service.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use adapters::events::{EventBus, EventBusConfig};
use adapters::http::{HttpConfig, router};
use async_trait::async_trait;
use domain::availability::Availability;
use domain::classes::ClassTable;
use domain::media::MediaId;
use ports::{
    DetectError, DetectRequest, DetectionDto, DetectionEvent, DetectionService, EventPublisher,
    EventSubscription, Health, JobView, MediaEventStatus, MediaJobRequest, StreamEvent,
    SubscribeRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct TestService {
    bus: Arc<EventBus>,
}

#[async_trait]
impl DetectionService for TestService {
    fn health(&self) -> Health {
        Health {
            availability: Availability::Enabled,
            engine_type: Some(ports::EngineKind::Onnx),
            precision: None,
        }
    }
    fn classes(&self) -> Arc<ClassTable> {
        Arc::new(ClassTable::from_json("[]").expect("an empty table"))
    }
    async fn detect(&self, _request: DetectRequest) -> Result<Vec<DetectionDto>, DetectError> {
        Err(DetectError::BadInput("not in this test".into()))
    }
    async fn stage_upload(&self) -> Result<Box<dyn ports::UploadSink>, DetectError> {
        Err(DetectError::BadInput("not in this test".into()))
    }
    async fn start_media_job(&self, _request: MediaJobRequest) -> Result<MediaId, DetectError> {
        Err(DetectError::BadInput("not in this test".into()))
    }
    async fn start_video_upload(
        &self,
        _upload: ports::VideoUpload,
    ) -> Result<ports::UploadStarted, DetectError> {
        Err(DetectError::BadInput("not in this test".into()))
    }
    fn cluster(&self) -> Option<ports::ClusterStatus> {
        None
    }
    async fn job(&self, _media_id: &MediaId) -> Option<JobView> {
        None
    }
    async fn cancel_job(&self, media_id: &MediaId) -> Result<JobView, DetectError> {
        Err(DetectError::NotFound(format!(
            "no job for media {media_id}"
        )))
    }
    fn subscribe(&self, request: SubscribeRequest) -> EventSubscription {
        self.bus.subscribe(request)
    }
}

struct Server {
    bus: Arc<EventBus>,
    address: String,
}

async fn start(keep_alive: Duration) -> Server {
    let bus = Arc::new(EventBus::new(EventBusConfig::default()));
    let service = Arc::new(TestService {
        bus: Arc::clone(&bus),
    });
    let app = router(
        service,
        HttpConfig {
            sse_keep_alive: keep_alive,
            ..HttpConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Server { bus, address }
}

fn detection(media: &str, percent: u8) -> StreamEvent {
    StreamEvent::Detection(DetectionEvent {
        annotations: vec![DetectionDto {
            center_x: 0.5,
            center_y: 0.25,
            width: 0.1,
            height: 0.2,
            class_num: 1,
            label: "Fall".into(),
            confidence: 0.75,
        }],
        media_id: MediaId::parse(media).unwrap(),
        media_status: MediaEventStatus::AiProcessing,
        media_percent: percent,
        error: None,
    })
}

/// A client reading the raw body and cutting it into frames at blank lines.
struct Client {
    response: reqwest::Response,
    buffer: String,
}

impl Client {
    async fn connect(server: &Server, query: &str, last_event_id: Option<&str>) -> Client {
        let mut request =
            reqwest::Client::new().get(format!("http://{}/detect/stream{query}", server.address));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Client {
            response,
            buffer: String::new(),
        }
    }

    /// The next frame without its blank line, or `None` once the body ended.
    async fn frame(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame = self.buffer[..end].to_string();
                self.buffer.drain(..end + 2);
                return Some(frame);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("a frame in time")
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The next frame that is not a keep-alive comment.
    async fn event(&mut self) -> String {
        loop {
            let frame = self.frame().await.expect("the stream goes on");
            if !frame.starts_with(':') {
                return frame;
            }
        }
    }

    async fn nothing_for(&mut self, wait: Duration) {
        if let Ok(frame) = tokio::time::timeout(wait, self.event()).await {
            panic!("unexpected frame {frame:?}");
        }
    }
}

fn id_of(frame: &str) -> u64 {
    frame
        .lines()
        .find_map(|line| line.strip_prefix("id: "))
        .unwrap_or_else(|| panic!("no id in {frame:?}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn detection_and_availability_frames_are_as_clients_expect() {
    let server = start(Duration::from_secs(15)).await;
    let mut client = Client::connect(&server, "", None).await;
    server.bus.publish(detection("abc", 40));
    server.bus.publish(StreamEvent::Availability {
        health: Health {
            availability: Availability::Enabled,
            engine_type: Some(ports::EngineKind::Onnx),
            precision: None,
        },
        replica: None,
    });
    server.bus.publish(StreamEvent::Detection(DetectionEvent {
        annotations: Vec::new(),
        media_id: MediaId::parse("abc").unwrap(),
        media_status: MediaEventStatus::Error,
        media_percent: 40,
        error: Some("decoding failed".into()),
    }));
    assert_eq!(
        client.event().await,
        "id: 1\ndata: {\"annotations\":[{\"centerX\":0.5,\"centerY\":0.25,\"width\":0.1,\
         \"height\":0.2,\"classNum\":1,\"label\":\"Fall\",\"confidence\":0.75}],\
         \"mediaId\":\"abc\",\"mediaStatus\":\"AIProcessing\",\"mediaPercent\":40}"
    );
    assert_eq!(
        client.event().await,
        "event: availability\nid: 2\ndata: {\"status\":\"healthy\",\"aiAvailability\":\"Enabled\",\
         \"errorMessage\":null,\"engineType\":\"onnx\"}"
    );
    let failed = client.event().await;
    assert!(!failed.contains("event:"), "{failed}");
    let json: serde_json::Value =
        serde_json::from_str(failed.strip_prefix("id: 3\ndata: ").unwrap()).unwrap();
    assert_eq!(json["mediaStatus"], "Error");
    assert_eq!(json["error"], "decoding failed");
}

#[tokio::test]
async fn reconnecting_with_last_event_id_replays_what_was_missed() {
    let server = start(Duration::from_secs(15)).await;
    let mut first = Client::connect(&server, "", None).await;
    for percent in 1..=3 {
        server.bus.publish(detection("abc", percent));
    }
    assert_eq!(id_of(&first.event().await), 1);
    drop(first);
    server.bus.publish(detection("abc", 4));

    let mut again = Client::connect(&server, "", Some("1")).await;
    server.bus.publish(detection("abc", 5));
    for expected in 2..=5 {
        assert_eq!(id_of(&again.event().await), expected);
    }
    again.nothing_for(Duration::from_millis(100)).await;

    // The query parameter works too, for clients that cannot set headers.
    let mut by_query = Client::connect(&server, "?lastEventId=4", None).await;
    assert_eq!(id_of(&by_query.event().await), 5);
}

#[tokio::test]
async fn a_non_numeric_last_event_id_is_a_400() {
    let server = start(Duration::from_secs(15)).await;
    let response = reqwest::Client::new()
        .get(format!("http://{}/detect/stream", server.address))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("Last-Event-ID"));
}

#[tokio::test]
async fn media_filter_keeps_one_media_and_availability() {
    let server = start(Duration::from_secs(15)).await;
    let mut client = Client::connect(&server, "?mediaId=bbb", None).await;
    server.bus.publish(detection("aaa", 1));
    server.bus.publish(detection("bbb", 1));
    server.bus.publish(StreamEvent::Availability {
        health: Health {
            availability: Availability::Warning(domain::availability::Reason::new("slow")),
            engine_type: Some(ports::EngineKind::Onnx),
            precision: None,
        },
        replica: None,
    });
    server.bus.publish(detection("aaa", 2));
    let frame = client.event().await;
    assert_eq!(id_of(&frame), 2);
    assert!(frame.contains("\"mediaId\":\"bbb\""));
    let frame = client.event().await;
    assert!(frame.starts_with("event: availability\nid: 3\n"), "{frame}");
    assert!(frame.contains("\"errorMessage\":\"slow\""), "{frame}");
    client.nothing_for(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn keep_alive_comments_arrive_when_nothing_happens() {
    let server = start(Duration::from_millis(100)).await;
    let mut client = Client::connect(&server, "", None).await;
    assert_eq!(client.frame().await.unwrap(), ": keep-alive");
}

#[tokio::test]
async fn the_stream_ends_after_close() {
    let server = start(Duration::from_secs(15)).await;
    let mut client = Client::connect(&server, "", None).await;
    server.bus.publish(detection("abc", 1));
    server.bus.close();
    assert_eq!(id_of(&client.event().await), 1);
    assert_eq!(client.frame().await, None);
    assert_eq!(server.bus.subscribers(), 0);
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_told_what_it_lost_and_slows_no_one() {
    const TOTAL: u64 = 10_000;
    let server = start(Duration::from_secs(15)).await;

    // A client that sends its request and then stops reading.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket
        .connect(server.address.parse().unwrap())
        .await
        .unwrap();
    stalled
        .write_all(b"GET /detect/stream HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();

    let mut reader = Client::connect(&server, "", None).await;
    // Both subscriptions exist before anything is published.
    for _ in 0..100 {
        if server.bus.subscribers() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.bus.subscribers(), 2);

    let seen = Arc::new(AtomicU64::new(0));
    let reading = {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut expected = 1;
            while expected <= TOTAL {
                let frame = reader.event().await;
                assert!(!frame.contains("lagged"), "the reading client lagged");
                assert_eq!(id_of(&frame), expected);
                seen.store(expected, Ordering::Release);
                expected += 1;
            }
            reader
        })
    };

    // Large events, so the stalled client's socket buffers fill quickly. The publisher
    // stays within the reading client's queue; it never waits for the stalled one.
    let big_label = "x".repeat(4000);
    for i in 1..=TOTAL {
        while i - seen.load(Ordering::Acquire) > 50 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut event = detection("abc", (i % 100) as u8);
        if let StreamEvent::Detection(detection) = &mut event {
            detection.annotations[0].label.clone_from(&big_label);
        }
        server.bus.publish(event);
    }
    let mut reader = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the reading client got everything")
        .unwrap();
    server.bus.close();
    assert_eq!(reader.frame().await, None, "the body ends after close");

    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stalled.read_to_end(&mut raw))
        .await
        .expect("the stalled client's stream ends after close")
        .unwrap();
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let body = String::from_utf8(dechunk(&raw[head_end + 4..])).unwrap();

    // Every event is either received or counted as missed, in order.
    let mut next = 1;
    let mut total_missed = 0;
    for frame in body.split("\n\n").filter(|f| !f.is_empty()) {
        if let Some(data) = frame.strip_prefix("event: lagged\ndata: ") {
            let missed: serde_json::Value = serde_json::from_str(data).unwrap();
            let missed = missed["missed"].as_u64().unwrap();
            assert!(missed > 0);
            total_missed += missed;
            next += missed;
        } else if !frame.starts_with(':') {
            assert_eq!(id_of(frame), next, "after {total_missed} missed");
            next += 1;
        }
    }
    assert_eq!(next, TOTAL + 1, "every event accounted for");
    assert!(total_missed > 0, "the stalled client lost events");
}
