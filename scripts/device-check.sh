#!/usr/bin/env bash
# The GPU evidence of issue 6 in one run on a device machine (no Rust toolchain, no
# network, no TensorRT there): build here, carry .device/, run there once.
#
#   scripts/device-check.sh stage   here: release build; the stripped binary, the ONNX
#                                   Runtime library, two fixture models, two photos
#                                   and classes.json into .device/ (under 64 MiB)
#   scripts/device-check.sh run     there, from the repository root: writes to $OUT
#                                   (else .device/out) what the binary sees of the
#                                   GPU, the CPU engine at the machine's core count,
#                                   and the TensorRT backend's loud failure
#
# The device tool: run(command="scripts/device-check.sh run", carry=[".device"]).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=.device

stage() {
  cargo build --release -p detections
  rm -rf "$DEVICE"
  mkdir -p "$DEVICE/models"
  objcopy --strip-all target/release/detections "$DEVICE/detections"
  cp assets/onnxruntime/libonnxruntime.so.1.32.0 "$DEVICE/"
  cp assets/fixtures/tiny_v8_640.onnx assets/fixtures/v8_static_640.onnx "$DEVICE/models/"
  cp assets/photos/coffee.png assets/photos/bus_1920x1080.jpg classes.json "$DEVICE/"
  du -sh "$DEVICE"
}

# config <file> <engine lines…>: a configuration on the carried files.
config() {
  local file=$1
  shift
  {
    printf '[server]\nbind = "127.0.0.1:0"\n'
    printf '[classes]\npath = "%s/classes.json"\n' "$PWD/$DEVICE"
    printf '[model]\nname = "tiny_v8_640.onnx"\n'
    printf '[model_source]\nkind = "local"\ndir = "%s/models"\n' "$PWD/$DEVICE"
    printf '[annotations]\nkind = "file"\npath = "%s/annotations.jsonl"\n' "$OUT"
    printf '[outbox]\nspool_dir = "%s/spool"\n' "$OUT"
    printf '[engine]\n'
    printf '%s\n' "$@"
  } >"$file"
}

run() {
  OUT=${OUT:-$DEVICE/out}
  mkdir -p "$OUT"
  OUT=$(cd "$OUT" && pwd)
  local bin=$DEVICE/detections cores
  cores=$(nproc)
  {
    echo "cores: $cores"
    uname -srm
    nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv || true
  } >"$OUT/machine.txt" 2>&1

  # What the binary sees: name, compute capability, multiprocessors, engine file name.
  config "$OUT/gpu.toml" 'kind = "tensorrt"' 'library = "libonnxruntime.so.1"' 'int8 = true'
  "$bin" --config "$OUT/gpu.toml" gpu-info >"$OUT/gpu-info.json" 2>"$OUT/gpu-info.err" || true

  # The CPU engine at the machine's core count: the pipeline's own cost (tiny) and a
  # model with real output decoding (v8_static_640).
  config "$OUT/cpu.toml" 'kind = "onnx"' "library = \"$PWD/$DEVICE/libonnxruntime.so.1.32.0\"" \
    "intra_threads = $cores"
  "$bin" --config "$OUT/cpu.toml" bench-frames --runs 20 \
    "$DEVICE/coffee.png" "$DEVICE/bus_1920x1080.jpg" >"$OUT/bench-tiny.jsonl" 2>"$OUT/bench-tiny.err" || true
  sed -i 's/tiny_v8_640.onnx/v8_static_640.onnx/' "$OUT/cpu.toml"
  "$bin" --config "$OUT/cpu.toml" bench-frames --runs 20 \
    "$DEVICE/coffee.png" "$DEVICE/bus_1920x1080.jpg" >"$OUT/bench-v8.jsonl" 2>"$OUT/bench-v8.err" || true

  # The TensorRT backend without TensorRT or the GPU ONNX Runtime: a detection must
  # answer 503 and /health must say Error with a reason a person can act on.
  "$bin" --config "$OUT/gpu.toml" serve >"$OUT/serve.out" 2>"$OUT/serve.err" &
  local pid=$! address=""
  for _ in $(seq 100); do
    address=$(grep -o 'address=[0-9.:]*' "$OUT/serve.err" | head -1 | cut -d= -f2 || true)
    [[ -n $address ]] && break
    sleep 0.1
  done
  python3 - "$address" "$DEVICE/coffee.png" >"$OUT/tensorrt-backend.txt" 2>&1 <<'PY' || true
import json, sys, time, urllib.request, uuid
base = f"http://{sys.argv[1]}"
photo = open(sys.argv[2], "rb").read()
boundary = uuid.uuid4().hex
body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"coffee.png\"\r\n"
        f"Content-Type: image/png\r\n\r\n").encode() + photo + f"\r\n--{boundary}--\r\n".encode()
request = urllib.request.Request(base + "/detect", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
try:
    with urllib.request.urlopen(request, timeout=120) as response:
        print("POST /detect", response.status, response.read()[:300])
except urllib.error.HTTPError as e:
    print("POST /detect", e.code, e.read()[:300])
time.sleep(1)
print("GET /health", urllib.request.urlopen(base + "/health").read().decode())
PY
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for file in machine.txt gpu-info.json gpu-info.err bench-tiny.jsonl bench-v8.jsonl tensorrt-backend.txt; do
    echo "== $file"
    cat "$OUT/$file"
  done
}

case ${1:-} in
  stage) stage ;;
  run) run ;;
  *)
    sed -n '2,14p' "$0"
    exit 2
    ;;
esac
