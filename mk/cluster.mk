# Real cluster checks (etcd + kube-apiserver + kube-controller-manager from source) and the
# security/policy gates. Owned by the cluster-checks work (issue 3).

##@ Cluster checks and gates

.PHONY: cluster-tools
cluster-tools: ## Build the pinned control plane (kube-apiserver, kube-controller-manager, kubectl, etcd)
	scripts/install-cluster.sh

.PHONY: gates-tools
gates-tools: ## Install the pinned gates (checkov, kube-linter, kube-score, netpolicy, promtool, gitleaks)
	scripts/install-gates.sh

# NODE=1: the control plane plus one real node (mk/node.mk), so pods run.
NODE ?= 0

.PHONY: cluster-up
cluster-up: cluster-tools $(if $(filter 1,$(NODE)),node-tools) ## Start a local control plane (NODE=1: and a node); state and kubeconfig in .run/cluster/
	NODE=$(NODE) scripts/cluster.sh up
	@echo 'run: eval "$$(scripts/cluster.sh env)"'

.PHONY: cluster-down
cluster-down: ## Stop the local control plane and its node (by PID) and delete their state
	scripts/cluster.sh down

.PHONY: e2e
e2e: $(VENV_STAMP) tools cluster-tools ## Apply every overlay to a real kube-apiserver (starts and stops its own cluster)
	$(PYTEST) tests/e2e

.PHONY: gates
gates: $(VENV_STAMP) tools gates-tools ## Security and policy gates on the rendered output (checkov, kube-linter, kube-score, netpolicy, promtool, gitleaks)
	$(PYTEST) tests/security tests/alerts

# `make test` runs tests/e2e, tests/security and tests/alerts: build their tools first.
TEST_TOOLS += cluster-tools gates-tools
