#!/usr/bin/env bash
# End to end over real HTTP: the release `detections` binary against the
# Loader/Annotations stand-in (the release `standin` binary). The model comes
# from the stand-in's /load, a detection with a bearer token runs the media
# lifecycle and its annotation reaches the stand-in's /annotations; then SIGTERM
# ends the service with exit 0. Run by `cargo xtask test` (stage e2e).
set -euo pipefail

usage() {
  cat <<USAGE
usage: $(basename "$0") [--help]

Environment: E2E_SERVICE_BIN, E2E_STANDIN_BIN (default \$CARGO_TARGET_DIR/release/…,
else target/release/…); needs assets/ (cargo xtask fetch).
USAGE
}
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
release=${CARGO_TARGET_DIR:-$root/target}/release
detections=${E2E_SERVICE_BIN:-$release/detections}
standin=${E2E_STANDIN_BIN:-$release/standin}
work=$(mktemp -d)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "RELEASE E2E FAILED: $*" >&2
  echo "--- service log" >&2
  tail -n 30 "$work/service.log" >&2 || true
  exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$standin" --models-dir "$root/assets/models" --bind 127.0.0.1:0 2>"$work/standin.log" &
pids+=($!)
for _ in $(seq 100); do
  addr=$(sed -n 's/.*listening address=\([0-9.:]*\).*/\1/p' "$work/standin.log" | head -n1)
  [[ -n "$addr" ]] && break
  sleep 0.1
done
[[ -n "${addr:-}" ]] || fail "the stand-in did not start: $(cat "$work/standin.log")"
standin_url=http://$addr

port=$(free_port)
service=http://127.0.0.1:$port
LOADER_URL=$standin_url ANNOTATIONS_URL=$standin_url \
  DETECTIONS_SERVER__BIND=127.0.0.1:$port \
  DETECTIONS_MODEL_SOURCE__DOWNLOAD_DIR="$work/cache" \
  DETECTIONS_OUTBOX__SPOOL_DIR="$work/spool" \
  VIDEOS_DIR="$work/videos" IMAGES_DIR="$work/images" \
  "$detections" serve >"$work/service.log" 2>&1 &
service_pid=$!
pids+=("$service_pid")
for _ in $(seq 100); do
  curl -fsS "$service/health" >/dev/null 2>&1 && break
  sleep 0.1
done
health=$(curl -fsS "$service/health") || fail "/health does not answer"
[[ "$health" == *'"aiAvailability":"None"'* ]] || fail "unexpected /health before the first detection: $health"
echo "health: $health"

token=$(curl -fsS -H 'content-type: application/json' -d '{"refreshToken":"e2e"}' \
  "$standin_url/auth/refresh" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[[ -n "$token" ]] || fail "no token from the stand-in"
out=$(curl -sS --fail-with-body --max-time 180 -H "Authorization: Bearer $token" \
  -H 'x-refresh-token: e2e' -F "file=@$root/assets/photos/bus.jpg" "$service/detect") ||
  fail "detect: $out"
[[ "$out" == \[*classNum*\] ]] || fail "no detections: $out"
echo "detections: ${out:0:160}…"

curl -fsS "$standin_url/_standin/calls?path=/load" | grep -q '"path":"/load/' ||
  fail "the model did not come from the stand-in's /load"
for _ in $(seq 100); do
  curl -fsS "$standin_url/_standin/calls?path=/annotations" | grep -q '"path":"/annotations"' && break
  sleep 0.1
done
curl -fsS "$standin_url/_standin/calls?path=/annotations" | grep -q '"path":"/annotations"' ||
  fail "no annotation reached the stand-in"
curl -fsS "$service/ready" >/dev/null || fail "/ready is not 200 after a detection"
curl -fsS "$service/metrics" | grep -q '^detections_' || fail "/metrics has no detections_ series"
echo "model loaded from the stand-in, annotation delivered, /ready 200, /metrics served"

kill -TERM "$service_pid"
start=$SECONDS
rc=0
wait "$service_pid" || rc=$?
((rc == 0)) || fail "the service exited $rc after SIGTERM"
echo "SIGTERM: exit 0 after $((SECONDS - start))s"
echo "RELEASE E2E OK"
