"""Kustomize emitter: `base/` (one folder per component) and `overlays/<env>/` (only diffs)."""

from __future__ import annotations

from typing import Any

from platformgen.build import PLATFORM_GROUP, PlatformBuild
from platformgen.environments import compute_overlay, image_pins
from platformgen.naming import Manifest, kebab
from platformgen.serialize import to_yaml
from platformgen.spec.model import PlatformSpec

KUSTOMIZATION = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


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


def emit_base(built: PlatformBuild) -> dict[str, str]:
    files: dict[str, str] = {}
    groups = built.base.groups
    for group, objects in groups.items():
        names = built.base_files[group]
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


def emit_overlay(built: PlatformBuild, environment: str) -> dict[str, str]:
    """`overlays/<env>/<group>/`: one small overlay per group (the platform folder, each
    component, each pipeline) over `base/<group>`, composed by `overlays/<env>/`.

    `kustomize build overlays/<env>` is the whole environment; `kustomize build
    overlays/<env>/<group>` is one group of it (one Argo CD Application). kustomize's build time
    grows faster than linearly with the number of objects, so small groups keep every
    Application's render time bounded however many components the platform has (see README,
    "Deploy with Argo CD").
    """
    spec = built.spec
    base_groups = built.base.groups
    env_groups = built.environments[environment].groups
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


def emit_kustomize(built: PlatformBuild) -> dict[str, str]:
    """Every kustomize file: base plus one overlay per environment."""
    files = emit_base(built)
    for environment in built.environments:
        files.update(emit_overlay(built, environment))
    return files
