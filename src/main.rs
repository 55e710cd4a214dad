//! The `detections` program: the composition root, and the only code that names
//! concrete adapters. It reads like the architecture: configuration ([`config`]) picks
//! an adapter per port ([`compose`]), and a command ([`commands`]) runs the core over
//! them. The core itself is the library (`src/lib.rs`), which cannot see `adapters`
//! (see `Cargo.toml`: the dependency belongs to the `server` feature this binary needs).

mod cli;
mod commands;
mod compose;
mod config;
mod logging;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use cli::{BenchArgs, Cli, Command};
use config::{Config, EngineConfig};

/// Exit code for a configuration or set-up problem a person must fix.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => return fail(e),
    };
    if let Some(Command::BenchFrames(BenchArgs {
        threads: Some(threads),
        ..
    })) = &cli.command
    {
        match &mut config.engine {
            EngineConfig::Auto(auto) => auto.threads = *threads,
            EngineConfig::Onnx(onnx) => onnx.intra_threads = *threads,
            EngineConfig::Openvino(openvino) => openvino.threads = *threads,
            EngineConfig::Tensorrt(_) | EngineConfig::Cuda(_) => {}
        }
    }
    if cli.print_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    let _log_guard = match logging::init(&config.logging) {
        Ok(guard) => guard,
        Err(e) => return fail(e),
    };
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::GpuInfo = command {
        return commands::gpu_info(&config);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if config.detection.runtime_threads > 0 {
        runtime.worker_threads(config.detection.runtime_threads);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    if let Command::DeadLetters(args) = command {
        return runtime.block_on(commands::dead_letters(&config, args));
    }
    let classes = match compose::load_classes(&config.classes.path) {
        Ok(classes) => Arc::new(classes),
        Err(e) => return fail(e),
    };
    let core = match compose::core(&config, classes) {
        Ok(core) => core,
        Err(e) => return fail(e),
    };
    match command {
        Command::Serve => runtime.block_on(commands::serve(config, core)),
        Command::Detect(args) => {
            let decoder = compose::video::build(&config.video);
            runtime.block_on(commands::detect(args, core, decoder))
        }
        Command::BenchFrames(args) => {
            let threads = match &config.engine {
                EngineConfig::Auto(auto) => auto.threads,
                EngineConfig::Onnx(onnx) => onnx.intra_threads,
                EngineConfig::Openvino(openvino) => openvino.threads,
                EngineConfig::Tensorrt(_) | EngineConfig::Cuda(_) => 0,
            };
            runtime.block_on(commands::bench_frames(args, threads, core))
        }
        Command::GpuInfo => commands::gpu_info(&config),
        Command::DeadLetters(_) => unreachable!("answered before the engine is built"),
    }
}

/// Says what went wrong on stderr; exit code 2 (a person must fix the set-up).
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("detections: {message}");
    ExitCode::from(EXIT_CONFIG)
}
