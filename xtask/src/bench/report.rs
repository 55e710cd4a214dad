//! Step 4: the document. A summary table first, one row per measurement with its
//! target where the issue sets one, then the detailed sections, the machine, the
//! commit, the date and the command line.

use std::fmt::Write as _;
use std::time::Duration;

use super::frames::{self, Row};
use super::http::ModelRun;
use super::machine::{commit, machine, shell};
use super::video::{self, Video};
use super::{Bench, CONCURRENCY, HTTP_PHOTO, Model, TILED_PHOTO, details};

/// Everything one run measured.
pub struct Measured<'a> {
    pub models: &'a [Model],
    pub stages: &'a [Row],
    pub services: &'a [ModelRun],
    pub video: &'a Video,
}

impl Measured<'_> {
    pub fn service(&self, label: &str) -> Option<&ModelRun> {
        self.services.iter().find(|s| s.label == label)
    }
    pub fn model(&self, label: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.label == label)
    }
}

/// One row of the summary, already formatted.
#[derive(Debug, Clone)]
pub struct Line {
    pub what: String,
    pub rust: String,
    pub python: String,
    pub of_engine: f64,
    pub of_python: f64,
    pub target: String,
    pub met: Option<bool>,
}

impl Default for Line {
    /// No value, no ratio, no target.
    fn default() -> Self {
        Line {
            what: String::new(),
            rust: "–".into(),
            python: "–".into(),
            of_engine: f64::NAN,
            of_python: f64::NAN,
            target: String::new(),
            met: None,
        }
    }
}

/// `x` with `digits` decimals, or – when it is not a number.
pub fn fixed(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".into()
    }
}

/// A ratio: two decimals, three below 0.1 (a small one should not read 0.00).
fn ratio(x: f64) -> String {
    if x != 0.0 && x.abs() < 0.1 {
        fixed(x, 3)
    } else {
        fixed(x, 2)
    }
}

/// Whether `ok` holds, unless `value` is not a number (nothing to judge).
fn judged(value: f64, ok: bool) -> Option<bool> {
    value.is_finite().then_some(ok)
}

/// The summary table in Markdown.
pub fn table(lines: &[Line]) -> String {
    let mut out = String::from(
        "| what | Rust | Python | Rust ÷ engine-only | Rust ÷ Python | target | met? |\n\
         |---|---:|---:|---:|---:|---|---|\n",
    );
    for l in lines {
        let met = match l.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let target = if l.target.is_empty() {
            "–"
        } else {
            &l.target
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {target} | {met} |",
            l.what,
            l.rust,
            l.python,
            ratio(l.of_engine),
            ratio(l.of_python)
        );
    }
    out
}

/// The rows of the summary.
pub fn lines(m: &Measured) -> Vec<Line> {
    let nan = f64::NAN;
    let coffee = m.service("azaion").map(|s| &s.reference);
    let engine_ms = coffee.map_or(nan, Row::rust_engine_ms);
    let python_engine_ms = coffee.map_or(nan, Row::python_engine_ms);
    let engine_per_s = 1000.0 / engine_ms;
    let mut out = vec![
        Line {
            what: format!("engine-only images/s (azaion, {HTTP_PHOTO})"),
            rust: fixed(engine_per_s, 2),
            python: fixed(1000.0 / python_engine_ms, 2),
            of_engine: 1.0,
            of_python: python_engine_ms / engine_ms,
            ..Line::default()
        },
        Line {
            what: "full pipeline images/s (bench-frames `full_ms`)".into(),
            rust: fixed(1000.0 / coffee.map_or(nan, Row::rust_full_ms), 2),
            python: fixed(1000.0 / coffee.map_or(nan, Row::python_full_ms), 2),
            of_engine: engine_ms / coffee.map_or(nan, Row::rust_full_ms),
            of_python: coffee.map_or(nan, |r| r.python_full_ms() / r.rust_full_ms()),
            ..Line::default()
        },
    ];
    if let Some(real) = m.service("azaion") {
        for (r, p) in real.rust.levels.iter().zip(&real.python.levels) {
            let of_engine = r.images_per_s / engine_per_s;
            let (target, met) = if r.concurrency >= 2 {
                (
                    "÷ engine-only ≥ 0.9".into(),
                    judged(of_engine, of_engine >= 0.9),
                )
            } else {
                (String::new(), None)
            };
            out.push(Line {
                what: format!("HTTP `/detect` images/s, c={}", r.concurrency),
                rust: fixed(r.images_per_s, 2),
                python: fixed(p.images_per_s, 2),
                of_engine,
                of_python: r.images_per_s / p.images_per_s,
                target,
                met,
            });
        }
        if let (Some(r), Some(p)) = (real.rust.levels.first(), real.python.levels.first()) {
            let of_engine = r.p99_ms / engine_ms;
            out.push(Line {
                what: "HTTP p99 latency ms, c=1 (÷ engine-only ms per image)".into(),
                rust: fixed(r.p99_ms, 1),
                python: fixed(p.p99_ms, 1),
                of_engine,
                of_python: r.p99_ms / p.p99_ms,
                target: "÷ engine-only ≤ 1.15".into(),
                met: judged(of_engine, of_engine <= 1.15),
            });
        }
    }
    if let Some(tiny) = m.service("tiny") {
        let worst = tiny
            .rust
            .levels
            .iter()
            .zip(&tiny.python.levels)
            .min_by(|a, b| {
                (a.0.images_per_s / a.1.images_per_s)
                    .total_cmp(&(b.0.images_per_s / b.1.images_per_s))
            });
        if let Some((r, p)) = worst {
            let levels = CONCURRENCY.map(|c| c.to_string()).join(", ");
            let of_python = r.images_per_s / p.images_per_s;
            out.push(Line {
                what: format!(
                    "tiny model: HTTP images/s, c={} (the lowest Rust ÷ Python of c={levels})",
                    r.concurrency
                ),
                rust: fixed(r.images_per_s, 1),
                python: fixed(p.images_per_s, 1),
                of_engine: nan,
                of_python,
                target: "Rust ÷ Python ≥ 3".into(),
                met: judged(of_python, of_python >= 3.0),
            });
        }
    }
    if let Some(real) = m.service("azaion")
        && let (Some(r), Some(p)) = (&real.rust.tiled, &real.python.tiled)
    {
        let big = frames::find(m.stages, "azaion", TILED_PHOTO);
        out.push(Line {
            what: format!(
                "tiled {TILED_PHOTO} over HTTP, images/s ({} views, c=1)",
                big.map_or(nan, |b| b.views)
            ),
            rust: fixed(r.images_per_s, 3),
            python: fixed(p.images_per_s, 3),
            of_engine: r.images_per_s * real.tiled_engine_ms.unwrap_or(nan) / 1000.0,
            of_python: r.images_per_s / p.images_per_s,
            ..Line::default()
        });
    }
    let v = m.video;
    let of_engine = v.frames_per_s() / v.engine_per_s();
    out.push(Line {
        what: "720p video, inferred frames/s (azaion)".into(),
        rust: fixed(v.frames_per_s(), 3),
        python: "–".into(),
        of_engine,
        of_python: nan,
        target: "÷ engine-only ≥ 0.9".into(),
        met: judged(of_engine, of_engine >= 0.9),
    });
    if let Some(real) = m.service("azaion") {
        let (r, p) = (&real.rust, &real.python);
        let limit = 3.0 * m.model("azaion").map_or(nan, Model::mib) + 150.0;
        out.extend([
            Line {
                what: "idle RSS after warm-up, MiB (azaion)".into(),
                rust: fixed(r.idle.rss_mib, 1),
                python: fixed(p.idle.rss_mib, 1),
                of_engine: nan,
                of_python: r.idle.rss_mib / p.idle.rss_mib,
                target: format!("Rust ≤ 3 × model file + 150 = {limit:.0} MiB"),
                met: judged(r.idle.rss_mib - limit, r.idle.rss_mib <= limit),
            },
            Line {
                what: "steady RSS after the load, MiB (azaion)".into(),
                rust: fixed(r.loaded.rss_mib, 1),
                python: fixed(p.loaded.rss_mib, 1),
                of_engine: nan,
                of_python: r.loaded.rss_mib / p.loaded.rss_mib,
                ..Line::default()
            },
            Line {
                what: "peak RSS, MiB (azaion)".into(),
                rust: fixed(r.end.peak_mib, 1),
                python: fixed(p.end.peak_mib, 1),
                of_engine: nan,
                of_python: r.end.peak_mib / p.end.peak_mib,
                target: "Rust ÷ Python ≤ 0.5".into(),
                met: judged(
                    r.end.peak_mib / p.end.peak_mib,
                    r.end.peak_mib / p.end.peak_mib <= 0.5,
                ),
            },
        ]);
    }
    if let Some(soak) = m.service("tiny").and_then(|t| t.rust.soak.as_ref()) {
        let growth = soak.growth_percent();
        out.push(Line {
            what: format!(
                "soak: RSS growth from {} to {} requests (tiny)",
                soak.baseline, soak.total
            ),
            rust: format!("{} %", fixed(growth, 1)),
            python: "–".into(),
            of_engine: nan,
            of_python: nan,
            target: "≤ 10 %".into(),
            met: judged(growth, growth <= 10.0),
        });
    }
    let worst_health = |python: bool| {
        m.services
            .iter()
            .flat_map(|s| if python { &s.python } else { &s.rust }.levels.iter())
            .map(|l| l.health_p99_ms)
            .fold(nan, f64::max)
    };
    let (r, p) = (worst_health(false), worst_health(true));
    out.push(Line {
        what: "`/health` p99 ms under load (worst level, both models)".into(),
        rust: fixed(r, 2),
        python: fixed(p, 2),
        of_engine: nan,
        of_python: r / p,
        target: "Rust < 5 ms".into(),
        met: judged(r, r < 5.0),
    });
    out
}

/// The summary table of a run, as printed at the end.
pub fn summary(m: &Measured) -> String {
    table(&lines(m))
}

pub fn document(bench: &Bench, m: &Measured, took: Duration) -> String {
    let options = bench.options;
    let mut doc = format!(
        "# Performance\n\n\
         Written by `{command}` (commit {commit}, {date}; the run took {minutes:.0} min).\n\n\
         Machine: {machine}.\n\n\
         Every number comes from this one run on this one machine, so the ratios \
         compare like with like. Engine-only is the model alone on already prepared \
         tensors (`detections bench-frames`, {threads} ONNX Runtime intra-op threads): \
         the physical limit for that model and thread count.\n\n\
         ## Summary\n\n{summary}\n\
         - Rust, Python: the value measured for each side, in the unit the row names.\n\
         - Rust ÷ engine-only: Rust's images/s over engine-only images/s of the same \
         photo (1.00: nothing but the model costs time); in the latency row, Rust's p99 \
         over the engine-only time of one image.\n\
         - Rust ÷ Python: Rust's value over Python's; above 1 is better for images/s, \
         below 1 for latency and memory.\n\
         - Engine-only and full pipeline: `bench-frames` and `reference.py --bench` on \
         {HTTP_PHOTO}, {reference_runs} runs each, right before the HTTP loads (the \
         stage table below has every photo). The HTTP rows: {HTTP_PHOTO}, {requests} \
         requests at each concurrency after a warm-up. The tiled photo, the video and \
         memory: their own sections ({tiled} tiled requests).\n\
         - Where a target is not met, docs/profile.md says what bounds it, with the \
         profile that shows it.\n\n",
        command = options.command_line(),
        commit = commit(bench.root),
        date = shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        minutes = took.as_secs_f64() / 60.0,
        machine = machine(),
        threads = options.threads,
        summary = summary(m),
        requests = options.requests,
        reference_runs = 2 * options.runs,
        tiled = options.tiled_requests,
    );
    doc.push_str(&frames::section(m.stages, options.runs, options.threads));
    doc.push('\n');
    doc.push_str(&details::http_section(m, options));
    doc.push('\n');
    doc.push_str(&details::tiled_section(m, options));
    doc.push('\n');
    doc.push_str(&details::memory_section(m));
    doc.push('\n');
    doc.push_str(&video::section(
        m.video,
        options.threads,
        options.video_seconds,
    ));
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_table_marks_targets() {
        let lines = [
            Line {
                what: "HTTP images/s, c=2".into(),
                rust: "11.90".into(),
                python: "9.70".into(),
                of_engine: 0.92,
                of_python: 11.9 / 9.7,
                target: "÷ engine-only ≥ 0.9".into(),
                met: Some(true),
            },
            Line {
                what: "peak RSS".into(),
                rust: "255.7".into(),
                python: "–".into(),
                of_engine: f64::NAN,
                of_python: 0.7,
                target: "Rust ÷ Python ≤ 0.5".into(),
                met: Some(false),
            },
            Line {
                what: "engine".into(),
                ..Line::default()
            },
        ];
        let text = table(&lines);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[2],
            "| HTTP images/s, c=2 | 11.90 | 9.70 | 0.92 | 1.23 | ÷ engine-only ≥ 0.9 | yes |"
        );
        assert_eq!(
            rows[3],
            "| peak RSS | 255.7 | – | – | 0.70 | Rust ÷ Python ≤ 0.5 | **no** |"
        );
        assert_eq!(rows[4], "| engine | – | – | – | – | – | – |");
    }

    #[test]
    fn numbers_that_are_not_numbers_show_a_dash() {
        assert_eq!(fixed(1.0 / 3.0, 2), "0.33");
        assert_eq!(fixed(f64::NAN, 1), "–");
        assert_eq!(fixed(f64::INFINITY, 1), "–");
        assert_eq!(ratio(4.83 / 1172.46), "0.004");
        assert_eq!(ratio(1.234), "1.23");
        assert_eq!(ratio(f64::NAN), "–");
        assert_eq!(judged(f64::NAN, true), None);
        assert_eq!(judged(2.0, false), Some(false));
    }
}
