#!/usr/bin/env bash
# The cluster of deploy/cluster/docker-compose.yml on this machine's Docker engine:
# three NATS servers (JetStream, three copies of everything), three replicas, HAProxy.
# Checks, through HAProxy only: every replica becomes ready, on the broker, and says
# which it is; detections on round-robin replicas all reach one event stream served
# by one of them; a replica killed outright leaves the service answering; with one
# NATS server of three killed, detections, the stream and readiness go on; a job
# whose replica is killed is finished by another. Skipped,
# loudly, where no Docker daemon answers.
#
# Needs the release binaries (cargo build --release -p detections -p standin),
# assets/ (cargo xtask fetch) and debootstrap. Run by `cargo xtask test` (stage e2e).
set -euo pipefail

case "${1:-}" in
  -h | --help)
    echo "usage: $(basename "$0")   (E2E_CLUSTER_PORT: HAProxy on 127.0.0.1, default 18090; E2E_KEEP=1 keeps it)"
    exit 0
    ;;
  "") ;;
  *) echo "usage: $(basename "$0") [--help]" >&2; exit 2 ;;
esac

if ! docker info >/dev/null 2>&1; then
  echo "######################################################################"
  echo "### SKIPPED: no Docker daemon — the cluster test did not run        ###"
  echo "######################################################################"
  exit 0
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
deploy=$root/deploy
cd "$root"
export DOCKER_BUILDKIT=0
export COMPOSE_FILE=$deploy/cluster/docker-compose.yml
export COMPOSE_PROJECT_NAME=detections-cluster-e2e
export DEPLOY_ENV_FILE=/nonexistent
# shellcheck source=../lib.sh
source "$deploy/lib.sh"
tag=cluster-e2e
export DETECTIONS_IMAGE=detections DETECTIONS_TAG=$tag
export NATS_IMAGE=detections-nats NATS_TAG=$tag
export HAPROXY_IMAGE=detections-haproxy HAPROXY_TAG=$tag
export STANDIN_IMAGE=detections-standin STANDIN_TAG=$tag
export STANDIN_MODELS_DIR=$root/assets/models CLASSES_FILE=$root/classes.json
export CLUSTER_BIND=127.0.0.1 CLUSTER_PORT=${E2E_CLUSTER_PORT:-18090}
service=http://127.0.0.1:$CLUSTER_PORT
photo=$root/assets/photos/bus.jpg
work=$root/.cache/e2e-cluster
mkdir -p "$work"

step() { printf '\n--- %s (%ss)\n' "$*" "$SECONDS"; }
fail() {
  echo "CLUSTER FAILED: $*" >&2
  compose --profile dev logs --tail 30 2>&1 | sed 's/^/  | /' >&2 || true
  exit 1
}
cleanup() {
  [[ -z "${stream_pid:-}" ]] || kill "$stream_pid" 2>/dev/null || true
  if [[ "${E2E_KEEP:-0}" != 1 ]]; then
    compose --profile dev down --volumes >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

step "images"
"$deploy/build-base-image.sh"
"$deploy/stage.sh"
docker build -q -f "$deploy/Dockerfile" -t "$DETECTIONS_IMAGE:$tag" . >/dev/null
docker build -q -f "$deploy/standin.Dockerfile" -t "$STANDIN_IMAGE:$tag" . >/dev/null
docker build -q -f "$deploy/cluster/nats.Dockerfile" -t "$NATS_IMAGE:$tag" . >/dev/null
docker build -q -f "$deploy/cluster/haproxy.Dockerfile" -t "$HAPROXY_IMAGE:$tag" . >/dev/null

step "three NATS servers, three replicas, HAProxy"
compose --profile dev down --volumes >/dev/null 2>&1 || true
compose --profile dev up -d >/dev/null
ready=0
for _ in $(seq 120); do
  if curl -fsS -o /dev/null "$service/ready" 2>/dev/null; then
    ready=1
    break
  fi
  sleep 1
done
((ready)) || fail "no replica became ready through HAProxy"

step "every replica in rotation, on the broker"
declare -A seen=()
for _ in $(seq 60); do
  health=$(curl -fsS "$service/health") || fail "/health through HAProxy"
  [[ "$health" == *'"broker":"connected"'* ]] || fail "a replica without its broker: $health"
  replica=$(sed -E 's/.*"replica":"([^"]+)".*/\1/' <<<"$health")
  seen[$replica]=1
  ((${#seen[@]} == 3)) && break
  sleep 0.5
done
((${#seen[@]} == 3)) || fail "replicas seen through HAProxy: ${!seen[*]}"
echo "replicas: ${!seen[*]}"

step "one event stream: a detection reaches a stream served by another replica"
curl -sSN --max-time 60 "$service/detect/stream" >"$work/stream.txt" &
stream_pid=$!
sleep 1
for _ in 1 2 3; do
  out=$(curl -sS --fail-with-body --max-time 120 -F "file=@$photo" "$service/detect") || fail "detect: $out"
  [[ "$out" == *classNum* ]] || fail "no detections in $out"
done
for _ in $(seq 50); do
  [[ $(grep -c '"mediaStatus":"AIProcessed"' "$work/stream.txt" || true) -ge 3 ]] && break
  sleep 0.2
done
[[ $(grep -c '"mediaStatus":"AIProcessed"' "$work/stream.txt" || true) -ge 3 ]] ||
  fail "the stream saw $(grep -c AIProcessed "$work/stream.txt" || true) of 3 detections: $(head -c 400 "$work/stream.txt")"
kill "$stream_pid" 2>/dev/null || true
stream_pid=""
echo "3 detections on round-robin replicas, all on one stream"

step "a replica killed outright: the service keeps answering"
compose kill detections-2 >/dev/null
sleep 5
for i in $(seq 6); do
  code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 120 -F "file=@$photo" "$service/detect") ||
    fail "detect $i after the kill"
  [[ "$code" == 200 ]] || fail "detect $i after the kill answered $code"
done
echo "6 detections after the kill, all 200"

step "one NATS server of three killed: detection and the stream go on"
compose kill nats-2 >/dev/null
sleep 3
curl -sSN --max-time 120 "$service/detect/stream" >"$work/stream2.txt" &
stream_pid=$!
sleep 1
for i in 1 2 3; do
  out=$(curl -sS --fail-with-body --max-time 120 -F "file=@$photo" "$service/detect") ||
    fail "detect $i with one NATS server down: $out"
done
# A failover: the streams elect new leaders, subscribers' consumers are made again.
for _ in $(seq 300); do
  [[ $(grep -c '"mediaStatus":"AIProcessed"' "$work/stream2.txt" || true) -ge 3 ]] && break
  sleep 0.2
done
[[ $(grep -c '"mediaStatus":"AIProcessed"' "$work/stream2.txt" || true) -ge 3 ]] ||
  fail "with one NATS server down the stream saw $(grep -c AIProcessed "$work/stream2.txt" || true) of 3"
kill "$stream_pid" 2>/dev/null || true
stream_pid=""
curl -fsS -o /dev/null "$service/ready" || fail "not ready with two NATS servers of three"
echo "3 detections on the stream, and ready, with nats-2 down"

step "a job through HAProxy: its replica killed, another replica finishes it"
# A clip in the shared media volume, known to the stand-in (the Annotations service)
# as media "walk".
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc=size=320x240:rate=10:duration=20 \
  -c:v libx264 -pix_fmt yuv420p "$work/walk.mp4"
alive=$(compose ps --services --filter status=running | grep '^detections-' | head -1)
[[ -n "$alive" ]] || fail "no replica left running"
docker cp "$work/walk.mp4" "$(compose ps -q "$alive"):/app/media/videos/walk.mp4" >/dev/null
compose exec -T "$alive" curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' \
  -d '{"id":"walk","path":"/app/media/videos/walk.mp4"}' http://annotations:8080/_standin/media ||
  fail "the stand-in did not take the media"
out=$(curl -sS --fail-with-body --max-time 30 -X POST -H 'Authorization: Bearer e2e' \
  -H 'Content-Type: application/json' -d '{"frame_period_recognition":1}' "$service/detect/walk") ||
  fail "the job was not started: $out"
job() { curl -sS --max-time 10 "$service/detect/walk" || true; }
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
runner=""
for _ in $(seq 300); do
  view=$(job)
  if [[ "$(field status <<<"$view")" == running && "$(field percent <<<"$view")" != 0 ]]; then
    runner=$(field replica <<<"$view")
    break
  fi
  sleep 0.2
done
[[ -n "$runner" ]] || fail "the job never ran: $(job)"
echo "the job runs on $runner: killing it"
compose kill "$runner" >/dev/null
finished=""
for _ in $(seq 900); do
  view=$(job)
  if [[ "$(field status <<<"$view")" == processed ]]; then
    finished=$view
    break
  fi
  sleep 0.2
done
[[ -n "$finished" ]] || fail "the job did not finish after $runner was killed: $(job)"
[[ "$(field replica <<<"$finished")" != "$runner" ]] || fail "finished by the killed replica: $finished"
echo "finished by $(field replica <<<"$finished"): $finished"

step "cluster passed"
