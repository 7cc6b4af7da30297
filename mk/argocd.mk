# Argo CD: the pinned Argo CD and Redis for the Argo CD e2e, and the app-size bench (issue 7).

##@ Argo CD

.PHONY: argocd-tools
argocd-tools: ## Build the pinned Argo CD (v3.5.1, from the Go module proxy) and install redis-server
	scripts/install-argocd.sh

.PHONY: argocd-bench
argocd-bench: $(VENV_STAMP) tools ## Time the largest Argo CD Application's kustomize build for a 1000-component spec
	$(VENV)/bin/python bench/argocd_app_size.py

# `make test` runs tests/e2e/test_argocd.py: build Argo CD first.
TEST_TOOLS += argocd-tools
