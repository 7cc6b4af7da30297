"""Deployment for long-running components."""

from __future__ import annotations

from platformgen.builders.pod import pod_template
from platformgen.naming import Manifest, metadata, selector_labels
from platformgen.resolve import ComponentView


def build_deployment(view: ComponentView) -> Manifest | None:
    if view.component.kind != "Deployment":
        return None
    template = pod_template(view)
    spread = view.override.topology_spread
    if spread is not None:
        template["spec"]["topologySpreadConstraints"] = [
            {
                "labelSelector": {"matchLabels": selector_labels(view.spec, view.name)},
                "maxSkew": spread.max_skew,
                "topologyKey": spread.topology_key,
                "whenUnsatisfiable": spread.when_unsatisfiable,
            }
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(view.spec, view.name, view.component.role, view.namespace),
        "spec": {
            "replicas": view.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector_labels(view.spec, view.name)},
            "strategy": {
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                "type": "RollingUpdate",
            },
            "template": template,
        },
    }
