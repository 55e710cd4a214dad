#!/usr/bin/env bash
# Make the Debian base image the Dockerfiles start FROM, on a machine that cannot
# pull from a registry: debootstrap a minimal bookworm and `docker import` it under
# the upstream name (debian:bookworm-slim by default). Skipped when the image is
# already there. Where a registry is reachable, `docker pull debian:bookworm-slim`
# does the same job and this script is not needed.
set -euo pipefail

usage() {
  cat <<USAGE
usage: $(basename "$0") [--force] [--help]

Builds BASE_IMAGE (default debian:bookworm-slim) with debootstrap --variant=minbase.
  --force   rebuild even when the image exists

Environment:
  BASE_IMAGE     image name to import as       (default debian:bookworm-slim)
  BASE_SUITE     Debian suite                  (default bookworm)
  BASE_MIRROR    Debian mirror                 (default: the first deb.debian.org-style
                                                URI in /etc/apt/sources.list*, else
                                                http://deb.debian.org/debian)
  BASE_ROOTFS    scratch folder for the rootfs (default: a temporary folder)
USAGE
}

force=0
for arg in "$@"; do
  case "$arg" in
    -h | --help) usage; exit 0 ;;
    --force) force=1 ;;
    *) echo "unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
BASE_SUITE=${BASE_SUITE:-bookworm}

if ((force == 0)) && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "base image $BASE_IMAGE exists; skipping (--force rebuilds)"
  exit 0
fi

if [[ -z "${BASE_MIRROR:-}" ]]; then
  BASE_MIRROR=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' \
    /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
    grep -oE 'https?://[^ ]+' | head -n1 || true)
  BASE_MIRROR=${BASE_MIRROR:-http://deb.debian.org/debian}
fi

command -v debootstrap >/dev/null || {
  echo "debootstrap is missing (apt-get install debootstrap)" >&2
  exit 1
}

rootfs=${BASE_ROOTFS:-$(mktemp -d)}
cleanup() { rm -rf "$rootfs"; }
trap cleanup EXIT

echo "debootstrap --variant=minbase $BASE_SUITE from $BASE_MIRROR"
debootstrap --variant=minbase "$BASE_SUITE" "$rootfs" "$BASE_MIRROR" >"$rootfs.log" 2>&1 || {
  tail -n 30 "$rootfs.log" >&2
  exit 1
}
rm -f "$rootfs.log"
# Slim it like the upstream -slim image: no apt lists, caches or docs.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
tar -C "$rootfs" -c . | docker import \
  --change 'CMD ["bash"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  - "$BASE_IMAGE" >/dev/null
echo "imported $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE") bytes)"
