"""PodDisruptionBudget, where an environment asks for one."""

from __future__ import annotations

from typing import Any

from platformgen.naming import Manifest, metadata, selector_labels
from platformgen.resolve import ComponentView


def build_pod_disruption_budget(view: ComponentView) -> Manifest | None:
    budget = view.override.disruption_budget
    if budget is None:
        return None
    spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(view.spec, view.name)},
        # Crash-looping pods must not block node drains: evicting them cannot hurt availability.
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }
    if budget.min_available is not None:
        spec["minAvailable"] = budget.min_available
    if budget.max_unavailable is not None:
        spec["maxUnavailable"] = budget.max_unavailable
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(view.spec, view.name, view.component.role, view.namespace),
        "spec": spec,
    }
