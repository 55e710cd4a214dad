#!/usr/bin/env bash
# Pull the image tag to deploy, before anything is stopped.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") <tag>

Pulls \$DETECTIONS_IMAGE:<tag> (DETECTIONS_IMAGE default localhost:5000/detections).
Exit 0 when pulled, 1 when the pull failed, 2 on a usage error.
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
esac
(($# == 1)) || { usage >&2; exit 2; }
check_tag "$1"
log "pulling $DETECTIONS_IMAGE:$1"
docker pull "$DETECTIONS_IMAGE:$1" >/dev/null || die "could not pull $DETECTIONS_IMAGE:$1"
