#!/usr/bin/env bash
# Create .venv from pyproject.toml + uv.lock with a pinned uv. Idempotent: a no-op when in sync.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
uv_version="0.13.8"
uv_home="$root/.tools/uv"
python="${PYTHON:-python3}"

if [[ ! -x "$uv_home/bin/uv" ]] || [[ "$("$uv_home/bin/uv" --version)" != "uv $uv_version"* ]]; then
    echo "bootstrap: installing uv $uv_version into .tools/uv" >&2
    rm -rf "$uv_home"
    "$python" -m venv "$uv_home"
    "$uv_home/bin/pip" install --quiet --disable-pip-version-check "uv==$uv_version"
fi

export UV_PYTHON_DOWNLOADS=never
export UV_PROJECT_ENVIRONMENT="$root/.venv"
cd "$root"
# --compile-bytecode: the tests start TensorFlow in dozens of subprocesses; without .pyc files
# (uv writes none, and PYTHONDONTWRITEBYTECODE=1 stops Python writing them) each import
# recompiles TensorFlow: 12.5 s instead of 4.9 s here.
if [[ -f uv.lock ]]; then
    "$uv_home/bin/uv" sync --locked --all-groups --compile-bytecode --python "$python" --quiet
else
    "$uv_home/bin/uv" sync --all-groups --compile-bytecode --python "$python" --quiet
fi
