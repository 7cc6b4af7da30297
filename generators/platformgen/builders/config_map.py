"""ConfigMap of a component's non-secret configuration, loaded with envFrom."""

from __future__ import annotations

from platformgen.naming import Manifest, metadata
from platformgen.resolve import ComponentView


def build_config_map(view: ComponentView) -> Manifest | None:
    if not view.component.config:
        return None
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(view.spec, view.name, view.component.role, view.namespace),
        "data": dict(sorted(view.component.config.items())),
    }
