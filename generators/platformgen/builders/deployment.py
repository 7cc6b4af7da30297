"""Deployment for long-running components."""

from __future__ import annotations

from typing import Any

from platformgen.builders.pod import pod_template, workload_metadata
from platformgen.naming import Manifest, selector_labels
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
    template["spec"]["affinity"] = {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": selector_labels(view.spec, view.name)},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                    "weight": 100,
                }
            ]
        }
    }
    spec: dict[str, Any] = {}
    if not view.replicas_managed_by_autoscaler:
        spec["replicas"] = view.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": workload_metadata(view),
        "spec": {
            **spec,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector_labels(view.spec, view.name)},
            "strategy": {
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                "type": "RollingUpdate",
            },
            "template": template,
        },
    }
