# Benchmarks (issue 10): bench/, bench/results/*.json, docs/benchmarks.md. Not part of `make test`;
# tests/bench/ runs a one-repetition smoke of each benchmark so the code cannot rot.

##@ Benchmarks

BENCH ?= render validate pipeline serving gate images
BENCH_REPEAT ?= 5
BENCH_DURATION ?= 10
# Largest synthetic size that gets a whole-overlay kustomize build, helm template and kubeconform
# (5 repetitions each); 1000 adds minutes to a run (see docs/benchmarks.md, "Not measured yet").
BENCH_KUSTOMIZE_MAX ?= 100

.PHONY: bench-tools
bench-tools: ## Install wrk and taskset (Debian packages) when missing; idempotent
	scripts/install-bench-tools.sh

.PHONY: bench
bench: $(VENV_STAMP) tools bench-tools ## Run the benchmarks (BENCH=...), write bench/results/*.json and docs/benchmarks.md
	$(VENV)/bin/python -m bench run $(BENCH) --repeat $(BENCH_REPEAT) --duration $(BENCH_DURATION) \
	  --kustomize-max $(BENCH_KUSTOMIZE_MAX)
	$(VENV)/bin/python -m bench report

.PHONY: bench-report
bench-report: $(VENV_STAMP) ## Regenerate docs/benchmarks.md and its plots from bench/results/*.json
	$(VENV)/bin/python -m bench report

.PHONY: bench-smoke
bench-smoke: $(VENV_STAMP) tools bench-tools ## One short repetition of each benchmark into .run/bench-smoke (what the tests run)
	$(VENV)/bin/python -m bench run $(BENCH) --smoke --results $(ROOT)/.run/bench-smoke/results
	$(VENV)/bin/python -m bench report --results $(ROOT)/.run/bench-smoke/results \
	  --docs $(ROOT)/.run/bench-smoke/benchmarks.md
