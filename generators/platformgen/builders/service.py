"""Service for components that serve ports. Its ports are the component's, written once."""

from __future__ import annotations

from platformgen.builders.inference_service import has_own_service_name
from platformgen.builders.pod import selector_metadata
from platformgen.kinds import traits
from platformgen.naming import Manifest, selector_labels
from platformgen.resolve import ComponentView

SCRAPED_LABEL = "platformgen.io/scraped"
"""On the component's own Service only, with the component's name as its value: what its
ServiceMonitor selects. KServe copies an InferenceService's labels onto the Services it creates
(`<name>-predictor` in Standard mode, Knative's in Knative mode), so the component's labels alone
would also select those, and Prometheus would scrape ports that are not the metrics port (seen
on the real node: KServe's agent port as a target that is down)."""


def service_name(view: ComponentView) -> str:
    """The name of the component's own Service, which is also the `service` (and `job`) label
    Prometheus stores on what it scrapes through it: the component's name, or
    `<name>-metrics` where KServe takes the name (Knative)."""
    return view.name if has_own_service_name(view.component) else f"{view.name}-metrics"


def build_service(view: ComponentView) -> Manifest | None:
    """The component's Service. For a Knative InferenceService, KServe itself creates the
    Service named after it (and Knative the ones in front of the queue-proxy), so ours is
    `<name>-metrics`, only for Prometheus, or none without metrics."""
    c = view.component
    if not c.ports or not traits(c.kind).long_running:
        return None
    metadata = selector_metadata(view, "Service")
    ports = list(c.ports)
    if not has_own_service_name(c):
        if c.metrics is None:
            return None
        metadata["name"] = service_name(view)
        ports = [p for p in c.ports if p.name == c.metrics.port]
    if c.metrics is not None:
        metadata["labels"] = {**metadata["labels"], SCRAPED_LABEL: view.name}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "ports": [
                {"name": p.name, "port": p.port, "protocol": p.protocol, "targetPort": p.name}
                for p in ports
            ],
            "selector": selector_labels(view.spec, view.name),
            "type": "ClusterIP",
        },
    }
