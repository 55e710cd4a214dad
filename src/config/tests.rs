use super::*;
use figment::Jail;

fn load_in(jail: &Jail, file: Option<&str>) -> Result<Config, ConfigError> {
    Config::load(file.map(|f| jail.directory().join(f)).as_deref())
}

#[test]
fn defaults_are_the_embedded_set_up() {
    Jail::expect_with(|jail| {
        // Only what a test sets counts, not the developer's or CI's environment.
        jail.clear_env();
        let config = load_in(jail, None).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.server.bind.port(), 8080);
        assert!(matches!(
            config.model_source,
            ModelSourceConfig::Local { .. }
        ));
        assert!(matches!(config.annotations, AnnotationsConfig::File { .. }));
        // The fastest CPU engine on the machine, from the libraries `cargo xtask fetch` puts
        // under assets/ (docs/engines.md).
        let EngineConfig::Auto(auto) = &config.engine else {
            panic!("expected the auto engine, got {:?}", config.engine);
        };
        assert!(auto.library.ends_with("libonnxruntime.so.1.32.0"));
        assert!(auto.openvino_library.ends_with("libopenvino_c.so.2641"));
        Ok(())
    });
}

#[test]
fn file_then_environment_override_defaults() {
    Jail::expect_with(|jail| {
        // Only what a test sets counts, not the developer's or CI's environment.
        jail.clear_env();
        jail.create_file(
            "d.toml",
            "[detection]\nmax_running = 3\n[engine]\nkind = \"onnx\"\nnms_iou = 0.5\n",
        )?;
        jail.set_env("DETECTIONS_DETECTION__MAX_RUNNING", "4");
        let config = load_in(jail, Some("d.toml")).unwrap();
        assert_eq!(config.detection.max_running, 4);
        assert_eq!(config.engine.nms_iou(), 0.5);
        Ok(())
    });
}

#[test]
fn the_thread_plan_and_batching_are_configured_in_detection() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let defaults = load_in(jail, None).unwrap().detection.batching();
        assert_eq!(defaults.workers, 2);
        assert_eq!(defaults.max_delay, std::time::Duration::ZERO);
        jail.create_file(
            "b.toml",
            "[detection]\nbatch_workers = 1\nbatch_delay_ms = 4\nruntime_threads = 3\n",
        )?;
        jail.set_env("DETECTIONS_DETECTION__BATCH_DELAY_MS", "7");
        let config = load_in(jail, Some("b.toml")).unwrap();
        assert_eq!(config.detection.runtime_threads, 3);
        let batching = config.detection.batching();
        assert_eq!(batching.workers, 1);
        assert_eq!(batching.max_delay, std::time::Duration::from_millis(7));
        Ok(())
    });
}

#[test]
fn config_file_comes_from_the_environment_too() {
    Jail::expect_with(|jail| {
        // Only what a test sets counts, not the developer's or CI's environment.
        jail.clear_env();
        jail.create_file("e.toml", "[model]\nname = \"other.onnx\"\n")?;
        jail.set_env(CONFIG_FILE_VAR, jail.directory().join("e.toml").display());
        assert_eq!(load_in(jail, None).unwrap().model.name, "other.onnx");
        Ok(())
    });
}

#[test]
fn compatible_variables_select_the_services() {
    Jail::expect_with(|jail| {
        // Only what a test sets counts, not the developer's or CI's environment.
        jail.clear_env();
        jail.set_env("LOADER_URL", "http://l:1");
        jail.set_env("ANNOTATIONS_URL", "http://a:2");
        jail.set_env("VIDEOS_DIR", "/v");
        jail.set_env("LOG_FORMAT", "json");
        let config = load_in(jail, None).unwrap();
        assert!(
            matches!(&config.model_source, ModelSourceConfig::Loader(loader) if loader.url == "http://l:1")
        );
        assert!(
            matches!(&config.annotations, AnnotationsConfig::Http(http) if http.url == "http://a:2")
        );
        assert_eq!(config.media.videos_dir, PathBuf::from("/v"));
        assert_eq!(config.logging.format, LogFormat::Json);
        Ok(())
    });
}

#[test]
fn unknown_key_is_named_with_its_origin() {
    Jail::expect_with(|jail| {
        // Only what a test sets counts, not the developer's or CI's environment.
        jail.clear_env();
        jail.create_file("u.toml", "[server]\nbindd = \"0.0.0.0:1\"\n")?;
        let message = load_in(jail, Some("u.toml")).unwrap_err().to_string();
        assert!(message.contains("bindd"), "{message}");
        assert!(message.contains("u.toml"), "{message}");
        Ok(())
    });
}

#[test]
fn bad_value_from_the_environment_is_named() {
    Jail::expect_with(|jail| {
        // Only what a test sets counts, not the developer's or CI's environment.
        jail.clear_env();
        jail.set_env("DETECTIONS_DETECTION__MAX_RUNNING", "many");
        let message = load_in(jail, None).unwrap_err().to_string();
        assert!(message.to_lowercase().contains("max_running"), "{message}");
        assert!(
            message.contains("DETECTIONS_DETECTION__MAX_RUNNING"),
            "{message}"
        );
        Ok(())
    });
}

#[test]
fn unknown_adapter_kind_is_an_error() {
    Jail::expect_with(|jail| {
        // Only what a test sets counts, not the developer's or CI's environment.
        jail.clear_env();
        jail.set_env("DETECTIONS_ENGINE__KIND", "magic");
        let message = load_in(jail, None).unwrap_err().to_string();
        assert!(message.contains("magic"), "{message}");
        Ok(())
    });
}

#[test]
fn missing_named_file_is_an_error() {
    Jail::expect_with(|jail| {
        // Only what a test sets counts, not the developer's or CI's environment.
        jail.clear_env();
        let message = load_in(jail, Some("nope.toml")).unwrap_err().to_string();
        assert!(message.contains("nope.toml does not exist"), "{message}");
        Ok(())
    });
}

#[test]
fn printed_configuration_loads_back_unchanged() {
    Jail::expect_with(|jail| {
        // Only what a test sets counts, not the developer's or CI's environment.
        jail.clear_env();
        jail.set_env("LOADER_URL", "http://l:1");
        let config = load_in(jail, None).unwrap();
        jail.create_file("p.toml", &config.to_toml())?;
        jail.clear_env();
        assert_eq!(load_in(jail, Some("p.toml")).unwrap(), config);
        // The flattened engine keys too.
        jail.set_env("DETECTIONS_ENGINE__KIND", "tensorrt");
        jail.set_env("DETECTIONS_ENGINE__DEVICE_ID", "2");
        jail.set_env("DETECTIONS_ENGINE__MAX_BATCH", "4");
        let config = load_in(jail, None).unwrap();
        jail.create_file("t.toml", &config.to_toml())?;
        jail.clear_env();
        assert_eq!(load_in(jail, Some("t.toml")).unwrap(), config);
        assert_eq!(config.engine.model_run().max_batch, Some(4));
        Ok(())
    });
}

#[test]
fn the_tensorrt_engine_has_defaults_and_no_silent_cpu_fallback() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("DETECTIONS_ENGINE__KIND", "tensorrt");
        let config = load_in(jail, None).unwrap();
        let EngineConfig::Tensorrt(tensorrt) = &config.engine else {
            panic!("tensorrt selected: {:?}", config.engine);
        };
        assert!(
            !tensorrt.gpu.allow_cpu_fallback,
            "the CPU fallback is opt-in"
        );
        assert!(tensorrt.fp16 && !tensorrt.int8);
        assert_eq!(tensorrt.workspace_bytes, 4 << 30);
        assert_eq!(tensorrt.cache_dir, PathBuf::from("cache/engines"));
        assert_eq!(tensorrt.gpu.cuda_driver, PathBuf::from("libcuda.so.1"));

        jail.set_env("DETECTIONS_ENGINE__ALLOW_CPU_FALLBACK", "true");
        jail.set_env("DETECTIONS_ENGINE__INT8", "true");
        jail.set_env("DETECTIONS_ENGINE__DEVICE_ID", "1");
        jail.set_env("DETECTIONS_ENGINE__NMS_IOU", "0.5");
        let config = load_in(jail, None).unwrap();
        let EngineConfig::Tensorrt(tensorrt) = &config.engine else {
            panic!("tensorrt selected: {:?}", config.engine);
        };
        assert!(tensorrt.gpu.allow_cpu_fallback && tensorrt.int8);
        assert_eq!(tensorrt.gpu.device_id, 1);
        assert_eq!(config.engine.nms_iou(), 0.5);
        let gpu_runtime = config.engine.gpu_runtime().expect("a GPU engine");
        assert_eq!(gpu_runtime.device_id, 1);
        assert_eq!(gpu_runtime.workspace_bytes, 4 << 30);
        assert_eq!(gpu_runtime.onnx.library, tensorrt.gpu.library);
        assert_eq!(
            gpu_runtime.onnx.sessions, 1,
            "the GPU runs one call at a time"
        );

        // A TensorRT-only key on the CUDA engine is refused, naming the key.
        jail.set_env("DETECTIONS_ENGINE__KIND", "cuda");
        let error = load_in(jail, None).map(drop);
        assert!(error.is_err(), "int8 is not a cuda key");
        assert!(error.unwrap_err().to_string().contains("int8"));
        jail.set_env("DETECTIONS_ENGINE__INT8", "");
        jail.clear_env();
        jail.set_env("DETECTIONS_ENGINE__KIND", "cuda");
        jail.set_env("DETECTIONS_ENGINE__ALLOW_CPU_FALLBACK", "true");
        let config = load_in(jail, None).unwrap();
        assert!(matches!(
            &config.engine,
            EngineConfig::Cuda(cuda) if cuda.gpu.allow_cpu_fallback
        ));
        assert_eq!(
            config.engine.gpu_runtime().map(|g| g.workspace_bytes),
            Some(0)
        );
        // A misspelt key is named, whichever engine it is given to.
        jail.set_env("DETECTIONS_ENGINE__DEVICE_IDD", "1");
        let error = load_in(jail, None).unwrap_err().to_string();
        assert!(error.contains("device_idd"), "{error}");
        Ok(())
    });
}

#[test]
fn view_rules_come_from_the_engine_and_detection_sections() {
    use domain::geometry::Preprocess;
    use domain::tiling::Tiling;
    Jail::expect_with(|jail| {
        jail.clear_env();
        let defaults = load_in(jail, None).unwrap().view_rules();
        assert_eq!(defaults.preprocess, Preprocess::Letterbox);
        assert_eq!(defaults.tiling, Tiling::Auto);
        jail.create_file(
            "v.toml",
            "[engine]\nkind = \"onnx\"\npreprocess = \"stretch\"\n[detection]\ntiling = \"off\"\n",
        )?;
        let rules = load_in(jail, Some("v.toml")).unwrap().view_rules();
        assert_eq!(rules.preprocess, Preprocess::Stretch);
        assert_eq!(rules.tiling, Tiling::Off);
        jail.set_env("DETECTIONS_ENGINE__PREPROCESS", "squash");
        let error = load_in(jail, Some("v.toml")).unwrap_err().to_string();
        assert!(error.contains("squash"), "{error}");
        Ok(())
    });
}

#[test]
fn the_body_memory_budget_is_a_quarter_of_the_machine_capped() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let server = load_in(jail, None).unwrap().server;
        assert_eq!(server.in_memory_body_max_bytes, 32 << 20);
        assert_eq!(server.body_memory_budget(Some(4 << 30)), 1 << 30);
        assert_eq!(server.body_memory_budget(Some(64 << 30)), 2 << 30);
        assert_eq!(server.body_memory_budget(None), 1 << 30);
        jail.set_env("DETECTIONS_SERVER__BODY_MEMORY_BUDGET_BYTES", "268435456");
        let server = load_in(jail, None).unwrap().server;
        assert_eq!(server.body_memory_budget(Some(64 << 30)), 256 << 20);
        Ok(())
    });
}

#[test]
fn one_key_of_the_adapter_in_use_can_be_set_alone() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("DETECTIONS_ENGINE__LIBRARY", "/opt/ort/libonnxruntime.so");
        jail.set_env("DETECTIONS_ANNOTATIONS__PATH", "/tmp/out.jsonl");
        jail.set_env("DETECTIONS_MODEL_SOURCE__DIR", "/models");
        let config = load_in(jail, None).unwrap();
        let toml = config.to_toml();
        assert!(toml.contains("/opt/ort/libonnxruntime.so"), "{toml}");
        assert!(toml.contains("/tmp/out.jsonl"), "{toml}");
        assert!(toml.contains("\"/models\""), "{toml}");
        assert_eq!(config.engine, {
            let mut expected = Config::default().engine;
            if let EngineConfig::Auto(auto) = &mut expected {
                auto.library = "/opt/ort/libonnxruntime.so".into();
            }
            expected
        });
        // Naming another adapter still takes it, with its own keys.
        jail.clear_env();
        jail.create_file("a.toml", "[annotations]\nkind = \"http\"\n")?;
        jail.set_env("DETECTIONS_ANNOTATIONS__URL", "http://annotations:8080");
        let toml = load_in(jail, Some("a.toml")).unwrap().to_toml();
        assert!(toml.contains("kind = \"http\""), "{toml}");
        assert!(toml.contains("http://annotations:8080"), "{toml}");
        Ok(())
    });
}

#[test]
fn the_layout_override_is_one_of_the_known_layouts() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        jail.set_env("DETECTIONS_ENGINE__LAYOUT", "yolov5");
        let toml = load_in(jail, None).unwrap().to_toml();
        assert!(toml.contains("layout = \"yolov5\""), "{toml}");
        jail.set_env("DETECTIONS_ENGINE__LAYOUT", "yolov99");
        let error = load_in(jail, None).unwrap_err().to_string();
        assert!(error.contains("yolov99"), "{error}");
        Ok(())
    });
}

#[test]
fn nats_url_moves_the_shared_state_to_the_broker() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        assert_eq!(load_in(jail, None).unwrap().cluster, ClusterConfig::Local);
        jail.set_env("NATS_URL", "nats://n1:4222,nats://n2:4222");
        jail.set_env("DETECTIONS_CLUSTER__STREAM_REPLICAS", "3");
        let config = load_in(jail, None).unwrap();
        let ClusterConfig::Nats(nats) = &config.cluster else {
            panic!("NATS_URL selects the broker: {:?}", config.cluster);
        };
        assert_eq!(nats.url, "nats://n1:4222,nats://n2:4222");
        assert_eq!(nats.stream_replicas, 3);
        assert_eq!(nats.prefix, "detections");
        jail.set_env("DETECTIONS_CLUSTER__REPLICA", "r1");
        let config = load_in(jail, None).unwrap();
        let ClusterConfig::Nats(nats) = &config.cluster else {
            unreachable!()
        };
        assert_eq!(nats.replica_name(), "r1");
        Ok(())
    });
}
