# shellcheck shell=bash
# Shared settings of the deploy scripts; sourced, never run. Every value can be
# overridden from the environment (tests shorten the timings).

DEPLOY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# deploy/.env (the compose file's) fills in what the environment leaves unset.
DEPLOY_ENV_FILE=${DEPLOY_ENV_FILE:-$DEPLOY_DIR/.env}
if [[ -f "$DEPLOY_ENV_FILE" ]]; then
  while IFS='=' read -r key value; do
    [[ "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]] || continue
    [[ -n "${!key+set}" ]] || export "$key=$value"
  done <"$DEPLOY_ENV_FILE"
fi
COMPOSE_FILE=${COMPOSE_FILE:-$DEPLOY_DIR/docker-compose.yml}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-detections}
DETECTIONS_IMAGE=${DETECTIONS_IMAGE:-localhost:5000/detections}
DETECTIONS_CONTAINER=${DETECTIONS_CONTAINER:-detections}
DEPLOY_STATE_FILE=${DEPLOY_STATE_FILE:-$DEPLOY_DIR/.deploy-previous-tag}
STOP_GRACE_SECS=${STOP_GRACE_SECS:-30}
HEALTH_URL=${HEALTH_URL:-http://127.0.0.1:${DETECTIONS_PORT:-8080}}
HEALTH_RETRIES=${HEALTH_RETRIES:-3}
HEALTH_INTERVAL_SECS=${HEALTH_INTERVAL_SECS:-10}
HEALTH_TIMEOUT_SECS=${HEALTH_TIMEOUT_SECS:-5}
export DETECTIONS_IMAGE DETECTIONS_CONTAINER STOP_GRACE_SECS

# The compose command: $COMPOSE, else `docker compose` (v2 plug-in), else docker-compose (v1).
compose() {
  local cmd
  if [[ -n "${COMPOSE:-}" ]]; then
    read -r -a cmd <<<"$COMPOSE"
  elif docker compose version >/dev/null 2>&1; then
    cmd=(docker compose)
  else
    cmd=(docker-compose)
  fi
  "${cmd[@]}" -f "$COMPOSE_FILE" "$@"
}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# A tag must be something docker accepts after the colon.
check_tag() {
  [[ "$1" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "invalid tag: '$1'"
}
