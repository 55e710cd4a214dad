//! `EngineFactory` (and, on a GPU, `GpuProbe`): what runs the model, under the
//! engine manager's start-up rules (spec A4).

use std::sync::Arc;
use std::time::Duration;

use adapters::engine::onnx::{GpuEngineFactory, OnnxEngineFactory};
use adapters::engine::openvino::OpenvinoEngineFactory;
use adapters::gpu::CudaDriverProbe;
use adapters::model_source::local::LocalModelSource;
use detections::engine::{Contender, EngineManager, EngineOptions, GpuSetup};
use domain::classes::ClassTable;
use ports::{EngineFactory, EngineKind, ModelSource};

use crate::config::{Config, EngineConfig};

pub fn build(
    config: &Config,
    source: Arc<dyn ModelSource>,
    classes: Arc<ClassTable>,
) -> Arc<EngineManager> {
    let options = EngineOptions {
        model_name: config.model.name.clone(),
        start_wait: Duration::from_secs(config.model.start_wait_secs),
        retry_interval: Duration::from_secs(config.model.retry_interval_secs),
    };
    let engine = &config.engine;
    if let EngineConfig::Auto(auto) = engine {
        let contenders = vec![
            Contender {
                kind: EngineKind::Onnx,
                factory: Arc::new(OnnxEngineFactory::new(auto.onnx())),
            },
            Contender {
                kind: EngineKind::Openvino,
                factory: Arc::new(OpenvinoEngineFactory::new(auto.openvino())),
            },
        ];
        return EngineManager::fastest_of(source, contenders, classes, options);
    }
    if let EngineConfig::Openvino(openvino) = engine {
        let factory = Arc::new(OpenvinoEngineFactory::new(openvino.into()));
        return match openvino.onnx_fallback() {
            Some(onnx) => EngineManager::with_fallback(
                source,
                factory,
                classes,
                options,
                Arc::new(OnnxEngineFactory::new(onnx)),
            ),
            None => EngineManager::new(source, factory, classes, options),
        };
    }
    let cpu_factory = Arc::new(OnnxEngineFactory::new(engine.onnx_runtime()));
    let (Some(gpu), Some(gpu_runtime)) = (engine.gpu(), engine.gpu_runtime()) else {
        return EngineManager::new(source, cpu_factory, classes, options);
    };
    let (tensorrt, fp16, int8, local_engines) = match engine {
        EngineConfig::Tensorrt(tensorrt) => (
            true,
            tensorrt.fp16,
            tensorrt.int8,
            // Engines built here before: the cache volume, asked before the Loader.
            Some(Arc::new(LocalModelSource::new(&tensorrt.cache_dir)) as Arc<dyn ModelSource>),
        ),
        EngineConfig::Auto(_)
        | EngineConfig::Onnx(_)
        | EngineConfig::Cuda(_)
        | EngineConfig::Openvino(_) => (false, false, false, None),
    };
    let setup = GpuSetup {
        probe: Arc::new(CudaDriverProbe::new(&gpu.cuda_driver, gpu.device_id)),
        tensorrt,
        fp16,
        int8,
        local_engines,
        cpu_fallback: gpu
            .allow_cpu_fallback
            .then_some(cpu_factory as Arc<dyn EngineFactory>),
    };
    EngineManager::with_gpu(
        source,
        Arc::new(GpuEngineFactory::new(gpu_runtime)),
        classes,
        options,
        setup,
    )
}
