//! Building [`OpenvinoEngine`]s from ONNX models (the `Converting` step of spec A4:
//! OpenVINO compiles the model for this CPU; with a cache folder a restart loads the
//! compiled model instead).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use openvino::{
    Core, DeviceType, Dimension, ElementType, Model, PartialShape, PropertyKey, RwPropertyKey,
};
use ports::{
    BatchSize, ComputePrecision, EngineError, EngineFactory, InferenceEngine, ModelArtifact,
    ModelSpec,
};

use super::engine::OpenvinoEngine;
use super::{OpenvinoEngineConfig, PrecisionChoice, library};
use crate::engine::model::metadata::read_metadata;
use crate::engine::model::{DeclaredTensor, SpecRules, TensorElement, read_spec};

/// Loads ONNX models into OpenVINO on the CPU.
#[derive(Debug, Clone)]
pub struct OpenvinoEngineFactory {
    config: OpenvinoEngineConfig,
}

/// What the engine will compute in, and why (logged and shown by `/health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrecisionDecision {
    pub precision: ComputePrecision,
    pub reason: String,
}

/// `choice` on a CPU whose optimisation capabilities are `capabilities` (OpenVINO's
/// `OPTIMIZATION_CAPABILITIES`, e.g. `BF16 WINOGRAD FP32 INT8 BIN EXPORT_IMPORT`). A
/// precision the CPU lacks is refused, never quietly replaced.
pub(crate) fn decide_precision(
    choice: PrecisionChoice,
    capabilities: &str,
) -> Result<PrecisionDecision, EngineError> {
    let has = |cap: &str| capabilities.split_whitespace().any(|c| c == cap);
    let decision = |precision, reason: String| Ok(PrecisionDecision { precision, reason });
    let lacking = |asked: &str, cap: &str| {
        Err(EngineError::Backend(format!(
            "precision {asked} was asked, but this CPU does not report {cap} (its \
             capabilities: {capabilities}); use precision = \"auto\" or \"f32\""
        )))
    };
    match choice {
        PrecisionChoice::Auto if has("BF16") => {
            decision(ComputePrecision::Bf16, "auto: the CPU reports BF16".into())
        }
        PrecisionChoice::Auto => decision(
            ComputePrecision::F32,
            format!("auto: no BF16 on this CPU (capabilities: {capabilities})"),
        ),
        PrecisionChoice::F32 => decision(ComputePrecision::F32, "configured".into()),
        PrecisionChoice::Bf16 if has("BF16") => {
            decision(ComputePrecision::Bf16, "configured".into())
        }
        PrecisionChoice::Bf16 => lacking("bf16", "BF16"),
        PrecisionChoice::F16 if has("FP16") => decision(ComputePrecision::F16, "configured".into()),
        PrecisionChoice::F16 => lacking("f16", "FP16"),
    }
}

fn runtime(what: &str) -> impl Fn(openvino::InferenceError) -> EngineError + '_ {
    move |e| EngineError::Runtime(format!("OpenVINO {what}: {e}"))
}

fn unusable(name: &str) -> impl Fn(openvino::InferenceError) -> EngineError + '_ {
    move |e| EngineError::Model(format!("{name}: {e}"))
}

impl OpenvinoEngineFactory {
    /// Cheap: the library is loaded by the first build, so a missing library shows as an
    /// engine error (spec A4 `Error`), not a start-up failure.
    pub fn new(config: OpenvinoEngineConfig) -> Self {
        Self { config }
    }

    /// Builds the concrete engine (tests and benches; the service uses the port).
    pub fn build_engine(&self, model: &ModelArtifact) -> Result<OpenvinoEngine, EngineError> {
        library::load(&self.config.library)?;
        crate::engine::files::readable(model)?;
        crate::engine::priority::lower_current_thread(self.config.inference_nice);
        catch_unwind(AssertUnwindSafe(|| self.compile(model))).unwrap_or_else(|_| {
            Err(EngineError::Runtime(
                "OpenVINO panicked while compiling".into(),
            ))
        })
    }

    fn compile(&self, artifact: &ModelArtifact) -> Result<OpenvinoEngine, EngineError> {
        let name = artifact.name.as_str();
        let path = artifact
            .path
            .to_str()
            .ok_or_else(|| EngineError::Model(format!("{name}: the path is not UTF-8")))?;
        let mut core = Core::new()
            .map_err(|e| EngineError::Runtime(format!("OpenVINO did not start: {e}")))?;
        let cpu = DeviceType::CPU;
        let capabilities = core
            .get_property(&cpu, &PropertyKey::DeviceCapabilities)
            .map_err(runtime("CPU capabilities"))?;
        let decision = decide_precision(self.config.precision, &capabilities)?;
        let requests = self.config.requests.max(1);
        let threads = self.config.threads_per_request() * requests;
        let mut set = |key: RwPropertyKey, value: &str| {
            core.set_property(&cpu, &key, value)
                .map_err(runtime("CPU setting"))
        };
        set(
            RwPropertyKey::HintInferencePrecision,
            decision.precision.as_str(),
        )?;
        set(RwPropertyKey::InferenceNumThreads, &threads.to_string())?;
        set(RwPropertyKey::NumStreams, &requests.to_string())?;
        if let Some(dir) = &self.config.cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                EngineError::Runtime(format!(
                    "OpenVINO cache folder {} cannot be created: {e}",
                    dir.display()
                ))
            })?;
            set(RwPropertyKey::CacheDir, &dir.display().to_string())?;
        }
        let mut model = core
            .read_model_from_file(path, "")
            .map_err(unusable(name))?;
        let read = read_spec(
            &declared(&model, true).map_err(unusable(name))?,
            &declared(&model, false).map_err(unusable(name))?,
            &read_metadata(&artifact.path),
            SpecRules {
                layout: self.config.layout,
                max_batch: self.config.max_batch,
            },
        )
        .map_err(|e| {
            EngineError::Model(format!(
                "{name}: {}",
                crate::engine::model::model_reason(&e)
            ))
        })?;
        if model.is_dynamic() {
            model
                .reshape_single_input(&input_shape(&read.spec).map_err(unusable(name))?)
                .map_err(unusable(name))?;
        }
        let mut compiled = core.compile_model(&model, cpu).map_err(unusable(name))?;
        let effective = compiled
            .get_property(&PropertyKey::Rw(RwPropertyKey::HintInferencePrecision))
            .ok()
            .and_then(|p| ComputePrecision::from_name(&p))
            .unwrap_or(decision.precision);
        if effective != decision.precision {
            tracing::warn!(
                asked = decision.precision.as_str(),
                got = effective.as_str(),
                "OpenVINO computes in another precision than asked"
            );
        }
        let requests = (0..requests)
            .map(|_| compiled.create_infer_request())
            .collect::<Result<Vec<_>, _>>()
            .map_err(runtime("infer request"))?;
        tracing::info!(
            model = %name,
            precision = effective.as_str(),
            why = %decision.reason,
            threads,
            requests = requests.len(),
            cache = ?self.config.cache_dir,
            spec = ?read.spec,
            batch = %read.batch_reason,
            "OpenVINO engine ready"
        );
        Ok(OpenvinoEngine::new(
            read.spec,
            effective,
            compiled,
            requests,
            self.config.inference_nice,
        ))
    }
}

/// The model's inputs (or outputs), a dynamic dimension as -1.
fn declared(model: &Model, inputs: bool) -> Result<Vec<DeclaredTensor>, openvino::InferenceError> {
    let count = if inputs {
        model.get_inputs_len()?
    } else {
        model.get_outputs_len()?
    };
    (0..count)
        .map(|index| {
            let node = if inputs {
                model.get_input_by_index(index)?
            } else {
                model.get_output_by_index(index)?
            };
            let dims = node
                .get_partial_shape()?
                .get_dimensions()
                .iter()
                .map(|d| if d.is_dynamic() { -1 } else { d.get_min() })
                .collect();
            Ok(DeclaredTensor {
                name: node.get_name()?,
                element: match node.get_element_type()? {
                    ElementType::F32 => TensorElement::F32,
                    ElementType::F16 => TensorElement::F16,
                    other => TensorElement::Other(other.to_string()),
                },
                dims,
            })
        })
        .collect()
}

/// The input shape the engine feeds: the batch the spec allows (bounded where dynamic),
/// RGB, the size the frames are letterboxed to.
fn input_shape(spec: &ModelSpec) -> Result<PartialShape, openvino::InferenceError> {
    let batch = match spec.batch {
        BatchSize::Fixed(n) => Dimension::new(n as i64, n as i64),
        BatchSize::Dynamic { max } => Dimension::new(1, max as i64),
    };
    let height = i64::from(spec.input_size.height());
    let width = i64::from(spec.input_size.width());
    PartialShape::new(
        4,
        &[
            batch,
            Dimension::new(3, 3),
            Dimension::new(height, height),
            Dimension::new(width, width),
        ],
    )
}

impl EngineFactory for OpenvinoEngineFactory {
    fn build(&self, model: &ModelArtifact) -> Result<Arc<dyn InferenceEngine>, EngineError> {
        Ok(Arc::new(self.build_engine(model)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPYC: &str = "BF16 WINOGRAD FP32 INT8 BIN EXPORT_IMPORT";
    const OLD_XEON: &str = "WINOGRAD FP32 INT8 BIN EXPORT_IMPORT";

    #[test]
    fn auto_takes_bf16_where_the_cpu_has_it_and_f32_elsewhere() {
        let chosen = decide_precision(PrecisionChoice::Auto, EPYC).unwrap();
        assert_eq!(chosen.precision, ComputePrecision::Bf16);
        assert!(chosen.reason.contains("reports BF16"), "{}", chosen.reason);
        let chosen = decide_precision(PrecisionChoice::Auto, OLD_XEON).unwrap();
        assert_eq!(chosen.precision, ComputePrecision::F32);
        assert!(chosen.reason.contains("no BF16"), "{}", chosen.reason);
    }

    #[test]
    fn a_precision_the_cpu_lacks_is_refused_with_its_capabilities() {
        let refused = decide_precision(PrecisionChoice::Bf16, OLD_XEON).unwrap_err();
        assert!(
            matches!(&refused, EngineError::Backend(m) if m.contains("does not report BF16") && m.contains("WINOGRAD")),
            "{refused}"
        );
        assert!(decide_precision(PrecisionChoice::F16, EPYC).is_err());
        assert_eq!(
            decide_precision(PrecisionChoice::F32, OLD_XEON)
                .unwrap()
                .precision,
            ComputePrecision::F32
        );
    }
}
