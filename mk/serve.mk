# Model serving, drift monitoring, notebooks and Dockerfile linting (issue 4, ML-serve).

##@ Serving

SERVE_REGISTRY ?= $(ROOT)/.run/registry
SERVE_VERSION ?= latest
SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8080

.PHONY: serve
serve: $(VENV_STAMP) ## Serve the latest registry version (.run/registry) on http://127.0.0.1:8080 (KServe v1+v2)
	$(VENV)/bin/python -m mlp_serve --registry $(SERVE_REGISTRY) --version $(SERVE_VERSION) \
	  --host $(SERVE_HOST) --port $(SERVE_PORT) --request-log $(ROOT)/.run/serve/requests.jsonl

.PHONY: notebooks
notebooks: $(VENV_STAMP) ## Execute the notebooks in notebooks/ (tiny epochs) with nbclient
	$(PYTEST) tests/test_notebooks.py

.PHONY: lint-tools
lint-tools: ## Install the pinned Dockerfile linter (hadolint) into .tools/bin
	scripts/install-lint-tools.sh

.PHONY: lint-dockerfiles
lint-dockerfiles: $(VENV_STAMP) lint-tools ## hadolint and the house rules on every component Dockerfile
	$(PYTEST) tests/test_dockerfiles.py

# `make test` runs tests/test_dockerfiles.py: install hadolint first.
TEST_TOOLS += lint-tools

.PHONY: serve-smoke
serve-smoke: $(VENV_STAMP) ## Start the server on the latest registry version, send one v1 and one v2 request, stop it
	$(VENV)/bin/python -m mlp_serve.smoke --registry $(SERVE_REGISTRY) --version $(SERVE_VERSION)
