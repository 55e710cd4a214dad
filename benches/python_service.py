"""The standing comparison: a Python detection service built the way the original one
is — FastAPI on uvicorn, two worker threads, the reference pipeline
(scripts/reference.py). `cargo xtask bench` drives it with the same load as the
Rust service and reports both side by side.

    python benches/python_service.py --model M --classes classes.json --port 8090 --threads 2
    (--engine openvino [--precision bf16]: OpenVINO instead of ONNX Runtime)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import anyio
import uvicorn
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import reference  # noqa: E402


# The reference's defaults: Ultralytics' letterbox, tiling as spec A11 says.
OPTIONS = argparse.Namespace(preprocess="letterbox", tiling="auto")


class OpenvinoSession:
    """The ONNX Runtime session's `run`, on OpenVINO: the way a Python team follows
    Ultralytics' advice for Intel CPUs. One infer request per worker thread (a request
    is not shared between threads); the ORT session stays for the model's metadata."""

    def __init__(self, model: Path, threads: int, precision: str):
        import threading

        import openvino as ov

        core = ov.Core()
        self.compiled = core.compile_model(
            str(model),
            "CPU",
            {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": threads},
        )
        self.local = threading.local()

    def run(self, _outputs, feed: dict) -> list:
        request = getattr(self.local, "request", None)
        if request is None:
            request = self.local.request = self.compiled.create_infer_request()
        (value,) = feed.values()
        request.infer({0: value})
        return [request.get_output_tensor(0).data.copy()]


def build(model: Path, classes_path: Path, threads: int, workers: int, engine_kind: str, precision: str) -> FastAPI:
    engine = reference.Engine(model, threads, None)
    if engine_kind == "openvino":
        engine.session.run = OpenvinoSession(model, threads, precision).run
    classes = reference.load_classes(classes_path)
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        # Sync endpoints run in anyio's thread pool: cap it at the worker count.
        anyio.to_thread.current_default_thread_limiter().total_tokens = workers
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    def health() -> dict:
        return {"status": "healthy", "aiAvailability": "Enabled", "errorMessage": None, "engineType": engine_kind}

    @app.post("/detect")
    def detect(file: UploadFile = File(...), config: str | None = Form(None)) -> list[dict]:
        try:
            settings = reference.load_settings(config)
        except (ValueError, AttributeError) as err:
            raise HTTPException(400, f"config: {err}")
        data = file.file.read()
        if not data:
            raise HTTPException(400, "the file is empty")
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if img is None:
            raise HTTPException(400, "not a decodable image")
        return reference.detect(img, engine, settings, classes, OPTIONS)

    return app


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--classes", required=True, type=Path)
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--workers", type=int, default=2, help="request worker threads")
    ap.add_argument("--engine", choices=["onnx", "openvino"], default="onnx")
    ap.add_argument("--precision", default="bf16", help="OpenVINO's inference precision")
    args = ap.parse_args()
    app = build(args.model, args.classes, args.threads, args.workers, args.engine, args.precision)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
