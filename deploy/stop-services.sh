#!/usr/bin/env bash
# Record the running tag in .deploy-previous-tag, then stop the service with
# SIGTERM and a grace period (default 30 s, above the service's own 25 s drain).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") [--no-record]

Writes the tag of the running \$DETECTIONS_CONTAINER (default detections) to
\$DEPLOY_STATE_FILE (default deploy/.deploy-previous-tag), then stops it:
SIGTERM, SIGKILL after \$STOP_GRACE_SECS (default 30).
  --no-record   stop without recording the tag (used when rolling back)
Nothing running: nothing recorded, exit 0. Exit 1 when stopping failed.
USAGE
}

record=1
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --no-record) record=0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

# Running or restarting (a crash-looping container counts as deployed).
id=$(docker ps --quiet --filter "name=^/${DETECTIONS_CONTAINER}\$")
if [[ -z "$id" ]]; then
  log "no running container $DETECTIONS_CONTAINER; nothing to stop"
  exit 0
fi

if ((record)); then
  image=$(docker inspect --format '{{.Config.Image}}' "$DETECTIONS_CONTAINER")
  last=${image##*/}
  if [[ "$last" == *:* ]]; then tag=${last##*:}; else tag=latest; fi
  tmp="$DEPLOY_STATE_FILE.tmp"
  printf '%s\n' "$tag" >"$tmp"
  mv "$tmp" "$DEPLOY_STATE_FILE"
  log "recorded running tag $tag in $DEPLOY_STATE_FILE"
fi

log "stopping $DETECTIONS_CONTAINER (SIGTERM, ${STOP_GRACE_SECS}s grace)"
docker stop --time "$STOP_GRACE_SECS" "$DETECTIONS_CONTAINER" >/dev/null ||
  die "could not stop $DETECTIONS_CONTAINER"
