#!/usr/bin/env bash
# Stage what the images COPY into deploy/dist/: the release binaries (built on the
# host, `cargo build --release -p detections -p standin`), the ONNX Runtime
# library from assets/onnxruntime/ and OpenVINO's from assets/openvino/
# (`cargo xtask fetch --runtime-only`).
set -euo pipefail

usage() {
  cat <<USAGE
usage: $(basename "$0") [--help]

Copies \$CARGO_TARGET_DIR/release/{detections,standin} (default target/),
assets/onnxruntime/* and assets/openvino/* into deploy/dist/. The binaries lose their debug info
(objcopy --strip-debug; symbols stay) unless STAGE_STRIP_DEBUG=0.
USAGE
}
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
dist=$root/deploy/dist
rm -rf "$dist"
mkdir -p "$dist/onnxruntime" "$dist/openvino"
for bin in detections standin; do
  if [[ ! -x "$target/release/$bin" ]]; then
    echo "missing $target/release/$bin: cargo build --release -p detections -p standin" >&2
    exit 1
  fi
  cp "$target/release/$bin" "$dist/$bin"
  # Debug info out, symbols kept (backtraces still name functions).
  if [[ "${STAGE_STRIP_DEBUG:-1}" == 1 ]] && command -v objcopy >/dev/null; then
    objcopy --strip-debug "$dist/$bin"
  fi
done
shopt -s nullglob
libs=("$root"/assets/onnxruntime/libonnxruntime*.so*)
if ((${#libs[@]} == 0)); then
  echo "missing assets/onnxruntime/libonnxruntime*.so*: cargo xtask fetch --runtime-only" >&2
  exit 1
fi
cp "${libs[@]}" "$dist/onnxruntime/"
openvino=("$root"/assets/openvino/*.so*)
if ((${#openvino[@]} == 0)); then
  echo "missing assets/openvino/*.so*: cargo xtask fetch --runtime-only" >&2
  exit 1
fi
cp "${openvino[@]}" "$dist/openvino/"
echo "staged $(du -sh "$dist" | cut -f1) in $dist"
