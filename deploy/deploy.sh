#!/usr/bin/env bash
# Roll out a tag: pull -> stop (recording the running tag) -> start -> health.
# When the start or the health check fails, roll back automatically to the tag in
# .deploy-previous-tag. `--rollback` redeploys that previous tag by hand.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=lib.sh
source "$here/lib.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") <tag>
       $(basename "$0") --rollback

  <tag>        pull, stop the running service (its tag goes to .deploy-previous-tag),
               start <tag>, check health; on failure roll back to the previous tag
  --rollback   redeploy the tag in \$DEPLOY_STATE_FILE (the one running before the
               last deploy); the tag running now becomes the previous one

Health: health-check.sh \$DEPLOY_HEALTH_ARGS (default none: liveness only;
"--ready --detect FILE" checks readiness too).
Exit codes: 0 deployed and healthy; 1 failed, rolled back to the previous tag,
which is healthy; 2 failed and the rollback failed too, or there was nothing to
roll back to; 3 --rollback without a previous tag; 64 usage error.
USAGE
}

health() {
  local args=()
  if [[ -n "${DEPLOY_HEALTH_ARGS:-}" ]]; then read -r -a args <<<"$DEPLOY_HEALTH_ARGS"; fi
  "$here/health-check.sh" "${args[@]}"
}

previous_tag() {
  [[ -s "$DEPLOY_STATE_FILE" ]] || return 1
  local tag
  tag=$(head -n1 "$DEPLOY_STATE_FILE")
  [[ -n "$tag" ]] || return 1
  printf '%s\n' "$tag"
}

# Called after $1 failed to come up: back to the recorded previous tag.
rollback_after_failure() {
  local failed=$1 prev
  if ! prev=$(previous_tag); then
    log "deploy of $failed failed and there is no previous tag to roll back to"
    exit 2
  fi
  if [[ "$prev" == "$failed" ]]; then
    log "deploy of $failed failed; the previous tag is the same one, not rolling back"
    exit 2
  fi
  log "deploy of $failed failed: rolling back to $prev"
  "$here/stop-services.sh" --no-record || true
  if "$here/start-services.sh" "$prev" && health; then
    log "rolled back to $prev; it is healthy"
    exit 1
  fi
  log "rollback to $prev failed too"
  exit 2
}

deploy() {
  local tag=$1
  check_tag "$tag"
  log "deploying $DETECTIONS_IMAGE:$tag"
  "$here/pull-images.sh" "$tag" || die "pull failed; nothing was stopped"
  "$here/stop-services.sh" || die "stop failed; nothing was started"
  if "$here/start-services.sh" "$tag" && health; then
    log "deployed $tag; healthy"
    exit 0
  fi
  rollback_after_failure "$tag"
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") usage >&2; exit 64 ;;
esac
(($# == 1)) || { usage >&2; exit 64; }
if [[ "$1" == --rollback ]]; then
  prev=$(previous_tag) || { log "no previous tag in $DEPLOY_STATE_FILE; nothing to roll back to"; exit 3; }
  log "rolling back by hand to $prev"
  deploy "$prev"
fi
[[ "$1" != -* ]] || { usage >&2; exit 64; }
deploy "$1"
