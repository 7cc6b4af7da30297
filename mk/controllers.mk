# The real KServe, Kubeflow Trainer, JobSet and Katib controllers, run as host processes by the
# controllers e2e tests (tests/e2e/controllers.py) against a local control plane.

##@ Controllers

.PHONY: controllers-tools
controllers-tools: ## Build the pinned KServe, Trainer, JobSet and Katib controllers and fetch their CRDs/webhooks
	scripts/install-controllers.sh

# `make test` runs the controllers e2e tests: build the controllers first.
test: controllers-tools
