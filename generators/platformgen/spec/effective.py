"""What a component is in one environment, from the spec alone: the layered values that
resolve's views, admission checks and the Helm values all need (stated once, here)."""

from __future__ import annotations

from platformgen.spec.model import (
    Component,
    ComponentOverride,
    ImagePin,
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


def environment_image(
    spec: PlatformSpec,
    environment: str | None,
    name: str,
    repository: str,
    pin: ImagePin | None = None,
) -> str:
    """`repository` with the tag or digest `environment` gives component (or step) `name`:
    its pin (`images.<name>`, or `pin` for pipeline steps), else the environment's imageTag,
    else defaults.imageTag."""
    env = spec.environments[environment] if environment is not None else None
    if env is not None and pin is None:
        pin = env.images.get(name)
    if pin is not None and pin.digest is not None:
        return f"{repository}@{pin.digest}"
    if pin is not None and pin.tag is not None:
        return f"{repository}:{pin.tag}"
    if env is not None and env.image_tag is not None:
        return f"{repository}:{env.image_tag}"
    return f"{repository}:{spec.defaults.image_tag}"


def image_entry(spec: PlatformSpec, environment: str, name: str) -> dict[str, str] | None:
    """The kustomize `images:` entry (`name` plus `newTag` or `digest`) component `name`'s pin
    in `environment` asks for, or None where the environment runs base's reference."""
    env = spec.environments[environment]
    pin = env.images.get(name)
    entry = {"name": spec.components[name].image}
    if pin is not None and pin.digest is not None:
        entry["digest"] = pin.digest
    elif pin is not None and pin.tag is not None:
        entry["newTag"] = pin.tag
    elif env.image_tag is not None and env.image_tag != spec.defaults.image_tag:
        entry["newTag"] = env.image_tag
    else:
        return None
    return entry


def _merge(lists: list[ResourceList]) -> ResourceList:
    merged: dict[str, object] = {}
    for layer in lists:
        merged.update(layer.model_dump(exclude_none=True))
    return ResourceList.model_validate(merged)
