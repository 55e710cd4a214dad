//! Step 1, stage by stage: for each photo, `detections bench-frames` and then
//! `scripts/reference.py --bench`, back to back, so both see the same machine load.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Bench, Model};

/// The four stages both sides report, in table order.
const STAGES: [&str; 4] = ["decode_ms", "preprocess_ms", "engine_ms", "full_ms"];

/// One photo with one model: the four stages (mean ms) of each side.
pub struct Row {
    pub file: String,
    pub model: &'static str,
    pub views: f64,
    pub rust: [f64; 4],
    pub python: [f64; 4],
    pub rust_full_p50: f64,
}

impl Row {
    pub fn rust_engine_ms(&self) -> f64 {
        self.rust[2]
    }
    pub fn rust_full_ms(&self) -> f64 {
        self.rust[3]
    }
    pub fn python_engine_ms(&self) -> f64 {
        self.python[2]
    }
    pub fn python_full_ms(&self) -> f64 {
        self.python[3]
    }
}

/// The row of `file` with `model`.
pub fn find<'a>(rows: &'a [Row], model: &str, file: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.model == model && r.file == file)
}

pub fn run(bench: &Bench, models: &[Model]) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for model in models {
        let config = bench.config(&format!("frames-{}", model.label), &model.path, 0)?;
        for name in model.photos {
            println!("==> stages: {name} ({}): Rust, then Python", model.label);
            rows.push(pair(bench, model, &config, name, bench.options.runs)?);
        }
    }
    Ok(rows)
}

/// `bench-frames` and then `reference.py --bench` on one photo, `runs` runs each.
pub fn pair(bench: &Bench, model: &Model, config: &Path, name: &str, runs: usize) -> Result<Row> {
    let photo = bench.photo(name);
    let rust_line = bench_frames(bench, config, &photo, runs)?;
    let mut reference = Command::new(&bench.python);
    reference
        .arg(bench.root.join("scripts/reference.py"))
        .arg("--model")
        .arg(&model.path)
        .arg("--classes")
        .arg(bench.root.join("classes.json"))
        .args(["--bench", &runs.to_string()])
        .args(["--threads", &bench.options.threads.to_string()])
        .arg(&photo)
        .current_dir(bench.root);
    let python_line = json_line(&mut reference, "reference.py --bench")?;
    println!("{rust_line}\n{python_line}");
    let row = Row {
        file: name.to_owned(),
        model: model.label,
        views: number(&rust_line, "views")?,
        rust: stages(&rust_line)?,
        python: stages(&python_line)?,
        rust_full_p50: number(&rust_line, "full_p50_ms")?,
    };
    let python_views = number(&python_line, "views")?;
    if python_views != row.views {
        eprintln!(
            "xtask: bench: {name}: Rust planned {} views, Python {python_views}",
            row.views
        );
    }
    Ok(row)
}

/// `detections bench-frames` on one photo: its JSON line.
pub fn bench_frames(bench: &Bench, config: &Path, photo: &Path, runs: usize) -> Result<String> {
    let mut cmd = bench.detections(config);
    cmd.arg("bench-frames")
        .args(["--runs", &runs.to_string()])
        .args(["--threads", &bench.options.threads.to_string()])
        .arg(photo);
    json_line(&mut cmd, "detections bench-frames")
}

/// Runs `cmd` and returns its last JSON line; a failure shows the command's stderr.
pub fn json_line(cmd: &mut Command, what: &str) -> Result<String> {
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

/// A number field of a JSON object line.
pub fn number(line: &str, key: &str) -> Result<f64> {
    let value: serde_json::Value =
        serde_json::from_str(line).with_context(|| format!("not a JSON line: {line}"))?;
    value
        .get(key)
        .and_then(serde_json::Value::as_f64)
        .with_context(|| format!("no number `{key}` in {line}"))
}

fn stages(line: &str) -> Result<[f64; 4]> {
    let mut out = [0.0; 4];
    for (slot, key) in out.iter_mut().zip(STAGES) {
        *slot = number(line, key)?;
    }
    Ok(out)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}", a / b)
    } else {
        "–".into()
    }
}

/// The stage table and how it is measured.
pub fn section(rows: &[Row], runs: usize, threads: usize) -> String {
    let mut out = String::from(
        "## Stage by stage: the Rust pipeline vs the Python reference\n\n\
         | file | model | views | Rust decode | Rust preprocess | Rust engine | Rust full \
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
    let _ = write!(
        out,
        "\nFor each photo, `detections bench-frames` (release build, ONNX Runtime \
         intra-op threads = {threads}) and then `scripts/reference.py --bench {runs} \
         --threads {threads}` run back to back on the same file. Each stage is run once \
         to warm up, then {runs} times; the columns are means in milliseconds (Rust p50 \
         of the full pipeline also shown).\n\n\
         - decode: read the file and decode it to RGB.\n\
         - preprocess: decode + every view (whole frame, or the 640-px tiles of \
         docs/pipeline.md §1) letterboxed and normalised into the input tensor.\n\
         - engine: the model alone (`InferenceEngine::infer` / `session.run`) on \
         already filled tensors, summed over all views of the frame (batch size 1: \
         one call per view): what engine-only means throughout.\n\
         - full: decode + preprocess + engine + decoding, NMS and the per-frame \
         filters + DTOs.\n\n\
         Ratios: Rust overhead ÷ Py overhead is (full − engine) of Rust over the same \
         for Python, the time spent outside the model (below 1: Rust spends less; \
         negative or – when the overhead is below the engine's own noise); Py full ÷ \
         Rust full is Rust's images per second relative to Python's; Rust full ÷ engine \
         of 1.00 means everything but the model is free.\n\n\
         `tiny` is `assets/fixtures/tiny_v8_640.onnx`, a near-free synthetic model: its \
         rows show the pipeline's own cost. `azaion` is `assets/models/azaion.onnx`. \
         The Rust engine has intra-op spinning off (`[engine] intra_spinning`), the \
         Python session keeps ONNX Runtime's default (on); both use {threads} intra-op \
         threads and one inter-op thread.\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_from_both_json_styles() {
        let rust = r#"{"file":"a,b.jpg","views":8,"decode_ms":1.5,"decode_p50_ms":9}"#;
        let python = r#"{"file": "x", "views": 8, "tiled": true, "decode_ms": 2.25}"#;
        assert_eq!(number(rust, "decode_ms").unwrap(), 1.5);
        assert_eq!(number(rust, "views").unwrap(), 8.0);
        assert_eq!(number(python, "decode_ms").unwrap(), 2.25);
        assert!(number(python, "engine_ms").is_err());
        assert!(number(python, "file").is_err());
        assert!(number("not json", "views").is_err());
    }

    #[test]
    fn the_stage_table_has_one_row_per_photo() {
        let row = Row {
            file: "coffee.png".into(),
            model: "azaion",
            views: 1.0,
            rust: [1.0, 2.0, 80.0, 84.0],
            python: [2.0, 4.0, 90.0, 100.0],
            rust_full_p50: 83.0,
        };
        let text = section(&[row], 5, 2);
        let line = text
            .lines()
            .find(|l| l.starts_with("| coffee.png"))
            .unwrap();
        assert_eq!(
            line,
            "| coffee.png | azaion | 1 | 1.0 | 2.0 | 80.0 | 84.0 | 83.0 | 2.0 | 4.0 | 90.0 \
             | 100.0 | 0.40 | 1.19 | 1.05 |"
        );
    }
}
