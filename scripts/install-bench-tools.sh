#!/usr/bin/env bash
# Install what `make bench` needs beyond the venv and `make tools`: Debian's wrk (HTTP load
# generator, with LuaJIT for request bodies) and taskset (util-linux). Idempotent: a tool that
# is already on PATH is left alone; otherwise apt-get installs the distribution package.
set -euo pipefail

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v taskset >/dev/null || missing+=(util-linux)
if ((${#missing[@]} == 0)); then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "bench-tools: ${missing[*]} missing and no apt-get here; install them by hand" >&2
    exit 1
fi
sudo=()
if ((EUID != 0)); then
    command -v sudo >/dev/null || {
        echo "bench-tools: need root or sudo to apt-get install ${missing[*]}" >&2
        exit 1
    }
    sudo=(sudo)
fi
echo "bench-tools: apt-get install ${missing[*]}" >&2
"${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
    { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
wrk --version 2>&1 | head -1 >&2 || true
