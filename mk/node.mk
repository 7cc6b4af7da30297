# A real node for the cluster checks (issue 18): kubelet, kube-proxy and kube-scheduler (built
# with the control plane), containerd v2, runc, the CNI plugins, kube-router (NetworkPolicy) and
# CoreDNS, plus the pause and probe images. `make cluster-up NODE=1` starts a cluster with it.

##@ Node

.PHONY: node-tools
node-tools: cluster-tools ## Build the pinned node (kubelet, kube-proxy, kube-scheduler, containerd, runc, CNI, kube-router, CoreDNS, images)
	scripts/install-node.sh

.PHONY: node-clean
node-clean: ## Remove the image stores the test nodes keep between runs (~/.cache/ml-platform-node), unless a node uses one
	scripts/cluster.sh clean-stores

.PHONY: e2e-node
e2e-node: $(VENV_STAMP) tools cluster-tools node-tools controllers-tools registry-tools prometheus-tools images ## Pods on a real node: the node checks, the reachability matrix with real packets, the platform running on it
	$(PYTEST) tests/e2e/test_node.py tests/e2e/test_node_reachability.py tests/e2e/test_node_teardown.py \
	  tests/e2e/test_node_platform.py

# `make test` runs the node checks: build the node first.
TEST_TOOLS += node-tools
