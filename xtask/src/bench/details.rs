//! The detailed sections of the document behind the summary's HTTP, tiled-photo and
//! memory rows.

use std::fmt::Write as _;

use super::frames::{self, Row};
use super::http::{Level, ModelRun};
use super::report::{Measured, fixed};
use super::{HTTP_PHOTO, Options, TILED_PHOTO};

/// `a ÷ b`, or n/a where the engine is near free (a ratio to it means nothing).
fn of_engine(x: f64, engine_ms: f64) -> String {
    if engine_ms >= 1.0 {
        fixed(x, 2)
    } else {
        "n/a".into()
    }
}

/// One table per model: both services at every concurrency.
pub fn http_section(m: &Measured, options: &Options) -> String {
    let mut out = format!(
        "## HTTP: `POST /detect` against the engine alone\n\n\
         Each model: the release service, then the Python service \
         (`benches/python_service.py`: FastAPI on uvicorn, two worker threads, the \
         reference pipeline of `scripts/reference.py`), each started on its own, warmed \
         up with 3 requests, then sent {HTTP_PHOTO} with `POST /detect`: {} requests at \
         each concurrency (as many client threads, each waiting for its answer), while \
         `/health` is probed 20 times a second. Right before, `bench-frames` and \
         `reference.py --bench` ran on {HTTP_PHOTO} ({} runs each): the ratios to \
         engine-only of both services use the Rust engine time as the reference.\n",
        options.requests,
        2 * options.runs
    );
    for run in m.services {
        let model = m.model(run.label);
        let r = &run.reference;
        let engine_ms = r.rust_engine_ms();
        let _ = write!(
            out,
            "\n### {} model ({}, {} MiB), {HTTP_PHOTO}, {} intra-op threads\n\n\
             Engine only: Rust {} ms per image = {} images/s, Python reference {} ms. \
             Full pipeline: Rust {} ms, Python reference {} ms.\n\n\
             | service | concurrency | images/s | ÷ engine-only | Rust ÷ Python | p50 ms \
             | p99 ms | p99 ÷ engine ms | /health p50 ms | /health p99 ms | /health max ms |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            run.label,
            model.map_or(String::new(), |m| m.file_name()),
            fixed(model.map_or(f64::NAN, |m| m.mib()), 1),
            options.threads,
            fixed(engine_ms, 1),
            fixed(1000.0 / engine_ms, 2),
            fixed(r.python_engine_ms(), 1),
            fixed(r.rust_full_ms(), 1),
            fixed(r.python_full_ms(), 1),
        );
        level_rows(&mut out, run, engine_ms);
    }
    out
}

fn level_rows(out: &mut String, run: &ModelRun, engine_ms: f64) {
    let sides: [(&str, &[Level]); 2] = [("Rust", &run.rust.levels), ("Python", &run.python.levels)];
    for (side, levels) in sides {
        for (l, python) in levels.iter().zip(&run.python.levels) {
            let versus = if side == "Rust" {
                fixed(l.images_per_s / python.images_per_s, 2)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {side} | {} | {:.2} | {} | {versus} | {:.1} | {:.1} | {} | {} | {} | {} |",
                l.concurrency,
                l.images_per_s,
                of_engine(l.images_per_s * engine_ms / 1000.0, engine_ms),
                l.p50_ms,
                l.p99_ms,
                of_engine(l.p99_ms / engine_ms, engine_ms),
                fixed(l.health_p50_ms, 2),
                fixed(l.health_p99_ms, 2),
                fixed(l.health_max_ms, 2),
            );
        }
    }
}

/// The tiled photo sent to both services with the real model.
pub fn tiled_section(m: &Measured, options: &Options) -> String {
    let big = frames::find(m.stages, "azaion", TILED_PHOTO);
    let real = m.service("azaion");
    let engine_ms = real.and_then(|r| r.tiled_engine_ms).unwrap_or(f64::NAN);
    let mut out = format!(
        "## Tiled photo: {TILED_PHOTO} over HTTP\n\n\
         The real model, {} views of 640 px per image (docs/pipeline.md §1); after the \
         loads above, {} requests at concurrency 1 to each service. Engine-only is \
         `bench-frames --runs 1` on this photo right before the Rust service started, all \
         views summed: {} s per image = {} images/s (the stage table: Rust {} s, Python \
         reference {} s).\n\n\
         | service | requests | s per image (p50) | s per image (max) | images/s \
         | ÷ engine-only | Rust ÷ Python |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        big.map_or(f64::NAN, |b| b.views),
        options.tiled_requests,
        fixed(engine_ms / 1000.0, 2),
        fixed(1000.0 / engine_ms, 3),
        fixed(big.map_or(f64::NAN, Row::rust_engine_ms) / 1000.0, 2),
        fixed(big.map_or(f64::NAN, Row::python_engine_ms) / 1000.0, 2),
    );
    let Some(real) = real else {
        return out;
    };
    let python = real.python.tiled.as_ref();
    for (side, level) in [("Rust", real.rust.tiled.as_ref()), ("Python", python)] {
        let Some(l) = level else { continue };
        let versus = match (side, python) {
            ("Rust", Some(p)) => fixed(l.images_per_s / p.images_per_s, 2),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "| {side} | {} | {:.2} | {:.2} | {:.3} | {} | {versus} |",
            l.requests,
            l.p50_ms / 1000.0,
            l.p99_ms / 1000.0,
            l.images_per_s,
            fixed(l.images_per_s * engine_ms / 1000.0, 2),
        );
    }
    out
}

/// Resident memory of every service, and the soak.
pub fn memory_section(m: &Measured) -> String {
    let mut out = String::from(
        "## Memory (RSS, MiB)\n\n\
         Read from `/proc/<pid>/status` of each service's process: `VmRSS` after the \
         warm-up (idle), after the loads at every concurrency (steady) and at the end \
         (after the tiled photo with the real model, after the soak with the tiny one); \
         peak is `VmHWM`, the high-water mark of the whole life of the process.\n\n\
         | model | service | idle | steady | end | peak | peak Rust ÷ Python |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for run in m.services {
        for (side, s) in [("Rust", &run.rust), ("Python", &run.python)] {
            let versus = if side == "Rust" {
                fixed(s.end.peak_mib / run.python.end.peak_mib, 2)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "| {} | {side} | {} | {} | {} | {} | {versus} |",
                run.label,
                fixed(s.idle.rss_mib, 1),
                fixed(s.loaded.rss_mib, 1),
                fixed(s.end.rss_mib, 1),
                fixed(s.end.peak_mib, 1),
            );
        }
    }
    for run in m.services {
        if let Some(soak) = &run.rust.soak {
            let _ = writeln!(
                out,
                "\nSoak ({} model, Rust, {HTTP_PHOTO} at concurrency 4): RSS after {} \
                 requests {} MiB, after {} requests {} MiB ({} %).",
                run.label,
                soak.baseline,
                fixed(soak.after_baseline_mib, 1),
                soak.total,
                fixed(soak.after_total_mib, 1),
                fixed(soak.growth_percent(), 1),
            );
        }
    }
    out
}
