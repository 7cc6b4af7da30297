"""Build once, emit many: the spec built into every environment's objects in one pass.

`build` resolves each environment (None: base) once, runs the builders once per view, and
collects the side facts emitters need: the chart's per-component sources (builds with
placeholders at the tunables, see build/chart.py) and each workload's waivers and resources.
Every emitter reads this one `PlatformBuild`; none calls `resolve` or a builder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from platformgen.build.chart import ChartSource, chart_source, workload_waivers
from platformgen.build.checks import base_files
from platformgen.builders import (
    PLATFORM_GROUP,
    Documents,
    build_component_waived,
    build_platform_waived,
    with_versions,
)
from platformgen.builders.pod import resources
from platformgen.kinds import traits
from platformgen.naming import Manifest
from platformgen.resolve import ComponentView, resolve
from platformgen.spec.model import PlatformSpec
from platformgen.waivers import Waiver

__all__ = [
    "PLATFORM_GROUP",
    "ComponentView",
    "Documents",
    "EnvironmentBuild",
    "PlatformBuild",
    "Workload",
    "build",
    "charted",
]
"""What emitters use: the build and the types and names its parts come in."""


@dataclass(frozen=True)
class Workload:
    """What an environment gives one charted component's workload (the chart's values)."""

    resources: dict[str, Any]
    """Its container's requests and limits, as in the object."""
    waivers: list[Waiver]
    """Every waiver on the workload: the spec's, the environment's and the builder's."""


@dataclass(frozen=True)
class EnvironmentBuild:
    """One environment (or base) built."""

    environment: str | None
    """None: base."""
    views: tuple[ComponentView, ...]
    """Every component resolved for this environment, sorted by name."""
    groups: Mapping[str, list[Manifest]]
    """Every object by group (folder): `platform`, then each component and pipeline."""
    workloads: Mapping[str, Workload]
    """Per component whose workload the chart templates (not content-named)."""

    @property
    def log_level(self) -> str | None:
        return self.views[0].log_level if self.views else None

    def objects(self) -> Iterator[Manifest]:
        for objects in self.groups.values():
            yield from objects


@dataclass(frozen=True)
class PlatformBuild:
    """The whole platform built: base, each environment, and the chart's sources."""

    spec: PlatformSpec
    base: EnvironmentBuild
    environments: Mapping[str, EnvironmentBuild]
    """By environment name, sorted."""
    charts: Mapping[str, ChartSource]
    """Per component, its builds with placeholders at the tunables (build/chart.py)."""
    base_files: Mapping[str, list[str]]
    """The file name of each object of base, by group (build/checks.py)."""


def charted(view: ComponentView) -> bool:
    """The component has chart values: its workload is templated over them (a content-named
    one is fixed data per environment)."""
    return not traits(view.component.kind).content_named


def build_environment(
    spec: PlatformSpec, environment: str | None, pipelines: Documents | None
) -> EnvironmentBuild:
    views = tuple(with_versions(resolve(spec, environment), environment, pipelines))
    groups, carried = build_platform_waived(spec, environment, pipelines, views)
    workloads = {}
    for view in views:
        if not charted(view):
            continue
        # Base has no environment; its workload is built as an environment's would be.
        waived = (
            carried[view.name]
            if environment is not None
            else build_component_waived(dataclasses.replace(view, is_base=False))[1]
        )
        workloads[view.name] = Workload(resources(view), workload_waivers(view, waived))
    return EnvironmentBuild(environment, views, groups, workloads)


def build(spec: PlatformSpec, pipelines: Documents | None = None) -> PlatformBuild:
    """Everything every emitter needs, built once. `pipelines`: the compiled KFP objects of
    `spec.pipelines` (spec.load.load_pipelines)."""
    base = build_environment(spec, None, pipelines)
    files = base_files(spec, base.groups)
    return PlatformBuild(
        spec=spec,
        base=base,
        base_files=files,
        environments={
            env: build_environment(spec, env, pipelines) for env in sorted(spec.environments)
        },
        charts={view.name: chart_source(view) for view in base.views},
    )
