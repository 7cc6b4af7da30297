"""The spec as seen by one environment: each component with its overrides applied."""

from __future__ import annotations

from dataclasses import dataclass

from platformgen.spec.model import (
    Component,
    ComponentOverride,
    PlatformSpec,
    ResourceList,
    Resources,
)


@dataclass(frozen=True)
class ComponentView:
    """Everything a builder needs about one component in one environment."""

    name: str
    spec: PlatformSpec
    component: Component
    override: ComponentOverride
    log_level: str

    @property
    def namespace(self) -> str:
        return self.component.namespace

    @property
    def image(self) -> str:
        """The base image reference; environments retag it with kustomize `images:`."""
        return f"{self.component.image}:{self.spec.defaults.image_tag}"

    @property
    def replicas(self) -> int:
        if self.override.autoscaling is not None:
            return self.override.autoscaling.min_replicas
        if self.override.replicas is not None:
            return self.override.replicas
        return self.component.replicas

    @property
    def resources(self) -> Resources:
        """defaults <- component <- environment, field by field."""
        layers = [self.spec.defaults.resources, self.component.resources, self.override.resources]
        return Resources(
            requests=_merge([r.requests for r in layers if r is not None]),
            limits=_merge([r.limits for r in layers if r is not None]),
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            "LOG_LEVEL": self.log_level.upper(),
            **self.component.env,
            **(self.override.env or {}),
        }


def _merge(lists: list[ResourceList]) -> ResourceList:
    merged: dict[str, object] = {}
    for layer in lists:
        merged.update(layer.model_dump(exclude_none=True))
    return ResourceList.model_validate(merged)


def resolve(spec: PlatformSpec, environment: str | None) -> list[ComponentView]:
    """Component views for `environment`, or for base when it is None. Sorted by name."""
    env = spec.environments[environment] if environment is not None else None
    log_level = (env.log_level if env else None) or spec.defaults.log_level
    views = []
    for name in sorted(spec.components):
        override = env.components.get(name) if env else None
        views.append(
            ComponentView(
                name=name,
                spec=spec,
                component=spec.components[name],
                override=override or ComponentOverride(),
                log_level=log_level,
            )
        )
    return views
