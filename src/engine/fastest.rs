//! `kind = "auto"`: every contender is built, timed on the model's own input shape on
//! this machine, and the fastest serves; the others are dropped. The composition root
//! offers only contenders that pass the reference's accuracy gate (by default ONNX
//! Runtime and OpenVINO in f32, which give the same answers), so speed alone decides.
//!
//! Transitions: `Downloading → Converting → Enabled`, or `Warning` naming a contender
//! that could not start (the rest still compete), or `Error` when none starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::availability::{Availability, Reason};
use ports::{EngineKind, InferenceEngine};

use super::failure::{BuildFailure, StartFailure};
use super::{EngineManager, blank_input};

/// Timed calls per contender.
const CALLS: usize = 5;

/// A contender that started, with its median call time.
struct Timed {
    kind: EngineKind,
    engine: Arc<dyn InferenceEngine>,
    median: Duration,
}

impl EngineManager {
    pub(super) async fn start_fastest(self: &Arc<Self>) -> Result<(), StartFailure> {
        let artifact = self.load_model().await?;
        self.move_to(Availability::Converting);
        let mut started = Vec::new();
        let mut failed = Vec::new();
        for contender in &self.contenders {
            match self.build_engine(&contender.factory, &artifact).await {
                Ok(engine) => started.push((contender.kind, engine)),
                Err(failure) => {
                    tracing::warn!(engine = %contender.kind, %failure, "engine contender cannot start");
                    failed.push((contender.kind, failure));
                }
            }
        }
        if started.is_empty() {
            return Err(StartFailure::NoContender(failed));
        }
        let mut timed = tokio::task::spawn_blocking(move || time_each(started))
            .await
            .map_err(BuildFailure::from)??;
        timed.sort_by_key(|t| t.median);
        let comparison = timed
            .iter()
            .map(|t| format!("{} {:.1} ms", label(t), t.median.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ");
        let fastest = timed.swap_remove(0);
        tracing::info!(
            engine = %label(&fastest),
            per_call = %comparison,
            "engine chosen: the fastest on this machine"
        );
        let next = if failed.is_empty() {
            Availability::Enabled
        } else {
            let why = failed
                .iter()
                .map(|(kind, failure)| format!("{kind} cannot start: {failure}"))
                .collect::<Vec<_>>()
                .join("; ");
            Availability::Warning(Reason::new(format!(
                "{why}; serving on {} (engine auto)",
                fastest.kind
            )))
        };
        self.install_as(fastest.engine, next);
        Ok(())
    }
}

fn label(timed: &Timed) -> String {
    match timed.engine.precision() {
        Some(precision) => format!("{} ({})", timed.kind, precision.as_str()),
        None => timed.kind.to_string(),
    }
}

/// Each engine's median time per call on a blank input of its shape. One engine at a
/// time, after one untimed call: calls in turns measured each engine slower than it is
/// (the other's threads were still winding down), and both alike.
fn time_each(
    started: Vec<(EngineKind, Arc<dyn InferenceEngine>)>,
) -> Result<Vec<Timed>, BuildFailure> {
    started
        .into_iter()
        .map(|(kind, engine)| {
            let input = blank_input(engine.as_ref());
            engine.infer(&input).map_err(BuildFailure::WarmUp)?;
            let mut times = Vec::with_capacity(CALLS);
            for _ in 0..CALLS {
                let at = Instant::now();
                engine.infer(&input).map_err(BuildFailure::WarmUp)?;
                times.push(at.elapsed());
            }
            times.sort();
            Ok(Timed {
                kind,
                engine,
                median: times[CALLS / 2],
            })
        })
        .collect()
}
