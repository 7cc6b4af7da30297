"""What a component is in one environment, from the spec alone: the layered values that
resolve's views, admission checks and the Helm values all need (stated once, here)."""

from __future__ import annotations

from platformgen.spec.model import (
    Component,
    ComponentOverride,
    PlatformSpec,
    ResourceList,
    Resources,
)


def effective_resources(
    spec: PlatformSpec, component: Component, override: ComponentOverride
) -> Resources:
    """defaults <- component <- environment, field by field."""
    layers = [spec.defaults.resources, component.resources, override.resources]
    return Resources(
        requests=_merge([r.requests for r in layers if r is not None]),
        limits=_merge([r.limits for r in layers if r is not None]),
    )


def effective_replicas(component: Component, override: ComponentOverride) -> int:
    """The autoscaler's minimum, else the environment's replicas, else the component's."""
    if override.autoscaling is not None:
        return override.autoscaling.min_replicas
    if override.replicas is not None:
        return override.replicas
    return component.replicas


def _merge(lists: list[ResourceList]) -> ResourceList:
    merged: dict[str, object] = {}
    for layer in lists:
        merged.update(layer.model_dump(exclude_none=True))
    return ResourceList.model_validate(merged)
