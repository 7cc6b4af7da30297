"""Builders: pure functions from the resolved spec to plain manifests, one module per kind.

`COMPONENT_BUILDERS` is the explicit, ordered list of what every component gets; its workload
objects come from the builders its kind's row in kinds.py names (`build_workload`).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, cast

from platformgen.builders.alertmanager_config import build_alertmanager_config
from platformgen.builders.config_map import build_config_map
from platformgen.builders.horizontal_pod_autoscaler import build_horizontal_pod_autoscaler
from platformgen.builders.namespace import build_namespace
from platformgen.builders.network_policy import (
    build_allow_dns,
    build_default_deny,
    build_network_policy,
)
from platformgen.builders.pipeline import build_pipeline, version_name
from platformgen.builders.pod import recording_waivers
from platformgen.builders.pod_disruption_budget import build_pod_disruption_budget
from platformgen.builders.prometheus_rule import build_prometheus_rule
from platformgen.builders.role import build_roles
from platformgen.builders.service import build_service
from platformgen.builders.service_account import build_service_account
from platformgen.builders.service_monitor import build_service_monitor
from platformgen.builders.tenant import build_tenant, build_tenant_roles
from platformgen.kinds import traits
from platformgen.naming import Manifest
from platformgen.resolve import ComponentView, resolve
from platformgen.spec.model import PlatformSpec
from platformgen.waivers import Waiver

ComponentBuilder = Callable[[ComponentView], Manifest | list[Manifest] | None]


@cache
def workload_builders(kind: str) -> tuple[ComponentBuilder, ...]:
    """The builders kinds.py names for the workload objects of a component of `kind`."""
    found = []
    for path in traits(kind).builders:
        module, _, function = path.partition(":")
        found.append(cast(ComponentBuilder, getattr(importlib.import_module(module), function)))
    return tuple(found)


def run_builders(builders: tuple[ComponentBuilder, ...], view: ComponentView) -> list[Manifest]:
    """What `builders` build for `view`, in order (a builder may build none, one or several)."""
    objects: list[Manifest] = []
    for builder in builders:
        built = builder(view)
        if isinstance(built, list):
            objects.extend(built)
        elif built is not None:
            objects.append(built)
    return objects


def build_workload(view: ComponentView) -> list[Manifest]:
    """The objects that run the component's container (and what they need of their own)."""
    return run_builders(workload_builders(view.component.kind), view)


COMPONENT_BUILDERS: tuple[ComponentBuilder, ...] = (
    build_service_account,
    build_roles,
    build_config_map,
    build_workload,
    build_service,
    build_network_policy,
    build_service_monitor,
    build_prometheus_rule,
    build_alertmanager_config,
    build_pod_disruption_budget,
    build_horizontal_pod_autoscaler,
)

PLATFORM_GROUP = "platform"
"""The group (folder) of namespace-wide objects."""


Documents = dict[str, list[dict[str, Any]]]
"""Compiled pipeline objects by pipeline name (read by the shell, see spec.load.load_pipelines)."""


def build_component(view: ComponentView) -> list[Manifest]:
    """Every object of one component in one environment, in COMPONENT_BUILDERS order."""
    return run_builders(COMPONENT_BUILDERS, view)


Carried = list[tuple[Manifest, list[Waiver]]]
"""The objects that carry a component's policy waivers (its workload, a Trainer
TrainingRuntime), each with the waivers its builder wrote on it, sorted."""


def build_component_waived(view: ComponentView) -> tuple[list[Manifest], Carried]:
    """build_component(view), and which of its objects carry the component's waivers."""
    with recording_waivers() as record:
        objects = build_component(view)
    carried = [(m, waivers) for m in objects for meta, waivers in record if m["metadata"] is meta]
    return objects, carried


def deployed_versions(
    spec: PlatformSpec, environment: str | None, pipelines: Documents | None
) -> tuple[tuple[str, str], ...] | None:
    """(pipeline, its PipelineVersion name in `environment`) for every compiled pipeline (None:
    base, or no compiled pipelines given)."""
    if environment is None or pipelines is None:
        return None
    found = (
        (name, version_name(spec, name, documents, environment))
        for name, documents in sorted(pipelines.items())
    )
    return tuple((name, version) for name, version in found if version is not None)


def with_versions(
    views: Sequence[ComponentView], environment: str | None, pipelines: Documents | None
) -> list[ComponentView]:
    """`views` told the PipelineVersions `environment` deploys (unchanged in base)."""
    if not views:
        return []
    versions = deployed_versions(views[0].spec, environment, pipelines)
    if versions is None:
        return list(views)
    return [dataclasses.replace(view, pipeline_versions=versions) for view in views]


def build_platform(
    spec: PlatformSpec,
    environment: str | None,
    pipelines: Documents | None = None,
    views: Sequence[ComponentView] | None = None,
) -> dict[str, list[Manifest]]:
    """Every object for `environment` (None: base), grouped by folder (build_platform_waived)."""
    return build_platform_waived(spec, environment, pipelines, views)[0]


def build_platform_waived(
    spec: PlatformSpec,
    environment: str | None,
    pipelines: Documents | None = None,
    views: Sequence[ComponentView] | None = None,
) -> tuple[dict[str, list[Manifest]], dict[str, Carried]]:
    """Every object for `environment` (None: base), grouped by folder: `platform`, then each
    component and pipeline, and per component the objects that carry its waivers. `views`:
    resolve(spec, environment), when the caller has them."""
    groups: dict[str, list[Manifest]] = {
        PLATFORM_GROUP: [
            m
            for ns in sorted(spec.namespaces)
            for m in (
                build_namespace(spec, ns),
                build_default_deny(spec, ns),
                build_allow_dns(spec, ns),
            )
        ]
        + [m for tenant in sorted(spec.tenancy.tenants) for m in build_tenant(spec, tenant)]
        + build_tenant_roles(spec)
    }
    carried: dict[str, Carried] = {}
    for view in with_versions(
        views if views is not None else resolve(spec, environment), environment, pipelines
    ):
        groups[view.name], carried[view.name] = build_component_waived(view)
    for name, documents in sorted((pipelines or {}).items()):
        groups[name] = build_pipeline(spec, name, documents, environment)
    ordered = dict(sorted(groups.items(), key=lambda g: (g[0] != PLATFORM_GROUP, g[0])))
    return ordered, carried
