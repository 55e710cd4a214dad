//! The console (`GET /`) in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`) against the binary with the real
//! person model. What is checked is what a person sees; each test saves a screenshot
//! under `target/console-screenshots/`.
//!
//! Without Chromium or its driver the tests say so and pass, except under
//! `cargo xtask test` (`REQUIRE_BROWSER_TESTS` set), where they fail: `.ci/run`
//! installs both.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// One browser at a time: Chromium and the model on 2 cores are enough load.
static BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A service on the real person model, its media under `dir`.
fn console_service(dir: &Path) -> Service {
    let config = media_config(
        dir,
        &assets().join("models"),
        "azaion.onnx",
        "",
        &format!(
            "[annotations]\nkind = \"file\"\npath = {:?}\n",
            dir.join("annotations.jsonl").display().to_string()
        ),
        "",
    );
    Service::start(dir.to_path_buf(), &config)
}

/// Chromium and its driver, or why the test cannot run here.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let find = |name: &str| {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
            .map(|dir| dir.join(name))
            .find(|file| file.is_file())
    };
    match (find("chromium"), find("chromedriver")) {
        (Some(browser), Some(driver)) => Ok((browser, driver)),
        _ => Err("chromium and chromedriver are not installed \
                  (apt-get install chromium chromium-driver)"
            .into()),
    }
}

/// A headless browser session; the driver stops with it.
struct Browser {
    driver: Child,
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.runtime.block_on(client.close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// `None` (after saying why) where Chromium is missing and not required.
    fn start() -> Option<Browser> {
        let (chromium, chromedriver) = match tools() {
            Ok(found) => found,
            Err(why) if std::env::var_os("REQUIRE_BROWSER_TESTS").is_none() => {
                eprintln!("SKIPPED: the console's browser tests: {why}");
                return None;
            }
            Err(why) => panic!("{why}"),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        eventually(Duration::from_secs(20), "chromedriver listening", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1280,1200"],
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = runtime
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a Chromium session");
        Some(Browser {
            driver,
            client,
            runtime,
        })
    }

    fn open(&self, url: &str) {
        self.runtime.block_on(self.client.goto(url)).unwrap();
    }

    /// The value of a script run in the page (`return …`).
    fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.runtime
            .block_on(self.client.execute(script, args))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// `textContent` of the element with `id`.
    fn text(&self, id: &str) -> String {
        self.eval(
            "return document.getElementById(arguments[0]).textContent;",
            vec![json!(id)],
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Waits until `check` holds, polling the page; on timeout says what it last saw.
    fn until(&self, within: Duration, what: &str, mut check: impl FnMut(&Browser) -> bool) {
        let deadline = std::time::Instant::now() + within;
        while !check(self) {
            if std::time::Instant::now() > deadline {
                let page = self.eval("return document.body.innerText;", vec![]);
                panic!("{what} did not happen within {within:?}; the page shows:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Chooses `file` in the page's file input, as a person does.
    fn choose(&self, file: &Path) {
        self.runtime.block_on(async {
            let input = self.client.find(Locator::Id("file")).await.unwrap();
            input.send_keys(&file.display().to_string()).await.unwrap();
        });
    }

    /// Saves what the browser shows as `target/console-screenshots/<name>.png`.
    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.runtime.block_on(self.client.screenshot()).unwrap();
        let dir = repo().join("target").join("console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The Live table's row of the (only) media: its progress and status text.
    fn media_row(&self) -> Option<(f64, String)> {
        let row = self.eval(
            "const tr = document.querySelector('#media tbody tr');
             if (!tr) return null;
             return [tr.querySelector('progress').value, tr.cells[2].textContent];",
            vec![],
        );
        Some((row.get(0)?.as_f64()?, row.get(1)?.as_str()?.to_string()))
    }
}

/// One test's turn with the browser: a service on the test's own folder, its page
/// open. `None` where the browser tests are skipped.
struct Session {
    browser: Browser,
    service: Service,
    dir: PathBuf,
    turn: std::sync::MutexGuard<'static, ()>,
}

fn session(tag: &str) -> Option<Session> {
    let turn = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let browser = Browser::start()?;
    let dir = scratch(tag);
    let service = console_service(&dir);
    browser.open(&service.url("/"));
    Some(Session {
        browser,
        service,
        dir,
        turn,
    })
}

#[test]
fn a_photo_shows_as_many_boxes_as_the_api_in_the_class_colours_and_the_engine_becomes_enabled() {
    let Some(Session {
        browser,
        service,
        dir,
        turn: _turn,
    }) = session("console-photo")
    else {
        return;
    };
    browser.until(Duration::from_secs(10), "the engine state shown", |b| {
        b.text("availability") == "None"
    });
    let photo = dir.join("bus.jpg");
    std::fs::copy(assets().join("photos/bus.jpg"), &photo).unwrap();
    browser.choose(&photo);
    browser.until(Duration::from_secs(60), "the photo drawn", |b| {
        b.eval(
            "return document.getElementById('picture').dataset.boxes || null;",
            vec![],
        )
        .is_string()
    });
    // The engine started for that photo: the label walked to Enabled on the stream.
    browser.until(Duration::from_secs(20), "Enabled", |b| {
        b.text("availability") == "Enabled"
    });
    assert_eq!(browser.text("engine-type"), "onnx");

    // The API on the same photo with the page's threshold.
    let (status, api) = service.detect(
        std::fs::read(&photo).unwrap(),
        "bus.jpg",
        Some(json!({"probability_threshold": 0.25})),
    );
    assert_eq!(status, 200, "{api}");
    let api = api.as_array().unwrap().clone();
    assert!(!api.is_empty(), "people on the bus");
    let drawn = browser.eval(
        "return [document.getElementById('picture').dataset.boxes,
                 document.querySelectorAll('#detections tbody tr').length];",
        vec![],
    );
    assert_eq!(drawn[0], api.len().to_string(), "boxes drawn");
    assert_eq!(drawn[1], api.len(), "rows in the table");
    assert!(
        browser
            .text("try-status")
            .starts_with(&format!("{} detection(s)", api.len())),
        "{}",
        browser.text("try-status")
    );

    // Each class found is drawn in its colour from classes.json (the label plates are
    // solid rectangles of it).
    let classes: Value = service
        .client
        .get(service.url("/classes"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut found: Vec<u64> = api
        .iter()
        .map(|d| d["classNum"].as_u64().unwrap())
        .collect();
    found.dedup();
    for class in found {
        let colour = classes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Id"] == class)
            .and_then(|c| c["Color"].as_str())
            .unwrap_or_else(|| panic!("class {class} in classes.json: {classes}"))
            .to_string();
        let pixels = browser.eval(
            "const c = document.getElementById('picture');
             const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             const hex = arguments[0];
             const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
             let n = 0;
             for (let i = 0; i < data.length; i += 4) {
               if (data[i] === r && data[i + 1] === g && data[i + 2] === b) n++;
             }
             return n;",
            vec![json!(colour)],
        );
        assert!(
            pixels.as_u64().unwrap() >= 100,
            "class {class} drawn in {colour}: {pixels} pixels"
        );
    }
    // The load figures come from /metrics (refreshed every 3 s): numbers, not dashes
    // (the batch fill only for an interval with engine calls, so not asked here).
    browser.until(Duration::from_secs(15), "the load figures", |b| {
        ["rps", "in-flight", "queue"]
            .iter()
            .all(|id| b.text(id).parse::<f64>().is_ok())
    });
    browser.screenshot("photo");
}

#[test]
fn a_video_uploaded_from_the_page_shows_its_progress_rising_to_100_and_ai_processed() {
    let Some(Session {
        browser,
        service: _service,
        dir,
        turn: _turn,
    }) = session("console-video")
    else {
        return;
    };
    let clip = dir.join("walk.mp4");
    person_clip(&clip, 8, 10, "mod(t*100,450)");
    browser.until(Duration::from_secs(10), "the stream connected", |b| {
        b.text("stream-state") == "connected"
    });
    browser.choose(&clip);
    let mut seen = Vec::new();
    browser.until(Duration::from_secs(120), "AIProcessed", |b| {
        let Some((percent, status)) = b.media_row() else {
            return false;
        };
        seen.push(percent);
        status == "AIProcessed"
    });
    let (percent, _) = browser.media_row().unwrap();
    assert_eq!(percent, 100.0);
    assert!(
        seen.iter().any(|p| *p > 0.0 && *p < 100.0),
        "the bar rose on the way: {seen:?}"
    );
    assert!(
        browser.text("try-status").contains("uploaded as media"),
        "{}",
        browser.text("try-status")
    );
    browser.screenshot("video");
}

#[test]
fn a_job_cancelled_from_the_page_shows_error_with_the_reason() {
    let Some(Session {
        browser,
        service,
        dir,
        turn: _turn,
    }) = session("console-cancel")
    else {
        return;
    };
    let clip = dir.join("long.mp4");
    person_clip(&clip, 60, 25, "mod(t*100,450)");
    browser.until(Duration::from_secs(10), "the stream connected", |b| {
        b.text("stream-state") == "connected"
    });
    browser.choose(&clip);
    browser.until(Duration::from_secs(60), "the job running", |b| {
        b.media_row()
            .is_some_and(|(percent, status)| percent > 0.0 && status == "AIProcessing")
    });
    browser.runtime.block_on(async {
        let button = browser
            .client
            .find(Locator::Css("#media tbody tr button"))
            .await
            .unwrap();
        button.click().await.unwrap();
    });
    browser.until(Duration::from_secs(30), "the job ended", |b| {
        b.media_row()
            .is_some_and(|(_, status)| status != "AIProcessing")
    });
    let (percent, status) = browser.media_row().unwrap();
    assert_eq!(status, "Error: cancelled", "at {percent} %");
    assert!(percent < 100.0, "{percent}");
    browser.screenshot("cancelled");
    drop(service);
}

#[test]
fn a_refused_upload_shows_the_message_and_a_file_name_with_markup_stays_text() {
    let Some(Session {
        browser,
        service: _service,
        dir,
        turn: _turn,
    }) = session("console-refused")
    else {
        return;
    };
    browser.until(Duration::from_secs(10), "the engine state shown", |b| {
        b.text("availability") != "…"
    });
    // Not a photo, and a name that would run script if it were ever inserted as HTML.
    let name = "<img src=x onerror=\"window.injected=1\">.png";
    let file = dir.join(name);
    std::fs::write(&file, b"these are not the pixels you are looking for").unwrap();
    browser.choose(&file);
    browser.until(Duration::from_secs(30), "the refusal shown", |b| {
        b.text("try-status").contains("was not detected")
    });
    let status = browser.text("try-status");
    assert!(status.starts_with(name), "the name as typed: {status}");
    let code = status
        .split("was not detected: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|code| code.parse::<u16>().ok());
    assert!(
        code.is_some_and(|c| (400..500).contains(&c)),
        "a 4xx with its reason: {status}"
    );
    // The service's own words follow the code.
    assert!(
        status.len() > status.find("was not detected: ").unwrap() + 24,
        "{status}"
    );
    let injected = browser.eval(
        "return [window.injected === undefined,
                 document.querySelectorAll('#try-status *').length,
                 document.querySelectorAll('img').length];",
        vec![],
    );
    assert_eq!(injected, json!([true, 0, 0]), "{status}");
    browser.screenshot("refused");
}
