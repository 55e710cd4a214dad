use std::path::PathBuf;
use std::time::Duration;

use domain::auth::{BearerToken, Credentials};
use domain::job::{MediaKind, MediaStatus};
use domain::media::MediaId;
use ports::{
    Annotation, AnnotationError, AnnotationSink, CatalogError, DetectionDto, MediaCatalog,
    MediaRecord,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, header_exists, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::{AnnotationsClient, AnnotationsClientConfig};

const TOKEN: &str = "Bearer test-jwt-123";

fn client(server: &MockServer) -> AnnotationsClient {
    AnnotationsClient::new(AnnotationsClientConfig {
        url: server.uri(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn token() -> BearerToken {
    BearerToken::parse(TOKEN).unwrap()
}

fn media_id() -> MediaId {
    MediaId::parse("0123456789abcdef").unwrap()
}

fn annotation() -> Annotation {
    Annotation {
        media_id: domain::media::MediaId::parse("0123456789abcdef").unwrap(),
        video_time: domain::tracking::VideoTime::parse("00:01:02").unwrap(),
        detections: vec![DetectionDto {
            center_x: 0.5,
            center_y: 0.25,
            width: 0.1,
            height: 0.2,
            class_num: 3,
            label: "car".into(),
            confidence: 0.9,
        }],
        jpeg: bytes::Bytes::from_static(b"hello"),
        key: None,
    }
}

/// The exact `Authorization` header bytes a request carried.
fn authorization_of(request: &Request) -> Option<Vec<u8>> {
    request
        .headers
        .get("authorization")
        .map(|v| v.as_bytes().to_vec())
}

#[tokio::test]
async fn posts_the_annotation_in_the_compatible_shape_with_the_header_unchanged() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/annotations"))
        .and(header("authorization", TOKEN))
        .and(body_json(json!({
            "mediaId": "0123456789abcdef",
            "source": 0,
            "videoTime": "00:01:02",
            "detections": [{
                "centerX": 0.5, "centerY": 0.25, "width": 0.1, "height": 0.2,
                "classNum": 3, "label": "car", "confidence": 0.9
            }],
            "image": "aGVsbG8="
        })))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .deliver(&annotation(), Some(TOKEN.into()))
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(
        authorization_of(&requests[0]).as_deref(),
        Some(TOKEN.as_bytes())
    );
}

#[tokio::test]
async fn an_annotation_without_a_token_is_sent_without_the_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/annotations"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).deliver(&annotation(), None).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(authorization_of(&requests[0]), None);
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_and_trailing_slash_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/prefix/annotations"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let client = AnnotationsClient::new(AnnotationsClientConfig {
        url: format!("{}/prefix/", server.uri()),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    client.deliver(&annotation(), None).await.unwrap();
}

#[tokio::test]
async fn annotation_statuses_map_to_transient_or_rejected() {
    for (status, transient) in [
        (500, true),
        (502, true),
        (503, true),
        (408, true),
        (429, true),
        (400, false),
        (401, false),
        (404, false),
        (422, false),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_string("bad mediaId"))
            .expect(1)
            .mount(&server)
            .await;
        let error = client(&server)
            .deliver(&annotation(), Some(TOKEN.into()))
            .await
            .unwrap_err();
        match error {
            AnnotationError::Transient(_) => assert!(transient, "{status} must be rejected"),
            AnnotationError::Rejected(message) => {
                assert!(!transient, "{status} must be transient");
                assert!(message.contains(&status.to_string()), "{message}");
                assert!(message.contains("bad mediaId"), "{message}");
            }
        }
    }
}

#[tokio::test]
async fn an_unreachable_or_slow_service_is_transient() {
    // Nothing listens on a port we bound and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = AnnotationsClient::new(AnnotationsClientConfig {
        url: format!("http://127.0.0.1:{port}"),
        timeout: Duration::from_secs(2),
    })
    .unwrap();
    assert!(matches!(
        down.deliver(&annotation(), None).await,
        Err(AnnotationError::Transient(_))
    ));

    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(201).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let slow = AnnotationsClient::new(AnnotationsClientConfig {
        url: server.uri(),
        timeout: Duration::from_millis(200),
    })
    .unwrap();
    assert!(matches!(
        slow.deliver(&annotation(), None).await,
        Err(AnnotationError::Transient(_))
    ));
    assert!(matches!(
        slow.media_path(&media_id(), &token()).await,
        Err(CatalogError::Unavailable(_))
    ));
}

#[tokio::test]
async fn creates_the_media_record_in_the_compatible_shape() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/media"))
        .and(header("authorization", TOKEN))
        .and(body_json(json!({
            "Id": "0123456789abcdef",
            "Name": "clip.mp4",
            "Path": "/data/videos/0123456789abcdef.mp4",
            "MediaType": "Video",
            "MediaStatus": 1,
            "UserId": "u-7"
        })))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let record = MediaRecord {
        id: media_id(),
        name: "clip.mp4".into(),
        path: PathBuf::from("/data/videos/0123456789abcdef.mp4"),
        kind: MediaKind::Video,
        user_id: Some("u-7".into()),
    };
    client(&server)
        .create_media(&record, &token())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_image_record_says_image() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/media"))
        .and(body_json(json!({
            "Id": "0123456789abcdef",
            "Name": "a.jpg",
            "Path": "/data/images/0123456789abcdef.jpg",
            "MediaType": "Image",
            "MediaStatus": 1,
            "UserId": null
        })))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let record = MediaRecord {
        id: media_id(),
        name: "a.jpg".into(),
        path: PathBuf::from("/data/images/0123456789abcdef.jpg"),
        kind: MediaKind::Image,
        user_id: None,
    };
    client(&server)
        .create_media(&record, &token())
        .await
        .unwrap();
}

#[tokio::test]
async fn sets_the_status_by_its_code() {
    let server = MockServer::start().await;
    for (status, code) in [
        (MediaStatus::AiProcessing, 2),
        (MediaStatus::AiProcessed, 3),
        (MediaStatus::Error, 6),
    ] {
        Mock::given(method("PUT"))
            .and(path("/api/media/0123456789abcdef/status"))
            .and(header("authorization", TOKEN))
            .and(body_json(json!({ "mediaStatus": code })))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        client(&server)
            .set_status(&media_id(), status, &token())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn reads_the_media_path_under_any_key_casing() {
    for key in ["path", "Path", "PATH"] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/media/0123456789abcdef"))
            .and(header("authorization", TOKEN))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({ "id": "0123456789abcdef", key: "/data/v/x.mp4" })),
            )
            .expect(1)
            .mount(&server)
            .await;
        let found = client(&server)
            .media_path(&media_id(), &token())
            .await
            .unwrap();
        assert_eq!(found, PathBuf::from("/data/v/x.mp4"), "key {key}");
    }
}

#[tokio::test]
async fn a_media_answer_without_a_path_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": "x" })))
        .mount(&server)
        .await;
    let error = client(&server)
        .media_path(&media_id(), &token())
        .await
        .unwrap_err();
    assert!(matches!(error, CatalogError::Rejected(_)), "{error}");
}

#[tokio::test]
async fn catalogue_statuses_map_to_their_errors() {
    for (status, expected) in [
        (401, "Unauthorized"),
        (403, "Unauthorized"),
        (404, "NotFound"),
        (500, "Unavailable"),
        (503, "Unavailable"),
        (429, "Unavailable"),
        (400, "Rejected"),
        (409, "Rejected"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status))
            .mount(&server)
            .await;
        let error = client(&server)
            .media_path(&media_id(), &token())
            .await
            .unwrap_err();
        let kind = match error {
            CatalogError::Unauthorized(_) => "Unauthorized",
            CatalogError::NotFound(_) => "NotFound",
            CatalogError::Unavailable(_) => "Unavailable",
            CatalogError::Rejected(_) => "Rejected",
        };
        assert_eq!(kind, expected, "status {status}");
    }
}

#[tokio::test]
async fn reads_user_settings_in_any_key_casing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/users/u-7/ai-settings"))
        .and(header("authorization", TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "probabilityThreshold": 0.5,
            "FramePeriodRecognition": 2,
            "altitude": 300,
            "somethingElse": "ignored"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let patch = client(&server)
        .user_settings("u-7", &token())
        .await
        .unwrap();
    let mut keys: Vec<_> = patch.keys().collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "altitude",
            "frame_period_recognition",
            "probability_threshold"
        ]
    );
    let settings = domain::settings::RecognitionSettings::default().merged(&patch);
    assert_eq!(settings.probability_threshold(), 0.5);
    assert_eq!(settings.frame_period_recognition(), 2);
}

#[tokio::test]
async fn an_invalid_stored_setting_is_rejected_naming_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/users/u-7/ai-settings"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({ "probability_threshold": 7 })),
        )
        .mount(&server)
        .await;
    let error = client(&server)
        .user_settings("u-7", &token())
        .await
        .unwrap_err();
    match error {
        CatalogError::Rejected(message) => {
            assert!(message.contains("probability_threshold"), "{message}")
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_without_settings_gets_an_empty_patch() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/users/u-7/ai-settings"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let patch = client(&server)
        .user_settings("u-7", &token())
        .await
        .unwrap();
    assert!(patch.is_empty());
}

#[tokio::test]
async fn a_user_id_is_one_encoded_path_segment() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/users/a%2Fb%20c/ai-settings"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .user_settings("a/b c", &token())
        .await
        .unwrap();
}

#[tokio::test]
async fn refreshes_the_token() {
    let server = MockServer::start().await;
    let fresh = FRESH_JWT;
    Mock::given(method("POST"))
        .and(path("/auth/refresh"))
        .and(header("authorization", TOKEN))
        .and(body_json(json!({ "refreshToken": "r-1" })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "token": fresh })))
        .expect(1)
        .mount(&server)
        .await;
    let credentials = Credentials {
        token: token(),
        refresh_token: Some("r-1".into()),
    };
    let refreshed = client(&server).refresh(&credentials).await.unwrap();
    assert_eq!(refreshed.header(), format!("Bearer {fresh}"));
    assert_eq!(refreshed.user_id(), Some("u-7"));
    assert_eq!(refreshed.expires_at(), Some(2_000_000_000));
}

#[tokio::test]
async fn a_refused_refresh_is_unauthorized_and_none_without_a_refresh_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/auth/refresh"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let mut credentials = Credentials {
        token: token(),
        refresh_token: Some("stale".into()),
    };
    assert!(matches!(
        client.refresh(&credentials).await,
        Err(CatalogError::Unauthorized(_))
    ));
    credentials.refresh_token = None;
    assert!(matches!(
        client.refresh(&credentials).await,
        Err(CatalogError::Rejected(_))
    ));
}

/// An unsigned JWT with `{"nameid":"u-7","exp":2000000000}` (the service decodes,
/// never verifies).
const FRESH_JWT: &str =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJuYW1laWQiOiJ1LTciLCJleHAiOjIwMDAwMDAwMDB9.sig";

#[tokio::test]
async fn a_header_that_cannot_be_sent_is_rejected_not_retried() {
    let server = MockServer::start().await;
    let error = client(&server)
        .deliver(&annotation(), Some("Bearer a\nb".into()))
        .await
        .unwrap_err();
    assert!(matches!(error, AnnotationError::Rejected(_)), "{error:?}");
    assert!(server.received_requests().await.unwrap().is_empty());
}
