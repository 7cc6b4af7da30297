#!/usr/bin/env bash
# `make images`: build every image of `builds.images` in platform.yaml from its generated
# Dockerfile (scripts/images.py says how), after installing the builder from Debian when it is
# missing: buildah, mmdebstrap (the local stand-in for the base image), fuse-overlayfs and
# skopeo; podman and runc run the built images in tests/images (a real runtime, not the
# builder). Idempotent; a warm run builds nothing. Arguments go to `scripts/images.py build`
# (e.g. only some folders: scripts/build-images.sh components/serve).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apt_install images buildah mmdebstrap fuse-overlayfs skopeo podman runc
if ((EUID != 0)); then
    # buildah's chroot isolation, its mounts and mmdebstrap's root mode need root here.
    echo "images: run as root (buildah bud --isolation chroot and mmdebstrap need it)" >&2
    exit 1
fi
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/images.py" build "$@"
