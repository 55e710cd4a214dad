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
use crate::annotations::journal::{Entry, Journal};

const TOKEN: &str = "Bearer test-jwt-123";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Accept,
    Down,
    Hang,
}

/// A sink whose answer the test sets; records what it accepted, in order.
struct TestSink {
    mode: Mutex<Mode>,
    /// Answers used first, one per call, before `mode` applies.
    script: Mutex<VecDeque<Mode>>,
    calls: AtomicUsize,
    /// The idempotency key of every call, in order.
    keys: Mutex<Vec<String>>,
    accepted: Mutex<Vec<(Annotation, Option<String>)>>,
}

impl TestSink {
    fn new(mode: Mode) -> Arc<Self> {
        Arc::new(Self {
            mode: Mutex::new(mode),
            script: Mutex::new(VecDeque::new()),
            calls: AtomicUsize::new(0),
            keys: Mutex::new(Vec::new()),
            accepted: Mutex::new(Vec::new()),
        })
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }

    fn accepted_ids(&self) -> Vec<String> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .map(|(a, _)| a.media_id.to_string())
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
            Mode::Hang => std::future::pending().await,
        }
    }

    async fn deliver_with_key(
        &self,
        annotation: &Annotation,
        authorization: Option<String>,
        idempotency_key: &str,
    ) -> Result<(), AnnotationError> {
        self.keys.lock().unwrap().push(idempotency_key.to_string());
        self.deliver(annotation, authorization).await
    }
}

fn annotation(media_id: &str) -> Annotation {
    Annotation {
        media_id: domain::media::MediaId::parse(media_id).unwrap(),
        video_time: domain::tracking::VideoTime::parse("00:00:00").unwrap(),
        detections: vec![],
        jpeg: bytes::Bytes::from_static(b"hello"),
        key: None,
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
        max_attempts: 3,
        first_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        spool_retry_interval: Duration::from_secs(3600),
    }
}

/// The journal's entries (not `rejected/`), sorted.
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

fn client(server: &MockServer) -> AnnotationsClient {
    AnnotationsClient::new(AnnotationsClientConfig {
        url: server.uri(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[tokio::test]
async fn a_transient_failure_is_retried_with_one_idempotency_key_and_delivered_once() {
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
    let dir = spool_dir("transient");
    let outbox = Outbox::start(Arc::new(client(&server)), config(&dir)).unwrap();
    outbox
        .deliver(&annotation("m1"), Some(TOKEN.into()))
        .await
        .unwrap();
    wait_for("delivery", &outbox, |s| s.sent == 1).await;
    outbox.close(Duration::from_secs(1)).await;
    assert_eq!(
        outbox.stats(),
        OutboxStats {
            journaled: 1,
            sent: 1,
            failed: 0,
            spooled: 0,
            pending: 0
        }
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    let keys: Vec<_> = requests
        .iter()
        .map(|r| r.headers.get("idempotency-key").unwrap().clone())
        .collect();
    assert!(!keys[0].is_empty());
    assert!(keys.iter().all(|k| *k == keys[0]), "{keys:?}");
    assert!(spool_files(&dir).is_empty(), "a delivered entry is deleted");
}

#[tokio::test]
async fn a_rejection_is_counted_failed_set_aside_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/annotations"))
        .respond_with(ResponseTemplate::new(400).set_body_string("unknown media"))
        .expect(2)
        .mount(&server)
        .await;
    let dir = spool_dir("rejected");
    let outbox = Outbox::start(Arc::new(client(&server)), config(&dir)).unwrap();
    outbox.deliver(&annotation("m1"), None).await.unwrap();
    outbox.deliver(&annotation("m2"), None).await.unwrap();
    wait_for("the rejections", &outbox, |s| s.failed == 2).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    outbox.close(Duration::from_secs(1)).await;
    let stats = outbox.stats();
    assert_eq!((stats.sent, stats.failed, stats.pending), (0, 2, 0));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    assert!(spool_files(&dir).is_empty());
    assert_eq!(spool_files(&dir.join(REJECTED_DIR)).len(), 2);
}

#[tokio::test]
async fn deliver_returns_only_once_the_annotation_is_in_the_journal() {
    let dir = spool_dir("journal-first");
    let outbox = Outbox::start(TestSink::new(Mode::Hang), config(&dir)).unwrap();
    outbox
        .deliver(&annotation("m1"), Some(TOKEN.into()))
        .await
        .unwrap();
    // The sink has not answered; the entry is already whole on disk.
    let files = spool_files(&dir);
    assert_eq!(files.len(), 1);
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(stored["annotation"]["mediaId"], "m1");
    assert_eq!(stored["annotation"]["videoTime"], "00:00:00");
    assert_eq!(stored["authorization"], TOKEN);
    assert_eq!(stored["key"].as_str().unwrap().len(), 36);
    assert_eq!(outbox.stats().pending, 1);
    outbox.close(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn a_crashed_outboxs_journal_is_sent_by_the_next_in_order_with_the_same_keys() {
    let dir = spool_dir("crash");
    let down = TestSink::new(Mode::Down);
    let first = Outbox::start(down.clone(), config(&dir)).unwrap();
    for id in ["m1", "m2", "m3"] {
        first
            .deliver(&annotation(id), Some(format!("Bearer {id}")))
            .await
            .unwrap();
    }
    wait_for("the sink found down", &first, |s| s.spooled >= 1).await;
    // A crash: the first outbox is never closed; its worker waits for a round that
    // never comes (retry interval one hour).
    std::mem::forget(first);
    let tried: Vec<String> = down.keys();
    assert!(!tried.is_empty());

    let up = TestSink::new(Mode::Accept);
    let second = Outbox::start(up.clone(), config(&dir)).unwrap();
    assert_eq!(second.stats().pending, 3);
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
    let keys = up.keys();
    assert_eq!(
        keys.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );
    assert!(
        tried.iter().all(|k| *k == keys[0]),
        "m1's tries before the crash used the key it is delivered with: {tried:?} {keys:?}"
    );
    assert!(spool_files(&dir).is_empty());
    assert_eq!(second.stats().pending, 0);
    second.close(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_torn_entry_is_set_aside_and_the_others_are_delivered_in_order() {
    let dir = spool_dir("torn");
    let journal = Journal::open(&dir).unwrap();
    for id in ["m1", "m2"] {
        journal
            .append(&Entry {
                key: Journal::new_key().unwrap(),
                annotation: annotation(id),
                authorization: None,
            })
            .unwrap();
    }
    let torn = journal
        .append(&Entry {
            key: Journal::new_key().unwrap(),
            annotation: annotation("m3"),
            authorization: None,
        })
        .unwrap();
    let bytes = std::fs::read(&torn).unwrap();
    std::fs::write(&torn, &bytes[..bytes.len() - 10]).unwrap();
    // And a write a crash cut short before its rename.
    std::fs::write(dir.join(".j00000000000000000009-x.json.tmp"), b"{").unwrap();
    drop(journal);

    let sink = TestSink::new(Mode::Accept);
    let outbox = Outbox::start(sink.clone(), config(&dir)).unwrap();
    outbox.deliver(&annotation("m4"), None).await.unwrap();
    wait_for("the rest", &outbox, |s| s.sent == 3 && s.failed == 1).await;
    assert_eq!(sink.accepted_ids(), ["m1", "m2", "m4"]);
    assert!(spool_files(&dir).is_empty());
    assert_eq!(spool_files(&dir.join(REJECTED_DIR)).len(), 1);
    assert_eq!(outbox.stats().pending, 0);
    outbox.close(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_file_of_the_older_spool_format_is_sent_first() {
    let dir = spool_dir("legacy");
    std::fs::create_dir_all(&dir).unwrap();
    let old = serde_json::json!({"annotation": crate::annotations::wire::AnnotationBody::from(&annotation("old")), "authorization": TOKEN});
    std::fs::write(
        dir.join("00001746000000000000-000000000001-77.json"),
        old.to_string(),
    )
    .unwrap();
    let sink = TestSink::new(Mode::Accept);
    let outbox = Outbox::start(sink.clone(), config(&dir)).unwrap();
    outbox.deliver(&annotation("new"), None).await.unwrap();
    wait_for("both", &outbox, |s| s.sent == 2).await;
    assert_eq!(sink.accepted_ids(), ["old", "new"]);
    assert_eq!(sink.keys()[0], "spool-00001746000000000000-000000000001-77");
    outbox.close(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn a_sink_that_stays_down_keeps_the_journal_and_is_tried_again_later() {
    let dir = spool_dir("periodic");
    let sink = TestSink::new(Mode::Down);
    let outbox = Outbox::start(
        sink.clone(),
        OutboxConfig {
            spool_retry_interval: Duration::from_millis(100),
            ..config(&dir)
        },
    )
    .unwrap();
    outbox.deliver(&annotation("m1"), None).await.unwrap();
    outbox.deliver(&annotation("m2"), None).await.unwrap();
    wait_for("the tries to run out", &outbox, |s| s.spooled >= 1).await;
    assert_eq!(spool_files(&dir).len(), 2);
    assert!(sink.calls() >= 3);
    sink.set(Mode::Accept);
    wait_for("the next round", &outbox, |s| s.sent == 2).await;
    assert!(spool_files(&dir).is_empty());
    assert_eq!(sink.accepted_ids(), ["m1", "m2"]);
    let keys = sink.keys();
    let first_key = &keys[0];
    assert_eq!(
        keys.iter().filter(|k| *k == first_key).count(),
        keys.len() - 1,
        "every try was m1's, with its key, until the last (m2): {keys:?}"
    );
    outbox.close(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn close_with_a_hanging_sink_returns_within_the_grace_and_keeps_the_journal() {
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
    assert_eq!((stats.journaled, stats.pending, stats.sent), (5, 5, 0));
    assert_eq!(spool_files(&dir).len(), 5);

    // Closed: a late annotation is still journaled, for the next start.
    outbox.deliver(&annotation("late"), None).await.unwrap();
    assert_eq!(spool_files(&dir).len(), 6);
    // A second close has nothing to do.
    outbox.close(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn close_with_an_idle_sink_returns_at_once_and_a_down_one_after_its_tries() {
    let dir = spool_dir("idle-close");
    let outbox = Outbox::start(TestSink::new(Mode::Accept), config(&dir)).unwrap();
    let started = std::time::Instant::now();
    outbox.close(Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(1));

    let dir = spool_dir("down-close");
    let down = TestSink::new(Mode::Down);
    let outbox = Outbox::start(down.clone(), config(&dir)).unwrap();
    outbox.deliver(&annotation("m1"), None).await.unwrap();
    wait_for("the sink found down", &outbox, |s| s.spooled == 1).await;
    let started = std::time::Instant::now();
    outbox.close(Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(down.calls(), 6, "one last pass of three tries on close");
    assert_eq!(spool_files(&dir).len(), 1);
}

#[tokio::test]
async fn deliver_never_waits_on_the_sink() {
    let dir = spool_dir("never-waits");
    let outbox = Outbox::start(TestSink::new(Mode::Hang), config(&dir)).unwrap();
    let started = std::time::Instant::now();
    for i in 0..100 {
        outbox
            .deliver(&annotation(&format!("m{i}")), None)
            .await
            .unwrap();
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "100 delivers took {took:?}");
    let stats = outbox.stats();
    assert_eq!((stats.journaled, stats.pending), (100, 100), "{stats:?}");
    outbox.close(Duration::from_millis(50)).await;
    assert_eq!(spool_files(&dir).len(), 100);
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
    wait_for("all", &outbox, |s| s.sent == 50).await;
    outbox.close(Duration::from_secs(5)).await;
    assert_eq!(sink.accepted_ids(), ids);
    assert!(spool_files(&dir).is_empty());
}

#[tokio::test]
async fn an_unwritable_journal_fails_at_start() {
    let file = spool_dir("not-a-dir");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"").unwrap();
    assert!(Outbox::start(TestSink::new(Mode::Accept), config(&file)).is_err());
    std::fs::remove_file(&file).unwrap();
}
