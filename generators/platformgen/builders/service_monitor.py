"""ServiceMonitor (monitoring.coreos.com/v1): scrape the port the spec names for metrics.

The labels a scraped series is stored with are decided here, so the alert rules ask this module
(`stored_label`) instead of assuming the application's label names survive the scrape:

- The Prometheus Operator's relabelling sets the target labels `namespace`, `service`, `pod`,
  `container` and `endpoint` (the ServiceMonitor's port name), and Prometheus adds `job` and
  `instance`.
- With `honorLabels: false`, an application label of the same name is kept as
  `exported_<name>`: the model server's `endpoint="v2_infer"` is stored as
  `exported_endpoint="v2_infer"`, next to `endpoint="http"`.

`honorLabels` stays false: with it, any scraped application could overwrite `namespace`,
`service` or `pod`, which every alert scopes on, and so silence or impersonate another
component. Renaming the application label would also work, but it changes a metric that
dashboards and clients already read; `stored_label` keeps the one fact in one place instead.
"""

from __future__ import annotations

from platformgen.builders.service import SCRAPED_LABEL
from platformgen.naming import Manifest, metadata, selector_labels
from platformgen.resolve import ComponentView

HONOR_LABELS = False
"""Application labels never override the target labels (see the module docstring)."""
TARGET_LABELS = frozenset(
    {"namespace", "service", "pod", "container", "endpoint", "job", "instance"}
)
"""Labels the operator's relabelling (and Prometheus) attach to every scraped series."""


def stored_label(label: str) -> str:
    """The name Prometheus stores an application's `label` under, scraped by our monitors."""
    if not HONOR_LABELS and label in TARGET_LABELS:
        return f"exported_{label}"
    return label


def build_service_monitor(view: ComponentView) -> Manifest | None:
    m = view.component.metrics
    if m is None:
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(
            view.spec,
            view.name,
            view.component.role,
            view.namespace,
            extra_labels=view.spec.monitoring.selector_labels,
        ),
        "spec": {
            "endpoints": [
                {
                    "honorLabels": HONOR_LABELS,
                    "interval": m.interval,
                    "path": m.path,
                    "port": m.port,
                    "scheme": "http",
                }
            ],
            "namespaceSelector": {"matchNames": [view.namespace]},
            "selector": {
                "matchLabels": {**selector_labels(view.spec, view.name), SCRAPED_LABEL: view.name}
            },
        },
    }
