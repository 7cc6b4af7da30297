#!/usr/bin/env bash
# The CNCF distribution registry (what Docker Hub and most registries run), built from the Go
# module proxy into the shared tools cache and linked as .tools/bin/registry. The images of
# `make images` are pushed to it on 127.0.0.1, and the node's containerd pulls them from there
# (scripts/images.py push / hosts), the way a cluster pulls from a registry.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REGISTRY_VERSION=v3.1.2
go_install registry github.com/distribution/distribution/v3/cmd/registry "$REGISTRY_VERSION"
