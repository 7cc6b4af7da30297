#!/usr/bin/env bash
# `make images`: build every image of `builds.images` in platform.yaml from its generated
# Dockerfile (scripts/images.py says how), after installing the builder from Debian when it is
# missing: buildah, mmdebstrap (the local stand-in for the base image), fuse-overlayfs and
# skopeo. Idempotent; a warm run builds nothing. Arguments go to `scripts/images.py build`
# (e.g. only some folders: scripts/build-images.sh components/serve).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# podman and runc run the built images in tests/images (a real runtime, not the builder).
PACKAGES=(buildah mmdebstrap fuse-overlayfs skopeo podman runc)

missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$package")
done
if ((${#missing[@]} > 0)); then
    if ! command -v apt-get >/dev/null; then
        echo "images: ${missing[*]} missing and no apt-get here; install them by hand" >&2
        exit 1
    fi
    sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || {
            echo "images: need root or sudo to apt-get install ${missing[*]}" >&2
            exit 1
        }
        sudo=(sudo)
    fi
    echo "images: apt-get install ${missing[*]}" >&2
    apt=("${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends)
    "${apt[@]}" "${missing[@]}" >/dev/null ||
        { "${sudo[@]}" apt-get update -qq && "${apt[@]}" "${missing[@]}" >/dev/null; }
fi
if ((EUID != 0)); then
    # buildah's chroot isolation, mounts and mmdebstrap's root mode need root here.
    echo "images: run as root (buildah bud --isolation chroot and mmdebstrap need it)" >&2
    exit 1
fi
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/images.py" build "$@"
