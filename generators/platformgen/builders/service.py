"""Service for components that serve ports. Its ports are the component's, written once."""

from __future__ import annotations

from platformgen.builders.pod import selector_metadata
from platformgen.naming import Manifest, selector_labels
from platformgen.resolve import ComponentView


def build_service(view: ComponentView) -> Manifest | None:
    c = view.component
    if not c.ports or c.kind not in {"Deployment", "InferenceService"}:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": selector_metadata(view, "Service"),
        "spec": {
            "ports": [
                {"name": p.name, "port": p.port, "protocol": p.protocol, "targetPort": p.name}
                for p in c.ports
            ],
            "selector": selector_labels(view.spec, view.name),
            "type": "ClusterIP",
        },
    }
