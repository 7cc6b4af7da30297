"""Builders: pure functions from the resolved spec to plain manifests, one module per kind.

`COMPONENT_BUILDERS` is the explicit, ordered list; no registry magic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from platformgen.builders.alertmanager_config import build_alertmanager_config
from platformgen.builders.config_map import build_config_map
from platformgen.builders.cron_job import build_cron_job
from platformgen.builders.deployment import build_deployment
from platformgen.builders.experiment import build_experiment
from platformgen.builders.horizontal_pod_autoscaler import build_horizontal_pod_autoscaler
from platformgen.builders.inference_service import build_inference_service
from platformgen.builders.job import build_job
from platformgen.builders.namespace import build_namespace
from platformgen.builders.network_policy import (
    build_allow_dns,
    build_default_deny,
    build_network_policy,
)
from platformgen.builders.pipeline import build_pipeline, version_name
from platformgen.builders.pod_disruption_budget import build_pod_disruption_budget
from platformgen.builders.prometheus_rule import build_prometheus_rule
from platformgen.builders.role import build_roles
from platformgen.builders.service import build_service
from platformgen.builders.service_account import build_service_account
from platformgen.builders.service_monitor import build_service_monitor
from platformgen.builders.tenant import build_tenant, build_tenant_roles
from platformgen.builders.train_job import build_train_job, build_training_runtime
from platformgen.naming import Manifest
from platformgen.resolve import ComponentView, remember, resolve
from platformgen.spec.model import PlatformSpec

ComponentBuilder = Callable[[ComponentView], Manifest | list[Manifest] | None]

COMPONENT_BUILDERS: tuple[ComponentBuilder, ...] = (
    build_service_account,
    build_roles,
    build_config_map,
    build_deployment,
    build_job,
    build_cron_job,
    build_inference_service,
    build_experiment,
    build_training_runtime,
    build_train_job,
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
    objects: list[Manifest] = []
    for builder in COMPONENT_BUILDERS:
        built = builder(view)
        if isinstance(built, list):
            objects.extend(built)
        elif built is not None:
            objects.append(built)
    return objects


def build_platform(
    spec: PlatformSpec, environment: str | None, pipelines: Documents | None = None
) -> dict[str, list[Manifest]]:
    """Every object for `environment` (None: base), grouped by folder: `platform`, then each
    component and pipeline. Inside `resolve.memoized` (a render), built once per environment:
    callers get their own dict and lists over the same (never mutated) manifests."""
    groups = remember(
        f"build_platform:{environment}",
        (spec, pipelines),
        lambda: _build_platform(spec, environment, pipelines),
    )
    return {group: list(objects) for group, objects in groups.items()}


def _build_platform(
    spec: PlatformSpec, environment: str | None, pipelines: Documents | None
) -> dict[str, list[Manifest]]:
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
    versions: tuple[tuple[str, str], ...] | None = None
    if environment is not None and pipelines is not None:
        found = (
            (name, version_name(spec, name, documents, environment))
            for name, documents in sorted(pipelines.items())
        )
        versions = tuple((name, version) for name, version in found if version is not None)
    for view in resolve(spec, environment):
        if versions is not None:
            view = dataclasses.replace(view, pipeline_versions=versions)
        groups[view.name] = build_component(view)
    for name, documents in sorted((pipelines or {}).items()):
        groups[name] = build_pipeline(spec, name, documents, environment)
    return dict(sorted(groups.items(), key=lambda g: (g[0] != PLATFORM_GROUP, g[0])))
