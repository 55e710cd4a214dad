//! The console at `/`: served from the binary with a policy that admits nothing from
//! elsewhere and no inline script, and off when configured so. (What a person sees in
//! a browser is not tested here: see docs/console.md.)

use std::sync::Arc;

use adapters::http::{HttpConfig, router};
use ports::driving::MockDetectionService;

async fn serve(console: bool) -> String {
    let app = router(
        Arc::new(MockDetectionService::new()),
        HttpConfig {
            console,
            ..HttpConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

async fn get(url: String) -> (u16, String, String, String) {
    let response = reqwest::get(url).await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (kind, policy) = (header("content-type"), header("content-security-policy"));
    let status = response.status().as_u16();
    (status, kind, policy, response.text().await.unwrap())
}

#[tokio::test]
async fn the_page_its_script_and_style_come_from_the_binary_under_a_strict_policy() {
    let base = serve(true).await;
    let (status, kind, policy, page) = get(format!("{base}/")).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    assert!(page.contains(r#"<script src="/console/console.js">"#));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing from elsewhere"
    );
    let (status, kind, _, script) = get(format!("{base}/console/console.js")).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/javascript"), "{kind}");
    // What the service or an upload says is set as text, never parsed as HTML.
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
    ] {
        assert!(!script.contains(sink), "the script uses {sink}");
    }
    for endpoint in [
        "/health",
        "/classes",
        "/detect",
        "/detect/stream",
        "/detect/video",
        "/metrics",
    ] {
        assert!(
            script.contains(&format!("'{endpoint}'")),
            "reads {endpoint}"
        );
    }
    let (status, kind, _, _) = get(format!("{base}/console/console.css")).await;
    assert_eq!((status, kind.starts_with("text/css")), (200, true));
}

#[tokio::test]
async fn the_console_can_be_turned_off() {
    let base = serve(false).await;
    assert_eq!(get(format!("{base}/")).await.0, 404);
    assert_eq!(get(format!("{base}/console/console.js")).await.0, 404);
}
