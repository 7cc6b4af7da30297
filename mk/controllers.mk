# The real KServe, Kubeflow Trainer, JobSet and Katib controllers, run as host processes by the
# controllers e2e tests (tests/e2e/controllers.py) against a local control plane.

##@ Controllers

.PHONY: controllers-tools
controllers-tools: ## Build the pinned KServe, Trainer, JobSet, Katib and Spark Operator controllers and fetch their CRDs/webhooks
	scripts/install-controllers.sh

.PHONY: e2e-controllers
e2e-controllers: $(VENV_STAMP) tools cluster-tools controllers-tools ## Our objects under the real KServe, Trainer/JobSet and Katib controllers and webhooks
	$(PYTEST) tests/e2e/test_controllers.py

# `make test` and `make e2e` run the controllers e2e tests: build the controllers first.
TEST_TOOLS += controllers-tools
e2e: controllers-tools
