# Entry points for the ML platform repo. `make` alone prints help.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
ROOT := $(patsubst %/,%,$(dir $(abspath $(firstword $(MAKEFILE_LIST)))))
TOOLS_DIR := $(ROOT)/.tools
VENV := $(ROOT)/.venv
VENV_STAMP := $(VENV)/.synced
PLATFORMGEN := $(VENV)/bin/platformgen
PYTEST := $(VENV)/bin/pytest
# pytest-xdist workers for `make test`. Most of the suite waits on control planes, Prometheus
# and Argo CD rather than computing, so 3 workers finish sooner than 2 even on 2 cores; each
# environment's control plane, each test file, stays on one worker (tests/conftest.py).
TEST_WORKERS ?= 3

export GOTOOLCHAIN := local
export PATH := $(TOOLS_DIR)/bin:$(VENV)/bin:$(PATH)

##@ Help

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} \
	  /^##@/ {printf "\n%s\n", substr($$0, 5); next} \
	  /^[a-zA-Z0-9_.-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Setup

$(VENV_STAMP): pyproject.toml uv.lock scripts/bootstrap-python.sh
	PYTHON=$(PYTHON) scripts/bootstrap-python.sh
	touch $@

.PHONY: venv
venv: $(VENV_STAMP) ## Create or sync the Python venv (.venv) from uv.lock

.PHONY: tools
tools: ## Build the pinned toolchain and schemas into .tools/ (idempotent, cached)
	scripts/install-tools.sh

##@ Platform

.PHONY: render
render: $(VENV_STAMP) ## Render base/, overlays/ and charts/ from platform.yaml
	$(PLATFORMGEN) render

.PHONY: check
check: $(VENV_STAMP) ## Fail if the generated trees differ from what platform.yaml renders
	$(PLATFORMGEN) check

.PHONY: validate
validate: $(VENV_STAMP) tools ## kustomize build every overlay, helm lint + template the chart (Helm 3, 4), all through kubeconform
	$(PLATFORMGEN) validate

.PHONY: demo
demo: ## The main job: set up, render + validate the platform, train locally, serve (VERBOSE=1: full logs)
	@$(PYTHON) scripts/demo.py --make "$(MAKE)" $(if $(filter-out 0 no false,$(VERBOSE)),-v)

##@ Development

.PHONY: test
# What the tests need built beyond the venv and `make tools`: each mk/*.mk adds its toolchain.
# They build TEST_BUILD_JOBS at a time (Go links one binary per core, module and package
# downloads leave the cores idle, image builds wait on pip), each installer's lines prefixed
# with its own name; caches and apt are locked, so parallel installers never collide.
TEST_TOOLS :=
TEST_BUILD_JOBS ?= 2

# The linters run beside the tests (their ~40 s of mypy overlap the e2e waits); either failing
# fails the target, the linters' output printed after the tests'.
test: $(VENV_STAMP) tools ## Run the whole test suite (what CI runs)
	$(MAKE) -j$(TEST_BUILD_JOBS) --output-sync=line $(TEST_TOOLS)
	lint_log=$$(mktemp); $(MAKE) lint >"$$lint_log" 2>&1 & lint=$$!; \
	status=0; $(PYTEST) -n $(TEST_WORKERS) --dist loadgroup || status=$$?; \
	lint_status=0; wait $$lint || lint_status=$$?; \
	echo "== make lint (ran beside the tests) =="; cat "$$lint_log"; rm -f "$$lint_log"; \
	if [ $$lint_status -ne 0 ]; then echo "make lint failed"; exit $$lint_status; fi; \
	exit $$status

.PHONY: test-durations
test-durations: ## `make test`, recording each group's seconds in tests/durations.json (the next runs' order)
	MLP_RECORD_DURATIONS=1 $(MAKE) test

.PHONY: lint
lint: $(VENV_STAMP) ## ruff, mypy --strict (generator, step library, model server, drift monitor), lint-imports (the generator's layers)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check generators tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-logo

.PHONY: golden
golden: $(VENV_STAMP) ## Refresh the golden trees under tests/golden/ from tests/fixtures/specs/
	$(VENV)/bin/python tests/golden.py

.PHONY: clean
clean: ## Remove the venv and caches (keeps .tools/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

-include mk/*.mk
