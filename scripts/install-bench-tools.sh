#!/usr/bin/env bash
# Install what `make bench` needs beyond the venv and `make tools`: Debian's wrk (HTTP load
# generator, with LuaJIT for request bodies) and taskset (util-linux). Idempotent: a tool that
# is already on PATH is left alone; otherwise apt-get installs the distribution package.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v taskset >/dev/null || missing+=(util-linux)
((${#missing[@]} == 0)) && exit 0
apt_install bench-tools "${missing[@]}"
wrk --version 2>&1 | head -1 >&2 || true
