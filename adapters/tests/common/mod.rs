//! Test assets: `$TEST_ASSETS_DIR`, default `<workspace>/assets` (`cargo xtask fetch`
//! fills it). A missing asset fails the test, loudly: it is never skipped.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn assets() -> PathBuf {
    std::env::var_os("TEST_ASSETS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets"))
}

/// `relative` under the assets folder; panics with what to do when it is not there.
pub fn asset(relative: &str) -> PathBuf {
    let path = assets().join(relative);
    assert!(
        path.is_file(),
        "test asset {} is missing: run `cargo xtask fetch` (or point TEST_ASSETS_DIR at the assets folder)",
        path.display()
    );
    path
}

/// The ONNX Runtime library: `$ORT_DYLIB_PATH` when set (xtask exports it), else the asset.
pub fn ort_library() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "ORT_DYLIB_PATH={} is not a file",
                path.display()
            );
            path
        }
        _ => asset("onnxruntime/libonnxruntime.so.1.32.0"),
    }
}

pub mod onnx_model;
