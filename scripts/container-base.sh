#!/usr/bin/env bash
# Make sure podman has the Dockerfile's base image, debian:bookworm-slim. Pulled from the registry
# where it can be; on machines that reach only Debian's mirrors (no Docker Hub), built from Debian
# packages with debootstrap (minbase, apt lists and caches removed — what the slim image holds)
# and imported under the same name. Usage: scripts/container-base.sh [podman args...]
set -euo pipefail
IMAGE=docker.io/library/debian:bookworm-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
podman=(podman "$@")
if "${podman[@]}" image exists "$IMAGE"; then
  exit 0
fi
if timeout 60 "${podman[@]}" pull -q "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi
echo "container-base: cannot pull $IMAGE; building it from Debian packages ($MIRROR)" >&2
root=$(mktemp -d /tmp/aionix-bookworm-XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase bookworm "$root/rootfs" "$MIRROR" >"$root/debootstrap.log" 2>&1 || {
  tail -20 "$root/debootstrap.log" >&2
  exit 1
}
rm -rf "$root"/rootfs/var/cache/apt/archives/*.deb "$root"/rootfs/var/lib/apt/lists/* \
  "$root"/rootfs/usr/share/doc/* "$root"/rootfs/usr/share/man/*
tar --numeric-owner -C "$root/rootfs" -c . | "${podman[@]}" import --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "container-base: imported $IMAGE" >&2
