"""Kustomize emitter: `base/` (one folder per component) and `overlays/<env>/` (only diffs)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from platformgen.builders import PLATFORM_GROUP, Documents, build_platform
from platformgen.environments import compute_overlay, image_pins
from platformgen.errors import SpecError
from platformgen.naming import Manifest
from platformgen.serialize import to_yaml
from platformgen.spec.model import PlatformSpec

KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


def kebab(kind: str) -> str:
    """HorizontalPodAutoscaler -> horizontal-pod-autoscaler."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()


def _file_names(spec: PlatformSpec, objects: list[Manifest], group: str) -> list[str]:
    """`<kind>.yaml`, made unique with the object name, then its namespace, where needed."""
    kinds = Counter(m["kind"] for m in objects)
    names = []
    for m in objects:
        meta = m["metadata"]
        stem = kebab(m["kind"])
        if group == PLATFORM_GROUP and "namespace" not in meta and m["kind"] != "Namespace":
            stem = f"{stem}-{meta['name']}"  # cluster-wide: the tenant roles
        elif group == PLATFORM_GROUP and m["kind"] != "Namespace":
            stem = f"{meta['namespace']}/{stem}-{meta['name']}"
        elif group == PLATFORM_GROUP:
            stem = f"{meta['name']}/{stem}"
        elif kinds[m["kind"]] > 1:
            namespaces = Counter(
                o["metadata"].get("namespace") for o in objects if o["kind"] == m["kind"]
            )
            suffix = meta.get("namespace") if namespaces[meta.get("namespace")] == 1 else None
            stem = f"{stem}-{suffix or meta['name']}"
        names.append(f"{stem}.yaml")
    collisions = sorted(n for n, count in Counter(names).items() if count > 1)
    if collisions:
        where = f"pipelines.{group}" if group in spec.pipelines else f"components.{group}"
        raise SpecError(
            [
                f"platform.yaml: {where}: two objects would be written to the same file "
                f"{', '.join(f'base/{group}/{n}' for n in collisions)} (same kind and name): "
                "rename one of them"
            ]
        )
    return names


def _patch_file(m: Manifest, folder: str) -> str:
    meta = m["metadata"]
    return f"{folder}/{meta['name']}.{kebab(m['kind'])}.yaml"


def _target(m: Manifest) -> dict[str, Any]:
    group, _, version = m["apiVersion"].rpartition("/")
    target = {"kind": m["kind"], "name": m["metadata"]["name"], "version": version}
    if group:
        target["group"] = group
    if "namespace" in m["metadata"]:
        target["namespace"] = m["metadata"]["namespace"]
    return target


def _check_unique_objects(spec: PlatformSpec, groups: dict[str, list[Manifest]]) -> None:
    """Two objects with one kind, namespace and name: kustomize and the apiserver refuse."""
    owners: dict[tuple[str, str, str], str] = {}
    problems = []
    for group, objects in groups.items():
        for m in objects:
            key = (m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"])
            other = owners.setdefault(key, group)
            if other != group:
                where = f"pipelines.{group}" if group in spec.pipelines else f"components.{group}"
                problems.append(
                    f"platform.yaml: {where}: its {key[0]} {key[1]}/{key[2]} is also rendered "
                    f"for {other!r}: two objects cannot share a kind, namespace and name"
                )
    if problems:
        raise SpecError(problems)


def emit_base(spec: PlatformSpec, pipelines: Documents | None = None) -> dict[str, str]:
    files: dict[str, str] = {}
    groups = build_platform(spec, None, pipelines)
    _check_unique_objects(spec, groups)
    for group, objects in groups.items():
        names = _file_names(spec, objects, group)
        for name, m in zip(names, objects, strict=True):
            files[f"base/{group}/{name}"] = to_yaml(m)
        files[f"base/{group}/kustomization.yaml"] = to_yaml(
            {**KUSTOMIZATION, "resources": sorted(names)}
        )
    files["base/kustomization.yaml"] = to_yaml(
        {
            **KUSTOMIZATION,
            "resources": [PLATFORM_GROUP, *sorted(g for g in groups if g != PLATFORM_GROUP)],
        }
    )
    return files


def _images(spec: PlatformSpec, environment: str) -> list[dict[str, str]]:
    return [entry for _, entry in sorted(image_pins(spec, environment).items())]


def _image_names(value: Any) -> set[str]:
    """Every image name a string in `value` (the objects of one group) may refer to, for
    matching `images:` entries: each string whole, and each of its prefixes that a `:` or `@`
    follows (`repo:tag`, `repo@sha256:...` give `repo`). An entry named N is used when N is in
    this set: a string equal to N or starting with `N:` or `N@`."""
    strings: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and item not in strings:
            strings.add(item)
            for i, ch in enumerate(item):
                if ch == ":" or ch == "@":
                    strings.add(item[:i])
    return strings


def emit_overlay(
    spec: PlatformSpec, environment: str, pipelines: Documents | None = None
) -> dict[str, str]:
    """`overlays/<env>/<group>/`: one small overlay per group (the platform folder, each
    component, each pipeline) over `base/<group>`, composed by `overlays/<env>/`.

    `kustomize build overlays/<env>` is the whole environment; `kustomize build
    overlays/<env>/<group>` is one group of it (one Argo CD Application). kustomize's build time
    grows faster than linearly with the number of objects, so small groups keep every
    Application's render time bounded however many components the platform has (see README,
    "Deploy with Argo CD").
    """
    base_groups = build_platform(spec, None, pipelines)
    env_groups = build_platform(spec, environment, pipelines)
    images = _images(spec, environment)
    root = f"overlays/{environment}"
    files: dict[str, str] = {}
    for group, env_objects in env_groups.items():
        overlay = compute_overlay(base_groups[group], env_objects)
        folder = f"{root}/{group}"
        patches = []
        for patch in overlay.patches:
            path = _patch_file(patch, "patches")
            files[f"{folder}/{path}"] = to_yaml(patch)
            patches.append({"path": path, "target": _target(patch)})
        added = []
        for m in overlay.added:
            path = _patch_file(m, "resources")
            files[f"{folder}/{path}"] = to_yaml(m)
            added.append(path)
        kustomization: dict[str, Any] = {
            **KUSTOMIZATION,
            "resources": [f"../../../base/{group}", *sorted(added)],
        }
        if patches:
            kustomization["patches"] = sorted(patches, key=lambda p: p["path"])
        strings = _image_names(env_objects)
        used = [entry for entry in images if entry["name"] in strings]
        if used:
            kustomization["images"] = used
        files[f"{folder}/kustomization.yaml"] = to_yaml(kustomization)
    files[f"{root}/kustomization.yaml"] = to_yaml({**KUSTOMIZATION, "resources": list(env_groups)})
    return files


def emit_kustomize(spec: PlatformSpec, pipelines: Documents | None = None) -> dict[str, str]:
    """Every kustomize file: base plus one overlay per environment."""
    files = emit_base(spec, pipelines)
    for environment in sorted(spec.environments):
        files.update(emit_overlay(spec, environment, pipelines))
    return files
