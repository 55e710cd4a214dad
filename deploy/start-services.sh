#!/usr/bin/env bash
# Start the service at the given tag through docker-compose.yml.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  cat <<USAGE
usage: $(basename "$0") <tag>

(Re)creates the \`detections\` service of \$COMPOSE_FILE (default deploy/docker-compose.yml)
with DETECTIONS_TAG=<tag>; other services are left alone.
Exit 0 when started, 1 when the start failed, 2 on a usage error.
USAGE
}

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
  "") usage >&2; exit 2 ;;
esac
(($# == 1)) || { usage >&2; exit 2; }
check_tag "$1"
log "starting $DETECTIONS_IMAGE:$1"
DETECTIONS_TAG=$1 compose up --detach --no-deps --force-recreate detections ||
  die "could not start $DETECTIONS_IMAGE:$1"
