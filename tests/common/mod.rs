//! Shared helpers of the integration tests: assets, configuration files, the binary.
#![allow(dead_code)]

pub mod matching;
pub mod sse;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fetched assets (`cargo xtask fetch`); a missing folder fails loudly.
pub fn assets() -> PathBuf {
    let dir = std::env::var_os("TEST_ASSETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("assets"));
    assert!(
        dir.join("onnxruntime").is_dir() && dir.join("fixtures").is_dir(),
        "test assets missing in {}: run `cargo xtask fetch` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

pub fn ort_library() -> PathBuf {
    assets().join("onnxruntime/libonnxruntime.so.1.32.0")
}

pub fn openvino_library() -> PathBuf {
    std::env::var_os("OPENVINO_LIBRARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| assets().join("openvino/libopenvino_c.so.2641"))
}

/// The environment that turns a [`config_file`]'s engine into OpenVINO at `precision`,
/// its compiled-model cache in `dir`.
pub fn openvino_env(dir: &Path, precision: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DETECTIONS_ENGINE__KIND", "openvino".into()),
        (
            "DETECTIONS_ENGINE__LIBRARY",
            openvino_library().display().to_string(),
        ),
        ("DETECTIONS_ENGINE__PRECISION", precision.into()),
        (
            "DETECTIONS_ENGINE__CACHE_DIR",
            dir.join("openvino-cache").display().to_string(),
        ),
    ]
}

/// A fresh folder for one test.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("detections-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A configuration that runs `model` from `model_dir` on the CPU engine.
pub fn config_file(dir: &Path, model_dir: &Path, model: &str, extra: &str) -> PathBuf {
    let text = format!(
        "[classes]\npath = {classes:?}\n\
         [model]\nname = {model:?}\n\
         [model_source]\nkind = \"local\"\ndir = {model_dir:?}\n\
         [engine]\nkind = \"onnx\"\nlibrary = {library:?}\n\
         [annotations]\nkind = \"file\"\npath = {annotations:?}\n\
         {extra}\n",
        classes = repo().join("classes.json").display().to_string(),
        model_dir = model_dir.display().to_string(),
        library = ort_library().display().to_string(),
        annotations = dir.join("annotations.jsonl").display().to_string(),
    );
    // The journal in the test's folder unless `extra` says where: services of
    // concurrent tests must never share one (one process per journal folder).
    let text = if extra.contains("[outbox]") {
        text
    } else {
        format!(
            "{text}[outbox]\nspool_dir = {:?}\n",
            dir.join("spool").display().to_string()
        )
    };
    let path = dir.join("detections.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The binary (`E2E_SERVICE_BIN` when set: the e2e stage points it at the
/// release build), with no configuration from the test's own environment leaking in.
pub fn binary() -> Command {
    let program = std::env::var_os("E2E_SERVICE_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_detections").into());
    let mut command = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("DETECTIONS_")
            || [
                "LOADER_URL",
                "ANNOTATIONS_URL",
                "VIDEOS_DIR",
                "IMAGES_DIR",
                "LOG_FORMAT",
                "NATS_URL",
            ]
            .contains(&key.as_str())
        {
            command.env_remove(key);
        }
    }
    command
}

pub fn run(command: &mut Command) -> Output {
    command.output().expect("the binary runs")
}

/// Every JSON line the `detect` command printed.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Configuration lines that bind the service to an ephemeral loopback port.
pub const LOCAL_PORT_0: &str = "[server]\nbind = \"127.0.0.1:0\"\n";

/// Starts `serve` with `config` and returns the child and the address it reported.
pub fn serve(config: &Path) -> (std::process::Child, String) {
    serve_with(binary(), config)
}

/// [`serve`] with `command` (the binary with an environment of the test's).
pub fn serve_with(mut command: Command, config: &Path) -> (std::process::Child, String) {
    let mut child = command
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        seen.push(line.clone());
        if let Some(at) = line.find("address=") {
            let address = line[at + 8..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, address);
        }
    }
    let _ = child.kill();
    let status = child.wait();
    panic!(
        "the service did not report its address ({status:?}); it wrote:\n{}",
        seen.join("\n")
    );
}

/// A plain HTTP/1.1 GET: status and body.
pub fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

/// A running `detections serve`, killed when dropped.
pub struct Service {
    pub child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub client: reqwest::blocking::Client,
    /// The test's scratch folder (configuration, media folders, spool).
    pub dir: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// Writes `config` to `<dir>/detections.toml` and starts `serve` with it.
    pub fn start(dir: PathBuf, config: &str) -> Service {
        let path = dir.join("detections.toml");
        std::fs::write(&path, config).unwrap();
        Service::with_file(dir, &path)
    }

    /// Starts `serve` with the configuration file at `path`.
    pub fn with_file(dir: PathBuf, path: &Path) -> Service {
        let (child, address) = serve(path);
        Service {
            child,
            base: format!("http://{address}"),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .unwrap(),
            dir,
        }
    }

    /// A counter of `/metrics` (0 when absent).
    pub fn counter(&self, name: &str) -> u64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    }

    /// `POST` of `form` to `path`: the status and the JSON answer (null when not JSON).
    pub fn post_form(
        &self,
        path: &str,
        form: reqwest::blocking::multipart::Form,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url(path))
            .multipart(form)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(serde_json::Value::Null))
    }

    /// `GET /health`, which always answers 200.
    pub fn health(&self) -> serde_json::Value {
        let response = self.client.get(self.url("/health")).send().unwrap();
        assert_eq!(response.status(), 200);
        response.json().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /detect` of `bytes` named `name`, with `settings` as the `config` part when
    /// given: the status and the JSON answer (null when the body is not JSON).
    pub fn detect(
        &self,
        bytes: Vec<u8>,
        name: &str,
        settings: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        use reqwest::blocking::multipart::{Form, Part};
        let mut form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()));
        if let Some(settings) = settings {
            form = form.text("config", settings.to_string());
        }
        self.post_form("/detect", form)
    }
}

/// A configuration on `model` from `models`, with media folders and the spool under
/// `dir`. `server` lines go into `[server]`; `annotations` is the whole
/// `[annotations]` section; `extra` comes last.
pub fn media_config(
    dir: &Path,
    models: &Path,
    model: &str,
    server: &str,
    annotations: &str,
    extra: &str,
) -> String {
    format!(
        "{LOCAL_PORT_0}{server}\n\
         [classes]\npath = {classes:?}\n\
         [model]\nname = {model:?}\n\
         [model_source]\nkind = \"local\"\ndir = {models:?}\n\
         [engine]\nkind = \"onnx\"\nlibrary = {library:?}\n\
         {annotations}\n\
         [media]\nimages_dir = {images:?}\nvideos_dir = {videos:?}\n\
         [outbox]\nspool_dir = {spool:?}\n\
         {extra}\n",
        classes = repo().join("classes.json").display().to_string(),
        models = models.display().to_string(),
        library = ort_library().display().to_string(),
        images = dir.join("images").display().to_string(),
        videos = dir.join("videos").display().to_string(),
        spool = dir.join("spool").display().to_string(),
    )
}

/// The `[annotations]` section for the Annotations service at `url`.
pub fn annotations_at(url: &str) -> String {
    format!("[annotations]\nkind = \"http\"\nurl = {url:?}\ntimeout_secs = 2\n")
}

/// A stand-in Loader/Annotations serving the fixture models.
pub fn stand_in() -> standin::StandIn {
    standin::StandIn::start(standin::StandInConfig {
        models_dir: assets().join("fixtures"),
        bind: "127.0.0.1:0".parse().unwrap(),
    })
    .unwrap()
}

/// A `w`×`h` PNG of one colour (red channel `shade`).
pub fn png(w: u32, h: u32, shade: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(w, h, image::Rgb([shade, 90, 90]))
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

/// Polls `check` until it holds, or fails the test naming `what`.
pub fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen within {within:?}");
}

/// The encoder options of every test clip: H.264, yuv420p, the index up front.
pub const H264: [&str; 6] = [
    "-c:v",
    "libx264",
    "-pix_fmt",
    "yuv420p",
    "-movflags",
    "+faststart",
];

/// A person (cut from `zidane.png`) on a plain grey 640×360 background at `fps` for
/// `seconds`; `x` is ffmpeg's overlay expression of its left edge (`t` in seconds).
pub fn person_clip(path: &Path, seconds: u32, fps: u32, x: &str) {
    let photo = assets().join("photos/zidane.png");
    let background = format!("color=c=gray:s=640x360:r={fps}:d={seconds}");
    let filter = format!("[1]crop=420:680:720:40,scale=-2:300[p];[0][p]overlay=x='{x}':y=40");
    let frames = (seconds * fps).to_string();
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        &background,
        "-i",
        photo.to_str().unwrap(),
        "-filter_complex",
        &filter,
        "-frames:v",
        &frames,
    ];
    args.extend(H264);
    args.push(path.to_str().unwrap());
    ffmpeg(args);
}

/// An H.264 faststart mp4 at `out` of `frames` frames at 25 fps of the still `photo`,
/// scaled by the ffmpeg filter `scale` when given (e.g. `scale=320:-2`); its bytes.
pub fn still_clip(photo: &Path, out: &Path, frames: u32, scale: Option<&str>) -> Vec<u8> {
    let frames = frames.to_string();
    let mut args = vec!["-loop", "1", "-i", photo.to_str().unwrap()];
    if let Some(scale) = scale {
        args.extend(["-vf", scale]);
    }
    args.extend(["-frames:v", &frames, "-r", "25"]);
    args.extend(H264);
    args.push(out.to_str().unwrap());
    ffmpeg(args);
    std::fs::read(out).unwrap()
}

/// Runs the `ffmpeg` program (quiet, overwriting), which the video tests require.
pub fn ffmpeg<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("the `ffmpeg` program is required for the video tests (apt-get install ffmpeg)");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `.json` files directly in `dir` (the outbox journal's entries); none when it is absent.
pub fn json_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
                .collect()
        })
        .unwrap_or_default()
}

/// The entry of fixture model `file` in `assets/fixtures/manifest.json`.
pub fn fixture_entry(file: &str) -> serde_json::Value {
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(assets().join("fixtures/manifest.json")).unwrap(),
    )
    .unwrap();
    manifest["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["file"] == file)
        .unwrap_or_else(|| panic!("{file} in the fixture manifest"))
        .clone()
}
