"""The spec as seen by one environment: each component with its overrides applied."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from mlp_common import contracts

from platformgen.errors import SpecError
from platformgen.spec.effective import (
    effective_replicas,
    effective_resources,
    environment_image,
)
from platformgen.spec.model import (
    Component,
    ComponentOverride,
    PlatformSpec,
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
    is_base: bool = False
    """This view renders base/ (no environment applied)."""
    autoscaled_somewhere: bool = False
    """Some environment autoscales this component, so base leaves replicas to the HPA."""
    environment_exceptions: tuple[tuple[str, str, str], ...] = ()
    """(tool, check, reason) waived for every workload of this environment."""
    environment: str | None = None
    """The environment this view renders (None: base)."""
    dependents: tuple[str, ...] = ()
    """The components whose `dependsOn` names this one, sorted (resolve.dependents)."""
    pipeline_versions: tuple[tuple[str, str], ...] | None = None
    """(pipeline, the PipelineVersion name it deploys in this environment), for components
    that run a pipeline (builders.pipeline.version_name; set by builders.build_platform when
    it is given the compiled pipelines; None: not given)."""

    @property
    def namespace(self) -> str:
        return self.component.namespace

    @property
    def image(self) -> str:
        """The base image reference; environments retag it with kustomize `images:`."""
        return f"{self.component.image}:{self.spec.defaults.image_tag}"

    @property
    def resolved_image(self) -> str:
        """The image reference this environment runs: what kustomize `images:` makes of
        `image` (for objects rendered whole into an overlay, such as content-named Jobs)."""
        return environment_image(self.spec, self.environment, self.name, self.component.image)

    @property
    def replicas(self) -> int:
        return effective_replicas(self.component, self.override)

    @property
    def replicas_managed_by_autoscaler(self) -> bool:
        """No `replicas` in the manifest: an HPA owns it here, or base defers to environments."""
        if self.override.autoscaling is not None:
            return True
        return self.is_base and self.autoscaled_somewhere

    @property
    def policy_exceptions(self) -> list[tuple[str, str, str]]:
        """(tool, check, reason), from the component, then the environment, sorted."""
        found: dict[tuple[str, str], str] = {
            (tool, check): reason
            for source in (self.component.policy_exceptions, self.override.policy_exceptions)
            for tool, checks in source.items()
            for check, reason in checks.items()
        }
        for tool, check, reason in self.environment_exceptions:
            found.setdefault((tool, check), reason)
        return sorted((tool, check, reason) for (tool, check), reason in found.items())

    @cached_property
    def resources(self) -> Resources:
        """defaults <- component <- environment, field by field."""
        return effective_resources(self.spec, self.component, self.override)

    @property
    def stable_model_version(self) -> int | str | None:
        """The registry version the stable revision serves (`model.version`, the environment's
        pin first), or None when the component declares no `model`."""
        if self.component.model is None:
            return None
        if self.override.model is not None:
            return self.override.model.version
        return self.component.model.version

    @property
    def model_env(self) -> dict[str, str]:
        """MLP_MODEL and MLP_MODEL_VERSION of a component that declares `model`: the version the
        revision rendered from this spec serves, which is the canary's while a canary is set."""
        model = self.component.model
        if model is None:
            return {}
        canary = self.override.canary
        served = canary.version if canary is not None and canary.version else None
        version = served or self.stable_model_version
        return {contracts.MODEL: model.name, contracts.MODEL_VERSION: str(version)}

    @property
    def deployed_version(self) -> str | None:
        """The PipelineVersion this environment deploys of the component's `pipeline` (None:
        no pipeline, or the build was not given the compiled pipelines, as in base)."""
        pipeline = self.component.pipeline
        if pipeline is None or self.pipeline_versions is None:
            return None
        versions = dict(self.pipeline_versions)
        if pipeline not in versions:
            raise SpecError(
                [
                    f"platform.yaml: components.{self.name}.pipeline: pipeline {pipeline!r} has "
                    "no compiled PipelineVersion (run `mlp-pipeline compile`)"
                ]
            )
        return versions[pipeline]

    @property
    def pipeline_env(self) -> dict[str, str]:
        """MLP_PIPELINE, MLP_PIPELINE_NAMESPACE and (in an environment) MLP_PIPELINE_VERSION of
        a Deployment that declares `pipeline`, e.g. a monitor that starts runs of it. Jobs and
        RecurringRuns are told by arguments instead (builders.job.kfp_arguments)."""
        c = self.component
        if c.pipeline is None or c.kind != "Deployment":
            return {}
        out = {
            contracts.PIPELINE: c.pipeline,
            contracts.PIPELINE_NAMESPACE: self.spec.pipelines[c.pipeline].namespace,
        }
        version = self.deployed_version
        if version is not None:
            out[contracts.PIPELINE_VERSION] = version
        return out

    @property
    def env(self) -> dict[str, str]:
        return {
            "LOG_LEVEL": self.log_level.upper(),
            **self.component.env,
            **(self.override.env or {}),
            **self.model_env,
            **self.pipeline_env,
        }


def resolve(spec: PlatformSpec, environment: str | None) -> list[ComponentView]:
    """Component views for `environment`, or for base when it is None. Sorted by name."""
    env = spec.environments[environment] if environment is not None else None
    log_level = (env.log_level if env else None) or spec.defaults.log_level
    env_exceptions = tuple(
        (tool, check, reason)
        for tool, checks in (env.policy_exceptions.items() if env else ())
        for check, reason in checks.items()
    )
    views = []
    found = dependents(spec)
    for name in sorted(spec.components):
        override = env.components.get(name) if env else None
        autoscaled = any(
            e.components.get(name) is not None and e.components[name].autoscaling is not None
            for e in spec.environments.values()
        )
        views.append(
            ComponentView(
                name=name,
                spec=spec,
                component=spec.components[name],
                override=override or ComponentOverride(),
                log_level=log_level,
                is_base=environment is None,
                autoscaled_somewhere=autoscaled,
                environment_exceptions=env_exceptions,
                environment=environment,
                dependents=tuple(found.get(name, ())),
            )
        )
    return views


def dependents(spec: PlatformSpec) -> dict[str, list[str]]:
    """Component -> the components whose `dependsOn` names it, sorted (one pass over the
    spec instead of one per component)."""
    found: dict[str, list[str]] = {}
    for name in sorted(spec.components):
        for target in dict.fromkeys(spec.components[name].depends_on):
            found.setdefault(target, []).append(name)
    return found
