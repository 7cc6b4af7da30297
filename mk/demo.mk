# `make demo-cluster` (issue 18): the platform on a real node, one line per step
# (scripts/demo_cluster.py; its cluster part, scripts/demo_cluster_run.py, is what
# tests/e2e/test_node_platform.py runs).

##@ Demo

.PHONY: demo-cluster
demo-cluster: ## The platform on a real node (root): build, load images, apply dev, print the model's answer through the cluster, tear down (KEEP=1: until Ctrl-C; VERBOSE=1: full logs)
	@$(PYTHON) scripts/demo_cluster.py --make "$(MAKE)" $(if $(filter-out 0 no false,$(VERBOSE)),-v) $(if $(filter-out 0 no false,$(KEEP)),--keep)
