//! `cargo xtask bench [--runs N] [--threads T]`: the Rust pipeline and the Python
//! reference timed side by side on the same files, in one run, reported as ratios.
//!
//! Each file is measured by `detections bench-frames` (release build) and then by
//! `scripts/reference.py --bench`, back to back, so both see the same machine load.
//! The table goes to stdout and, with the machine and the date, to
//! `docs/performance.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, fetch};

const PHOTOS: [&str; 4] = [
    "bus_1920x1080.jpg",
    "street_1280x720.jpg",
    "zidane.png",
    "big_5472x3648.jpg",
];
const TINY_PHOTO: &str = "bus_1920x1080.jpg";

/// The four stages both sides report, in table order.
const STAGES: [&str; 4] = ["decode_ms", "preprocess_ms", "engine_ms", "full_ms"];

pub struct Options {
    pub runs: usize,
    pub threads: usize,
}

pub fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        runs: 5,
        threads: 2,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let target = match arg.as_str() {
            "--runs" => &mut options.runs,
            "--threads" => &mut options.threads,
            other => bail!("bench: unknown argument `{other}`"),
        };
        let value = args
            .next()
            .with_context(|| format!("bench: `{arg}` needs a number"))?;
        *target = value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("bench: `{arg} {value}`: expected a positive number"))?;
    }
    Ok(options)
}

/// One model: the Rust configuration and the reference's `--model`.
struct Model {
    label: &'static str,
    config: PathBuf,
    path: PathBuf,
}

/// One measured row: the four stages for each side, and the views.
struct Row {
    file: String,
    model: &'static str,
    views: f64,
    rust: [f64; 4],
    python: [f64; 4],
    rust_full_p50: f64,
}

pub fn bench(root: &Path, options: &Options) -> Result<()> {
    let binary = root.join("target/release/detections");
    let python = fetch::venv_python(root);
    let reference = root.join("scripts/reference.py");
    let classes = root.join("classes.json");
    let real = root.join("assets/models/azaion.onnx");
    let tiny = root.join("assets/fixtures/tiny_v8_640.onnx");
    for needed in [
        &python,
        &reference,
        &classes,
        &real,
        &tiny,
        &fetch::ort_library(root),
    ] {
        if !needed.is_file() {
            bail!("{} is missing (run `cargo xtask fetch`)", needed.display());
        }
    }

    println!("==> build: cargo build --release");
    let status = cargo()
        .args(["build", "--release"])
        .current_dir(root)
        .status()
        .context("could not start `cargo build --release`")?;
    if !status.success() {
        bail!("`cargo build --release` exited with {status}");
    }
    if !binary.is_file() {
        bail!("{} is missing after the build", binary.display());
    }

    let scratch = std::env::temp_dir().join(format!("detections-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let models = [
        Model {
            label: "azaion",
            config: write_config(root, &scratch, "azaion", &real, options.threads)?,
            path: real,
        },
        Model {
            label: "tiny",
            config: write_config(root, &scratch, "tiny", &tiny, options.threads)?,
            path: tiny,
        },
    ];
    let photos = root.join("assets/photos");
    let cases = PHOTOS
        .iter()
        .map(|p| (&models[0], photos.join(p)))
        .chain([(&models[1], photos.join(TINY_PHOTO))]);

    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for (model, photo) in cases {
        if !photo.is_file() {
            eprintln!("xtask: bench: {} is missing, skipped", photo.display());
            missing.push(photo.display().to_string());
            continue;
        }
        let shown = photo.file_name().unwrap_or_default().to_string_lossy();
        println!("==> {shown} ({}): Rust, then Python", model.label);
        let mut rust = Command::new(&binary);
        rust.arg("--config")
            .arg(&model.config)
            .arg("bench-frames")
            .args(["--runs", &options.runs.to_string()])
            .args(["--threads", &options.threads.to_string()])
            .arg(&photo);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DETECTIONS_") {
                rust.env_remove(key);
            }
        }
        let rust_line = output_line(rust.current_dir(root), "detections bench-frames")?;
        let mut reference_cmd = Command::new(&python);
        reference_cmd
            .arg(&reference)
            .arg("--model")
            .arg(&model.path)
            .arg("--classes")
            .arg(&classes)
            .args(["--bench", &options.runs.to_string()])
            .args(["--threads", &options.threads.to_string()])
            .arg(&photo);
        let python_line = output_line(reference_cmd.current_dir(root), "reference.py --bench")?;
        let row = Row {
            file: shown.into_owned(),
            model: model.label,
            views: number(&rust_line, "views")?,
            rust: stages(&rust_line)?,
            python: stages(&python_line)?,
            rust_full_p50: number(&rust_line, "full_p50_ms")?,
        };
        let python_views = number(&python_line, "views")?;
        if python_views != row.views {
            eprintln!(
                "xtask: bench: {}: Rust planned {} views, Python {python_views}",
                row.file, row.views
            );
        }
        println!("{rust_line}\n{python_line}");
        rows.push(row);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if rows.is_empty() {
        bail!("nothing measured: missing {}", missing.join(", "));
    }

    let table = table(&rows);
    println!("\n{table}");
    let doc = document(root, options, &table, &missing);
    let target = root.join("docs/performance.md");
    std::fs::write(&target, doc).with_context(|| format!("cannot write {}", target.display()))?;
    println!("==> wrote {}", target.display());
    Ok(())
}

fn write_config(
    root: &Path,
    dir: &Path,
    tag: &str,
    model: &Path,
    threads: usize,
) -> Result<PathBuf> {
    let name = model.file_name().unwrap_or_default().to_string_lossy();
    let model_dir = model.parent().unwrap_or(root);
    let text = format!(
        "[classes]\npath = {classes:?}\n\
         [model]\nname = {name:?}\n\
         [model_source]\nkind = \"local\"\ndir = {model_dir:?}\n\
         [engine]\nkind = \"onnx\"\nlibrary = {library:?}\nintra_threads = {threads}\n\
         [annotations]\nkind = \"file\"\npath = {annotations:?}\n\
         [logging]\nlevel = \"warn\"\n",
        classes = root.join("classes.json").display().to_string(),
        model_dir = model_dir.display().to_string(),
        library = fetch::ort_library(root).display().to_string(),
        annotations = dir.join("annotations.jsonl").display().to_string(),
    );
    let path = dir.join(format!("{tag}.toml"));
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Runs `cmd` and returns its one JSON line; a failure shows the command's stderr.
fn output_line(cmd: &mut Command, what: &str) -> Result<String> {
    let output = cmd
        .output()
        .with_context(|| format!("could not start {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} exited with {}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .map(str::to_owned)
        .with_context(|| format!("{what} printed no JSON line"))
}

/// A number field of a flat JSON object line (`"key": 1.5` or `"key":1.5`).
fn number(line: &str, key: &str) -> Result<f64> {
    let quoted = format!("\"{key}\"");
    let at = line
        .find(&quoted)
        .with_context(|| format!("no `{key}` in {line}"))?;
    let rest = line[at + quoted.len()..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .with_context(|| format!("`{key}` has no value in {line}"))?;
    let value: String = rest
        .trim_start()
        .chars()
        .take_while(|c| !matches!(c, ',' | '}'))
        .collect();
    value
        .trim()
        .parse()
        .with_context(|| format!("`{key}` = `{}` is not a number", value.trim()))
}

fn stages(line: &str) -> Result<[f64; 4]> {
    let mut out = [0.0; 4];
    for (slot, key) in out.iter_mut().zip(STAGES) {
        *slot = number(line, key)?;
    }
    Ok(out)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "–".into()
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| file | model | views | Rust decode | Rust preprocess | Rust engine | Rust full \
         | Rust full p50 | Py decode | Py preprocess | Py engine | Py full \
         | Rust overhead ÷ Py overhead | Py full ÷ Rust full | Rust full ÷ engine |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for row in rows {
        let [rd, rp, re, rf] = row.rust;
        let [pd, pp, pe, pf] = row.python;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {rd:.1} | {rp:.1} | {re:.1} | {rf:.1} | {:.1} \
             | {pd:.1} | {pp:.1} | {pe:.1} | {pf:.1} | {} | {} | {} |",
            row.file,
            row.model,
            row.views,
            row.rust_full_p50,
            ratio(rf - re, pf - pe),
            ratio(pf, rf),
            ratio(rf, re),
        );
    }
    out
}

fn shell(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn document(root: &Path, options: &Options, table: &str, missing: &[String]) -> String {
    let lscpu = shell("lscpu", &[]);
    let field = |name: &str| {
        lscpu
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| "unknown".into())
    };
    let cpu = field("Model name:");
    let cores = shell("nproc", &[]);
    let date = shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let skipped = if missing.is_empty() {
        String::new()
    } else {
        format!("\nSkipped (missing): {}.\n", missing.join(", "))
    };
    format!(
        "# Performance: Rust pipeline vs the Python reference\n\n\
         Generated by `cargo xtask bench --runs {runs} --threads {threads}` \
         (commit {commit}, {date}).\n\n\
         Machine: {cpu}, {cores} cores available (shared with other work: read the \
         ratios, not the absolute times).\n\n\
         {table}{skipped}\n\
         ## How it is measured\n\n\
         For each file, `detections bench-frames` (release build, ONNX Runtime \
         intra-op threads = {threads}) and then `scripts/reference.py --bench {runs} \
         --threads {threads}` run back to back on the same file, so both see the same \
         load. Each stage is run once to warm up, then {runs} times; the columns are \
         means in milliseconds (Rust p50 of the full pipeline also shown).\n\n\
         - decode: read the file and decode it to RGB.\n\
         - preprocess: decode + every view (whole frame, or the 640-px tiles of \
         docs/pipeline.md §1) letterboxed and normalised into the input tensor.\n\
         - engine: the model alone (`InferenceEngine::infer` / `session.run`) on \
         already filled tensors, summed over all views of the frame (batch size 1: \
         one call per view).\n\
         - full: decode + preprocess + engine + decoding, NMS and the per-frame \
         filters + DTOs.\n\n\
         Ratios:\n\n\
         - Rust overhead ÷ Py overhead: (full − engine) of Rust over the same for \
         Python — the time spent outside the model. Below 1: Rust spends less.\n\
         - Py full ÷ Rust full: images per second of Rust relative to Python.\n\
         - Rust full ÷ engine: Rust full time over views × engine time per view; 1.00 \
         means everything but the model is free.\n\n\
         `tiny` is `assets/fixtures/tiny_v8_640.onnx`, a near-free synthetic model: \
         its rows show the pipeline's own cost. `azaion` is `assets/models/azaion.onnx`.\n\n\
         Differences that remain between the two sides: the Rust engine has intra-op \
         spinning off (`[engine] intra_spinning`), the Python session keeps ONNX \
         Runtime's default (on); both use {threads} intra-op threads and one inter-op \
         thread.\n",
        runs = options.runs,
        threads = options.threads,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_both_json_styles() {
        let rust = r#"{"file":"a,b.jpg","views":8,"decode_ms":1.5,"decode_p50_ms":9}"#;
        let python = r#"{"file": "x", "views": 8, "decode_ms": 2.25}"#;
        assert_eq!(number(rust, "decode_ms").unwrap(), 1.5);
        assert_eq!(number(rust, "views").unwrap(), 8.0);
        assert_eq!(number(python, "decode_ms").unwrap(), 2.25);
        assert!(number(python, "engine_ms").is_err());
    }
}
