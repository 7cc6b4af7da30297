# The alert chain (issue 8): the real Prometheus Operator and Prometheus, built from the Go
# module proxy, run against the e2e control plane by tests/e2e/test_alert_chain.py.

##@ Alerts

.PHONY: prometheus-tools
prometheus-tools: ## Build the pinned Prometheus server (3.16.0), Prometheus Operator (v0.93.0) and Alertmanager (0.28.1)
	scripts/install-prometheus.sh

.PHONY: alerts
alerts: $(VENV_STAMP) tools cluster-tools gates-tools prometheus-tools ## promtool rule tests, alert coverage, and the real alert chain (operator -> Prometheus -> faults)
	$(PYTEST) tests/alerts tests/e2e/test_alert_chain.py

# `make test` runs tests/e2e/test_alert_chain.py: build Prometheus and the operator first.
TEST_TOOLS += prometheus-tools
