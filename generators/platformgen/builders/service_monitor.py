"""ServiceMonitor (monitoring.coreos.com/v1): scrape the port the spec names for metrics."""

from __future__ import annotations

from platformgen.naming import Manifest, metadata, selector_labels
from platformgen.resolve import ComponentView


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
                {"interval": m.interval, "path": m.path, "port": m.port, "scheme": "http"}
            ],
            "namespaceSelector": {"matchNames": [view.namespace]},
            "selector": {"matchLabels": selector_labels(view.spec, view.name)},
        },
    }
