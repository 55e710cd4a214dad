use std::time::Duration;

use ports::{ModelSource, ModelSourceError};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{LoaderConfig, LoaderModelSource};

fn loader(server: &MockServer, tag: &str) -> LoaderModelSource {
    LoaderModelSource::new(LoaderConfig {
        url: server.uri(),
        folder: "models".into(),
        download_dir: std::env::temp_dir()
            .join(format!("detections-loader-{tag}-{}", std::process::id())),
        timeout: Duration::from_secs(5),
        retries: 2,
    })
    .unwrap()
}

#[tokio::test]
async fn downloads_the_model_with_the_compatible_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/load/azaion.onnx"))
        .and(body_json(
            serde_json::json!({"filename": "azaion.onnx", "folder": "models"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"onnx-bytes".to_vec()))
        .expect(1)
        .mount(&server)
        .await;
    let artifact = loader(&server, "ok").load("azaion.onnx").await.unwrap();
    assert_eq!(std::fs::read(&artifact.path).unwrap(), b"onnx-bytes");
}

#[tokio::test]
async fn a_404_is_not_found_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let error = loader(&server, "404").load("x.engine").await.unwrap_err();
    assert!(
        matches!(error, ModelSourceError::NotFound { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_5xx_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"m".to_vec()))
        .mount(&server)
        .await;
    assert!(loader(&server, "retry").load("m.onnx").await.is_ok());
}

#[tokio::test]
async fn persistent_5xx_is_unavailable_after_the_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(3)
        .mount(&server)
        .await;
    let error = loader(&server, "500").load("m.onnx").await.unwrap_err();
    assert!(
        matches!(error, ModelSourceError::Unavailable { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn an_empty_body_is_invalid() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let error = loader(&server, "empty").load("m.onnx").await.unwrap_err();
    assert!(matches!(error, ModelSourceError::Invalid { .. }), "{error}");
}

#[tokio::test]
async fn upload_sends_the_file_as_multipart() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/upload/m.engine"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let file = std::env::temp_dir().join(format!("detections-upload-{}", std::process::id()));
    std::fs::write(&file, b"engine").unwrap();
    loader(&server, "up")
        .upload("m.engine", &file)
        .await
        .unwrap();
    let received = &server.received_requests().await.unwrap()[0];
    let body = String::from_utf8_lossy(&received.body);
    assert!(body.contains("name=\"data\""), "{body}");
    assert!(body.contains("name=\"folder\""), "{body}");
    assert!(body.contains("engine"));
}
