use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use ports::{Annotation, AnnotationError, AnnotationSink};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{Outbox, OutboxConfig, OutboxStats, REJECTED_DIR};
use crate::annotations::http::{AnnotationsClient, AnnotationsClientConfig};

const TOKEN: &str = "Bearer test-jwt-123";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Accept,
    Down,
    Refuse,
    Hang,
}

/// A sink whose answer the test sets; records what it accepted, in order.
struct TestSink {
    mode: Mutex<Mode>,
    /// Answers used first, one per call, before `mode` applies.
    script: Mutex<VecDeque<Mode>>,
    calls: AtomicUsize,
    accepted: Mutex<Vec<(Annotation, Option<String>)>>,
}

impl TestSink {
    fn new(mode: Mode) -> Arc<Self> {
        Arc::new(Self {
            mode: Mutex::new(mode),
            script: Mutex::new(VecDeque::new()),
            calls: AtomicUsize::new(0),
            accepted: Mutex::new(Vec::new()),
        })
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn accepted_ids(&self) -> Vec<String> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|(a, _)| a.media_id.clone())
            .collect()
    }
}

#[async_trait]
impl AnnotationSink for TestSink {
    async fn deliver(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
    ) -> Result<(), AnnotationError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let scripted = self.script.lock().unwrap().pop_front();
        let mode = scripted.unwrap_or_else(|| *self.mode.lock().unwrap());
        match mode {
            Mode::Accept => {
                self.accepted
                    .lock()
                    .unwrap()
                    .push((annotation.clone(), authorization));
                Ok(())
            }
            Mode::Down => Err(AnnotationError::Transient("503".into())),
            Mode::Refuse => Err(AnnotationError::Rejected("400".into())),
            Mode::Hang => std::future::pending().await,
        }
    }
}

fn annotation(media_id: &str) -> Annotation {
    Annotation {
        media_id: media_id.into(),
        source: 0,
        video_time: "00:00:00".into(),
        detections: vec![],
        image: "aGVsbG8=".into(),
    }
}

fn spool_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("detections-outbox-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn config(dir: &Path) -> OutboxConfig {
    OutboxConfig {
        spool_dir: dir.to_path_buf(),
        queue_capacity: 1000,
        max_attempts: 3,
        first_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        spool_retry_interval: Duration::from_secs(3600),
    }
}

/// The spool's annotation files (not `rejected/`), sorted.
fn spool_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

async fn wait_for(what: &str, outbox: &Outbox, done: impl Fn(OutboxStats) -> bool) {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(outbox.stats()) {
        assert!(
            tokio::time::Instant::now() < give_up,
            "timed out waiting for {what}: {:?}",
            outbox.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_delivered_exactly_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/annotations"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/annotations"))
        .and(header("authorization", TOKEN))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let client = AnnotationsClient::new(AnnotationsClientConfig {
        url: server.uri(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let dir = spool_dir("transient");
    let outbox = Outbox::start(Arc::new(client), config(&dir)).unwrap();
    outbox
        .deliver(&annotation("m1"), Some(TOKEN.into()))
        .await
        .unwrap();
    wait_for("delivery", &outbox, |s| s.sent == 1).await;
    outbox.close(Duration::from_secs(1)).await;
    assert_eq!(
        outbox.stats(),
        OutboxStats {
            sent: 1,
            failed: 0,
            spooled: 0,
            pending: 0
        }
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    assert!(spool_files(&dir).is_empty());
}

#[tokio::test]
async fn a_rejection_is_counted_failed_and_neither_retried_nor_spooled() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/annotations"))
        .respond_with(ResponseTemplate::new(400).set_body_string("unknown media"))
        .expect(1)
        .mount(&server)
        .await;
    let client = AnnotationsClient::new(AnnotationsClientConfig {
        url: server.uri(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let dir = spool_dir("rejected");
    let outbox = Outbox::start(Arc::new(client), config(&dir)).unwrap();
    outbox.deliver(&annotation("m1"), None).await.unwrap();
    wait_for("the rejection", &outbox, |s| s.failed == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    outbox.close(Duration::from_secs(1)).await;
    let stats = outbox.stats();
    assert_eq!((stats.sent, stats.failed, stats.spooled), (0, 1, 0));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert!(spool_files(&dir).is_empty());
}

#[tokio::test]
async fn a_sink_that_stays_down_gets_the_annotation_spooled_after_max_attempts() {
    let sink = TestSink::new(Mode::Down);
    let dir = spool_dir("down");
    let outbox = Outbox::start(sink.clone(), config(&dir)).unwrap();
    outbox
        .deliver(&annotation("m1"), Some(TOKEN.into()))
        .await
        .unwrap();
    wait_for("the spool", &outbox, |s| s.spooled == 1 && s.pending == 0).await;
    assert_eq!(sink.calls(), 3);
    let files = spool_files(&dir);
    assert_eq!(files.len(), 1);
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(stored["annotation"]["mediaId"], "m1");
    assert_eq!(stored["annotation"]["videoTime"], "00:00:00");
    assert_eq!(stored["authorization"], TOKEN);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the spool holds tokens: owner only");
    }
    outbox.close(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_new_outbox_sends_the_spool_oldest_first_and_empties_it() {
    let dir = spool_dir("restart");
    let down = TestSink::new(Mode::Down);
    let first = Outbox::start(down, config(&dir)).unwrap();
    for id in ["m1", "m2", "m3"] {
        first
            .deliver(&annotation(id), Some(format!("Bearer {id}")))
            .await
            .unwrap();
    }
    wait_for("the spool", &first, |s| s.spooled == 3).await;
    first.close(Duration::from_millis(100)).await;
    assert_eq!(spool_files(&dir).len(), 3);

    let up = TestSink::new(Mode::Accept);
    let second = Outbox::start(up.clone(), config(&dir)).unwrap();
    wait_for("the re-sending", &second, |s| s.sent == 3).await;
    assert_eq!(up.accepted_ids(), ["m1", "m2", "m3"]);
    let headers: Vec<_> = up
        .accepted
        .lock()
        .unwrap()
        .iter()
        .map(|(_, h)| h.clone().unwrap())
        .collect();
    assert_eq!(headers, ["Bearer m1", "Bearer m2", "Bearer m3"]);
    assert!(spool_files(&dir).is_empty());
    second.close(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_spooled_annotation_the_sink_refuses_is_set_aside() {
    let dir = spool_dir("set-aside");
    let first = Outbox::start(TestSink::new(Mode::Down), config(&dir)).unwrap();
    first.deliver(&annotation("m1"), None).await.unwrap();
    wait_for("the spool", &first, |s| s.spooled == 1).await;
    first.close(Duration::from_millis(100)).await;

    let refusing = TestSink::new(Mode::Refuse);
    let second = Outbox::start(refusing, config(&dir)).unwrap();
    wait_for("the refusal", &second, |s| s.failed == 1).await;
    assert!(spool_files(&dir).is_empty());
    assert_eq!(spool_files(&dir.join(REJECTED_DIR)).len(), 1);
    second.close(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn the_spool_is_retried_while_running() {
    let dir = spool_dir("periodic");
    let sink = TestSink::new(Mode::Down);
    let outbox = Outbox::start(
        sink.clone(),
        OutboxConfig {
            spool_retry_interval: Duration::from_millis(50),
            ..config(&dir)
        },
    )
    .unwrap();
    outbox.deliver(&annotation("m1"), None).await.unwrap();
    wait_for("the spool", &outbox, |s| s.spooled == 1).await;
    sink.set(Mode::Accept);
    wait_for("the re-sending", &outbox, |s| s.sent == 1).await;
    assert!(spool_files(&dir).is_empty());
    assert_eq!(sink.accepted_ids(), ["m1"]);
    outbox.close(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn close_with_a_hanging_sink_spools_everything_within_the_grace() {
    let dir = spool_dir("hanging-close");
    let outbox = Outbox::start(TestSink::new(Mode::Hang), config(&dir)).unwrap();
    for i in 0..5 {
        outbox
            .deliver(&annotation(&format!("m{i}")), Some(TOKEN.into()))
            .await
            .unwrap();
    }
    let started = std::time::Instant::now();
    outbox.close(Duration::from_millis(200)).await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let stats = outbox.stats();
    assert_eq!((stats.spooled, stats.pending, stats.sent), (5, 0, 0));
    assert_eq!(spool_files(&dir).len(), 5);

    // Closed: a late annotation goes straight to the spool.
    outbox.deliver(&annotation("late"), None).await.unwrap();
    assert_eq!(spool_files(&dir).len(), 6);
    // A second close has nothing to do.
    outbox.close(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn deliver_never_waits_on_the_sink_and_overflow_goes_to_the_spool() {
    let dir = spool_dir("never-waits");
    let outbox = Outbox::start(TestSink::new(Mode::Hang), config(&dir)).unwrap();
    let started = std::time::Instant::now();
    for i in 0..1000 {
        outbox
            .deliver(&annotation(&format!("m{i}")), None)
            .await
            .unwrap();
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "1000 delivers took {took:?}");
    // Past the queue's capacity the spool takes them, still without waiting.
    for i in 0..50 {
        outbox
            .deliver(&annotation(&format!("over{i}")), None)
            .await
            .unwrap();
    }
    let stats = outbox.stats();
    assert!(stats.spooled >= 49, "{stats:?}");
    assert_eq!(stats.pending + stats.spooled, 1050, "{stats:?}");
    outbox.close(Duration::from_millis(50)).await;
    let stats = outbox.stats();
    assert_eq!((stats.spooled, stats.pending), (1050, 0), "{stats:?}");
    assert_eq!(spool_files(&dir).len(), 1050);
}

#[tokio::test]
async fn annotations_are_delivered_in_order() {
    let dir = spool_dir("order");
    let sink = TestSink::new(Mode::Accept);
    // Some transient failures on the way must not reorder anything.
    sink.script
        .lock()
        .unwrap()
        .extend([Mode::Down, Mode::Accept, Mode::Down, Mode::Down]);
    let outbox = Outbox::start(sink.clone(), config(&dir)).unwrap();
    let ids: Vec<String> = (0..50).map(|i| format!("m{i:02}")).collect();
    for id in &ids {
        outbox.deliver(&annotation(id), None).await.unwrap();
    }
    outbox.close(Duration::from_secs(5)).await;
    assert_eq!(outbox.stats().sent, 50);
    assert_eq!(sink.accepted_ids(), ids);
    assert!(spool_files(&dir).is_empty());
}

#[tokio::test]
async fn an_unwritable_spool_fails_at_start() {
    let file = spool_dir("not-a-dir");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"").unwrap();
    assert!(Outbox::start(TestSink::new(Mode::Accept), config(&file)).is_err());
    std::fs::remove_file(&file).unwrap();
}
