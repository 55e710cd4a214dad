#!/usr/bin/env bash
# The real rollout on this machine's Docker engine: base image, service and
# stand-in images, a local registry, then through deploy.sh from that registry:
#   v1 healthy and detecting -> broken v2 rolled back to v1 automatically ->
#   good v3 -> `deploy.sh --rollback` by hand -> a detection in flight during
#   stop-services.sh completes. Skipped, loudly, where no Docker daemon answers.
#
# Needs the release binaries (cargo build --release -p detections -p standin),
# assets/ (cargo xtask fetch), debootstrap and docker-registry. Run by
# `cargo xtask test` (stage e2e).
set -euo pipefail

usage() {
  cat <<USAGE
usage: $(basename "$0") [--help]

Environment: REGISTRY_PORT (5000), E2E_PORT (18080, the service on 127.0.0.1),
E2E_STANDIN_PORT (18081), E2E_KEEP=1 keeps the containers for inspection.
USAGE
}
case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") ;;
  *) usage >&2; exit 2 ;;
esac

if ! docker info >/dev/null 2>&1; then
  echo "######################################################################"
  echo "### SKIPPED: no Docker daemon — the Docker rollout test did not run ###"
  echo "######################################################################"
  exit 0
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
deploy=$root/deploy
cd "$root"
export DOCKER_BUILDKIT=0
registry_port=${REGISTRY_PORT:-5000}
registry=127.0.0.1:$registry_port
work=$root/.cache/e2e
mkdir -p "$work"

step() { printf '\n--- %s (%ss)\n' "$*" "$SECONDS"; }
fail() {
  echo "ROLLOUT FAILED: $*" >&2
  docker logs --tail 40 "$DETECTIONS_CONTAINER" 2>&1 | sed 's/^/  detections| /' >&2 || true
  exit 1
}

# --- images -------------------------------------------------------------------
step "base image"
"$deploy/build-base-image.sh"
step "stage binaries and the engine libraries"
"$deploy/stage.sh"

step "local registry on $registry"
registry_pid=""
if ! curl -fsS "http://$registry/v2/" >/dev/null 2>&1; then
  mkdir -p "$work/registry"
  sed -e "s|REGISTRY_STORAGE|$work/registry|" -e "s|REGISTRY_ADDR|$registry|" \
    "$deploy/tests/registry.yml" >"$work/registry.yml"
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 50); do
    curl -fsS "http://$registry/v2/" >/dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "http://$registry/v2/" >/dev/null || { cat "$work/registry.log"; fail "registry did not start"; }
fi

export COMPOSE_PROJECT_NAME=detections-e2e
export DETECTIONS_IMAGE=$registry/detections
export STANDIN_IMAGE=$registry/detections-standin STANDIN_TAG=e2e
export DETECTIONS_CONTAINER=detections-e2e STANDIN_CONTAINER=detections-e2e-standin
export DETECTIONS_BIND=127.0.0.1 DETECTIONS_PORT=${E2E_PORT:-18080}
export STANDIN_PORT=${E2E_STANDIN_PORT:-18081}
export STANDIN_MODELS_DIR=$root/assets/models
export DEPLOY_STATE_FILE=$work/deploy-previous-tag
export HEALTH_INTERVAL_SECS=${HEALTH_INTERVAL_SECS:-3} HEALTH_RETRIES=3
export DEPLOY_ENV_FILE=/nonexistent # a developer's deploy/.env stays out of the test
service=http://127.0.0.1:$DETECTIONS_PORT
# shellcheck source=../lib.sh
source "$deploy/lib.sh" # compose(): the same compose command as the scripts
photo=$root/assets/photos/bus.jpg

cleanup() {
  if [[ "${E2E_KEEP:-0}" != 1 ]]; then
    "$deploy/stop-services.sh" --no-record >/dev/null 2>&1 || true
    compose --profile dev down --volumes >/dev/null 2>&1 || true
  fi
  [[ -z "$registry_pid" ]] || kill "$registry_pid" 2>/dev/null || true
  # Layers of earlier builds that no tag names any more.
  docker image prune --force --filter "label=org.opencontainers.image.title=detections" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "build and push v1, the stand-in, a broken v2 and a good v3"
# The local tag keeps the build's layers (and the legacy builder's cache of the
# package layer) when the registry tags are removed below.
docker build -q -f "$deploy/Dockerfile" -t detections:e2e-build . >/dev/null
docker tag detections:e2e-build "$DETECTIONS_IMAGE:v1"
docker build -q -f "$deploy/standin.Dockerfile" -t "$STANDIN_IMAGE:e2e" . >/dev/null
docker build -q -f "$deploy/tests/broken.Dockerfile" --build-arg "GOOD_IMAGE=$DETECTIONS_IMAGE:v1" \
  -t "$DETECTIONS_IMAGE:v2" "$deploy/tests" >/dev/null
docker tag "$DETECTIONS_IMAGE:v1" "$DETECTIONS_IMAGE:v3"
for ref in "$DETECTIONS_IMAGE:v1" "$DETECTIONS_IMAGE:v2" "$DETECTIONS_IMAGE:v3" "$STANDIN_IMAGE:e2e"; do
  docker push -q "$ref" >/dev/null || docker push "$ref" >/dev/null
done
size=$(docker image inspect -f '{{.Size}}' "$DETECTIONS_IMAGE:v1")
echo "image $DETECTIONS_IMAGE:v1: $((size / 1024 / 1024)) MiB"
user=$(docker image inspect -f '{{.Config.User}}' "$DETECTIONS_IMAGE:v1")
[[ -n "$user" && "$user" != root && "$user" != 0* ]] || fail "image runs as '$user'"
# deploy.sh pulls them back from the registry.
docker image rm "$DETECTIONS_IMAGE:v1" "$DETECTIONS_IMAGE:v2" "$DETECTIONS_IMAGE:v3" >/dev/null

# --- rollout ------------------------------------------------------------------
rm -f "$DEPLOY_STATE_FILE"
compose --profile dev down --volumes >/dev/null 2>&1 || true
step "stand-in (compose profile dev)"
compose --profile dev up -d standin
running_tag() { docker inspect -f '{{.Config.Image}}' "$DETECTIONS_CONTAINER" | sed 's/.*://'; }
detect() {
  local out
  out=$(curl -sS --fail-with-body --max-time 120 -F "file=@$1" "$service/detect") || fail "detect: $out"
  [[ "$out" == \[*\] ]] || fail "detect answered $out"
  [[ "$out" == *classNum* ]] || fail "no detections in $out"
  echo "detections: ${out:0:120}…"
}

step "deploy v1"
"$deploy/deploy.sh" v1 || fail "deploy v1 exited $?"
[[ "$(running_tag)" == v1 ]] || fail "v1 is not running"
uid=$(docker exec "$DETECTIONS_CONTAINER" id -u)
[[ "$uid" != 0 ]] || fail "the service runs as root"
echo "service runs as uid $uid"
detect "$photo"
"$deploy/health-check.sh" --ready --url "$service" || fail "v1 not ready after a detection"

step "the same image on OpenVINO (detections detect in the running container)"
docker cp "$photo" "$DETECTIONS_CONTAINER:/tmp/photo.jpg" >/dev/null
ov_out=$(docker exec -e DETECTIONS_ENGINE__KIND=openvino "$DETECTIONS_CONTAINER" \
  detections detect /tmp/photo.jpg 2>"$work/openvino.log") ||
  fail "detect on OpenVINO: $(tail -5 "$work/openvino.log")"
[[ "$ov_out" == *classNum* ]] || fail "no detections on OpenVINO: $ov_out"
grep -q '"engine":"openvino"' "$work/openvino.log" ||
  fail "the engine was not OpenVINO: $(tail -5 "$work/openvino.log")"
echo "OpenVINO in the image: ${ov_out:0:120}…"

step "deploy the broken v2: expect the automatic rollback to v1"
rc=0
"$deploy/deploy.sh" v2 || rc=$?
[[ $rc == 1 ]] || fail "deploy v2 exited $rc, expected 1 (rolled back)"
[[ "$(running_tag)" == v1 ]] || fail "v1 is not running after the rollback"
[[ "$(cat "$DEPLOY_STATE_FILE")" == v1 ]] || fail ".deploy-previous-tag is $(cat "$DEPLOY_STATE_FILE"), expected v1"
"$deploy/health-check.sh" --url "$service" || fail "v1 unhealthy after the rollback"
detect "$photo"

step "deploy a good v3, then deploy.sh --rollback by hand"
"$deploy/deploy.sh" v3 || fail "deploy v3 exited $?"
[[ "$(cat "$DEPLOY_STATE_FILE")" == v1 ]] || fail ".deploy-previous-tag is not v1 after v3"
"$deploy/deploy.sh" --rollback || fail "deploy.sh --rollback exited $?"
[[ "$(running_tag)" == v1 ]] || fail "v1 is not running after --rollback"
[[ "$(cat "$DEPLOY_STATE_FILE")" == v3 ]] || fail ".deploy-previous-tag is not v3 after --rollback"

step "graceful shutdown: a detection in flight while stop-services.sh runs"
# The container deployed by --rollback has not started its engine yet: the first
# detection starts it and waits while the model comes from the Loader, which the
# stand-in delays by 4 s. So the request is accepted and inside the service, not
# still uploading (an unfinished upload counts as new work and gets 503).
curl -fsS -H 'content-type: application/json' -d '{"path_prefix":"/load","millis":4000,"times":1}' \
  "http://127.0.0.1:$STANDIN_PORT/_standin/delay" >/dev/null || fail "could not slow the stand-in down"
curl -sS --max-time 120 -o "$work/inflight.json" -w '%{http_code}' \
  -F "file=@$photo" "$service/detect" >"$work/inflight.code" &
inflight=$!
sleep 1
# Still running when the SIGTERM goes out; its 200 below proves it had been
# accepted before (new work after SIGTERM gets 503).
kill -0 "$inflight" 2>/dev/null || fail "the detection finished before the stop; nothing was in flight"
start=$SECONDS
"$deploy/stop-services.sh" || fail "stop-services.sh failed"
took=$((SECONDS - start))
wait "$inflight" || fail "the in-flight detection failed (curl $?)"
code=$(cat "$work/inflight.code")
[[ "$code" == 200 ]] || fail "the in-flight detection answered $code: $(head -c 300 "$work/inflight.json")"
grep -q classNum "$work/inflight.json" || fail "the in-flight detection found nothing: $(cat "$work/inflight.json")"
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$DETECTIONS_CONTAINER")
[[ "$exit_code" == 0 ]] || fail "the service exited $exit_code (137: killed after the grace)"
((took < 30)) || fail "stopping took ${took}s"
echo "in-flight detection answered 200 ($(wc -c <"$work/inflight.json") bytes); stop took ${took}s; exit 0"

step "rollout passed"
echo "ROLLOUT OK: image $((size / 1024 / 1024)) MiB, uid $uid"
