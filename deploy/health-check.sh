#!/usr/bin/env bash
# Liveness (/health answers 200) and, with --ready, readiness (aiAvailability is
# not None), checked until one attempt passes; exits non-zero after
# $HEALTH_RETRIES (default 3) consecutive failures.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") [--ready] [--detect FILE] [--url URL]

  --ready        also require readiness: /health's aiAvailability is not "None"
  --detect FILE  with --ready: POST FILE to /detect once first, so the engine starts
  --url URL      the service (default \$HEALTH_URL, http://127.0.0.1:\${DETECTIONS_PORT:-8080})

Environment: HEALTH_RETRIES (3), HEALTH_INTERVAL_SECS (10, between attempts),
HEALTH_TIMEOUT_SECS (5, per request; --detect waits 40x longer).
Exit 0 healthy, 1 after HEALTH_RETRIES consecutive failures, 2 on a usage error.
USAGE
}

ready=0
detect=""
while (($#)); do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --ready) ready=1 ;;
    --detect)
      (($# >= 2)) || { usage >&2; exit 2; }
      detect=$2
      shift
      ;;
    --url)
      (($# >= 2)) || { usage >&2; exit 2; }
      HEALTH_URL=$2
      shift
      ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done
[[ -z "$detect" || -r "$detect" ]] || die "cannot read $detect"

# One attempt; prints why it failed.
attempt() {
  local body
  if ! body=$(curl --silent --show-error --fail --max-time "$HEALTH_TIMEOUT_SECS" "$HEALTH_URL/health" 2>&1); then
    echo "liveness: /health did not answer 200 (${body:-no answer})"
    return 1
  fi
  ((ready)) || return 0
  if [[ -n "$detect" ]]; then
    # Only the first time: it starts the engine; its own answer does not matter.
    curl --silent --output /dev/null --max-time "$((HEALTH_TIMEOUT_SECS * 40))" \
      -F "file=@$detect" "$HEALTH_URL/detect" || true
    detect=""
  fi
  local state
  state=$(sed -n 's/.*"aiAvailability" *: *"\([A-Za-z]*\)".*/\1/p' <<<"$body")
  if [[ -z "$state" || "$state" == None ]]; then
    # Ask again: the detection above may have changed it.
    body=$(curl --silent --fail --max-time "$HEALTH_TIMEOUT_SECS" "$HEALTH_URL/health" || true)
    state=$(sed -n 's/.*"aiAvailability" *: *"\([A-Za-z]*\)".*/\1/p' <<<"$body")
  fi
  if [[ -z "$state" || "$state" == None ]]; then
    echo "readiness: aiAvailability is ${state:-missing}"
    return 1
  fi
  return 0
}

failures=0
while :; do
  if why=$(attempt); then
    log "healthy: $HEALTH_URL$( ((ready)) && echo ' (ready)')"
    exit 0
  fi
  failures=$((failures + 1))
  log "check $failures/$HEALTH_RETRIES failed: $why"
  if ((failures >= HEALTH_RETRIES)); then
    log "unhealthy after $failures consecutive failures"
    exit 1
  fi
  sleep "$HEALTH_INTERVAL_SECS"
done
