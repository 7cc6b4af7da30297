"""The chart's templates: each component's objects over its values, content-named objects
per environment, and the platform's objects as fixed data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from platformgen.build import PlatformBuild
from platformgen.build.chart import ChartSource
from platformgen.emit.helm.text import Action, Block, Splice, When, copy_data, write
from platformgen.environments import identity
from platformgen.kinds import traits, tunables
from platformgen.naming import MANAGED_BY_LABEL, Manifest, kebab

CHART_LABEL = "helm.sh/chart"
"""The label every Helm chart puts on its objects' metadata (with MANAGED_BY_LABEL = Helm)."""
INSTANCE_LABEL = "app.kubernetes.io/instance"
"""The release name, on every object's metadata (never in a selector: a renamed release would
orphan the pods of a Deployment)."""
VERSION_LABEL = "app.kubernetes.io/version"
"""The chart's appVersion (the platform's release), on every object's metadata only."""
SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
"""Argo CD's sync wave of the object's kind (kinds.py; the kustomize tree gets the same from
argocd/sync-waves/), so `gitops.source: helm` syncs in the same order. Helm ignores it."""
KEEP = ("helm.sh/resource-policy", "keep")
"""On content-named objects: `helm upgrade` leaves the replaced Job (done, never re-run) and
`helm rollback` finds the old one in place, so it does not create it, and training does not run
again. Argo CD still prunes it (it reads this as Delete=false: only deleting the Application
keeps it)."""


def _walk_dicts(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _walk_dicts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_dicts(item)


def label_knobs(m: Manifest, chart: str) -> None:
    """Helm's labels on the object's metadata (never on pod templates or selectors)."""
    labels = m["metadata"].setdefault("labels", {})
    if MANAGED_BY_LABEL in labels:
        labels[MANAGED_BY_LABEL] = Action("$.Release.Service")
    labels[CHART_LABEL] = Action(f'include "{chart}.chart" $')
    labels[INSTANCE_LABEL] = Action("$.Release.Name")
    labels[VERSION_LABEL] = Action("$.Chart.AppVersion | toJson")


def annotate(m: Manifest) -> Manifest:
    """`m` with its kind's sync wave, and the keep policy if it is content-named."""
    annotations = m["metadata"].setdefault("annotations", {})
    annotations[SYNC_WAVE_ANNOTATION] = str(traits(m["kind"]).sync_wave)
    if traits(m["kind"]).content_named:
        annotations[KEEP[0]] = KEEP[1]
    return m


Change = tuple[tuple[Any, ...], str]
"""(path, "added" | "removed") of a field an optional tunable adds or removes."""


def _changes(a: Any, b: Any, path: tuple[Any, ...], where: str) -> Iterator[Change]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in b.keys() - a.keys():
            yield (*path, key), "added"
        for key in a.keys() - b.keys():
            yield (*path, key), "removed"
        for key in a.keys() & b.keys():
            yield from _changes(a[key], b[key], (*path, key), where)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _changes(x, y, (*path, i), where)
    elif a != b:
        raise AssertionError(
            f"{where}: changes {'.'.join(map(str, path))} instead of adding or removing it;"
            " give the tunable a field path in kinds.py"
        )


def _without_env(m: Manifest, image: str) -> Manifest:
    """`m` without the env of the component's container, which the template renders from the
    `env` value whole (a tunable such as `model` or `canary` may change it)."""
    m = copy_data(m)
    for d in _walk_dicts(m):
        if d.get("image") == image:
            d.pop("env", None)
    return m


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def component_templates(source: ChartSource, chart: str) -> dict[str, str]:
    """`templates/<component>-<kind>.yaml` for one component, from its chart source."""
    view, plain = source.view, source.plain
    kind_tunables = tunables(view.component.kind)
    kind_traits = traits(view.component.kind)
    values = f'index $.Values.components "{view.name}"'
    c = "$c"
    original = {identity(m): m for m in _templated(source.built)}
    objects = copy_data(original)
    conditions: dict[tuple[str, str, str, str], str] = {}
    for knob, knob_built in source.knobs.items():
        built = {identity(m): m for m in _templated(knob_built)}
        for key, m in built.items():
            if key not in objects:
                objects[key] = m
                conditions[key] = f"{c}.{knob}"
                continue
            if key in conditions:
                continue
            where = f"{view.name}: {knob} in {m['kind']}"
            before, after = (_without_env(x, view.image) for x in (original[key], m))
            for path, change in sorted(_changes(before, after, (), where), key=str):
                parent = _get(objects[key], path[:-1])
                if change == "added":
                    parent[When(path[-1], f"{c}.{knob}")] = _get(m, path)
                elif path[-1] in parent:
                    parent[When(path[-1], f"not {c}.{knob}")] = parent.pop(path[-1])
                else:
                    raise AssertionError(f"{where}: {path} is removed by two tunables")
    files: dict[str, str] = {}
    names = stems(list(objects.values()), view.name)
    for (key, m), stem in zip(objects.items(), names, strict=True):
        m = annotate(copy_data(m))
        for knob, path in kind_traits.fields.items():
            if knob in kind_tunables and m["kind"] == view.component.kind:
                _get(m, path[:-1])[path[-1]] = Action(f"{c}.{knob} | toJson")
        for d in _walk_dicts(m):
            if d.get("image") == view.image:
                d["image"] = Action(f'include "{chart}.image" {c}.image')
                if "resources" in d:
                    d["resources"] = Block(f"toYaml {c}.resources")
                if "env" in d:
                    args = f'"env" {c}.env "logLevel" $.Values.logLevel'
                    fixed = [e for e in d["env"] if e != _plain_env(e, plain.env)]
                    if fixed:
                        args += f' "fixed" (fromJsonArray {_go_string(_json(fixed))})'
                    d["env"] = Block(f'include "{chart}.env" (dict {args})')
        carrier = source.carriers.get(key)
        if carrier is not None:
            annotations = m["metadata"].get("annotations", {})
            fixed_annotations = {k: v for k, v in annotations.items() if k not in carrier.keys}
            extra: dict[str, dict[str, str]] = {}
            for tool, check, reason in carrier.waivers:
                if (tool, check) not in source.own_waivers:
                    extra.setdefault(tool, {})[check] = reason
            waived = f"{c}.policyExceptions"
            if extra:
                waived = (
                    f"(merge ({c}.policyExceptions | default dict | deepCopy)"
                    f" (fromJson {_go_string(_json(extra))}))"
                )
            exceptions = f'include "{chart}.policyExceptions" {waived}'
            if fixed_annotations:
                m["metadata"]["annotations"] = {**fixed_annotations, Splice(exceptions): ""}
            else:
                m["metadata"]["annotations"] = Block("", guard=exceptions)
        label_knobs(m, chart)
        preamble = "{{- $c := " + values + " }}\n"
        files[f"templates/{stem}.yaml"] = write(
            m, source.placeholders, preamble, conditions.get(key)
        )
    return files


def _templated(objects: list[Manifest]) -> list[Manifest]:
    """The objects templated over values: all but content-named ones (kinds.py)."""
    return [m for m in objects if not traits(m["kind"]).content_named]


def _plain_env(entry: dict[str, Any], env: dict[str, str]) -> dict[str, Any] | None:
    """`entry` as the helper renders it from the env values, or None if it does not."""
    name = entry["name"]
    return {"name": name, "value": env[name]} if name in env else None


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _go_string(text: str) -> str:
    """A Go template string literal of `text`: raw (backquoted) where it can be."""
    return f"`{text}`" if "`" not in text else json.dumps(text, ensure_ascii=False)


def environment_templates(built: PlatformBuild, chart: str) -> dict[str, str]:
    """`templates/<group>-<kind>-<env>.yaml`: each environment's content-named objects (Jobs,
    PipelineVersions), whole, rendered only when `environment` names that environment.

    Their name is a hash of their content (naming.content_name), and their spec is immutable
    (a Job's pod template; KFP refuses changes to a PipelineVersion). A template over values
    would let `--set` change the content under an unchanged name, which the apiserver refuses
    (or which silently skips the re-run); so platformgen renders them, as it renders them into
    overlays/<env>/<group>/resources/, and a change goes through platform.yaml."""
    files: dict[str, str] = {}
    for environment, environment_build in built.environments.items():
        for group, objects in environment_build.groups.items():
            base = {identity(m) for m in built.base.groups.get(group, [])}
            named = [
                m for m in objects if traits(m["kind"]).content_named and identity(m) not in base
            ]
            condition = f'eq $.Values.environment "{environment}"'
            for m, stem in zip(named, stems(named, group), strict=True):
                files[f"templates/{stem}-{environment}.yaml"] = static_template(m, chart, condition)
    return files


def stems(objects: list[Manifest], group: str) -> list[str]:
    """`<group>-<kind>`, made unique with the object's namespace, then its name, where needed."""
    found = [f"{group}-{kebab(m['kind'])}" for m in objects]
    for attempt in ("namespace", "name"):
        counts = {s: found.count(s) for s in found}
        found = [
            f"{s}-{m['metadata'].get(attempt, m['metadata']['name'])}" if counts[s] > 1 else s
            for s, m in zip(found, objects, strict=True)
        ]
    if len(set(found)) != len(found):
        raise AssertionError(f"template names collide in {group}: {found}")
    return found


def static_template(m: Manifest, chart: str, condition: str | None = None) -> str:
    m = annotate(copy_data(m))
    label_knobs(m, chart)
    return write(m, condition=condition)
