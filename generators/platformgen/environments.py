"""Minimal patches: what an environment changes about each base object, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from platformgen.kinds import merges_lists_by_key
from platformgen.naming import Manifest
from platformgen.spec.effective import image_entry
from platformgen.spec.model import PlatformSpec


@dataclass(frozen=True)
class Overlay:
    """An environment's difference from base."""

    patches: list[Manifest]
    """Strategic-merge patches: identity plus changed fields, for objects base already has."""
    added: list[Manifest]
    """Objects only this environment has (e.g. HorizontalPodAutoscaler, PodDisruptionBudget)."""


_UNCHANGED = object()


def image_pins(spec: PlatformSpec, environment: str) -> dict[str, dict[str, str]]:
    """Image repository -> its kustomize `images:` entry (`name` plus `newTag` or `digest`) in
    `environment`, for the images it pins away from base. A pin applies to every component
    that uses the repository: both emitters read this, so overlays and chart values agree."""
    pins: dict[str, dict[str, str]] = {}
    for name in sorted(spec.components):
        entry = image_entry(spec, environment, name)
        if entry is not None:
            # One entry per repository: spec/images.py refuses two different ones at load.
            pins.setdefault(entry["name"], entry)
    return dict(sorted(pins.items()))


def identity(m: Manifest) -> tuple[str, str, str, str]:
    meta = m["metadata"]
    return (m["apiVersion"], m["kind"], meta.get("namespace", ""), meta["name"])


def compute_overlay(base: list[Manifest], env: list[Manifest]) -> Overlay:
    """Patches and additions that turn `base` into `env`."""
    base_by_id = {identity(m): m for m in base}
    env_ids = {identity(m) for m in env}
    removed = sorted(set(base_by_id) - env_ids)
    if removed:
        raise ValueError(f"environments cannot remove base objects: {removed}")
    patches, added = [], []
    for m in env:
        original = base_by_id.get(identity(m))
        if original is None:
            added.append(m)
            continue
        patch = object_patch(original, m)
        if patch is not None:
            patches.append(patch)
    return Overlay(patches=patches, added=added)


def object_patch(base: Manifest, env: Manifest) -> Manifest | None:
    """Patch from `base` to `env`: identity plus changed fields, or None when equal."""
    changes = _diff(base, env, merges_lists_by_key(env["apiVersion"]))
    if changes is _UNCHANGED:
        return None
    meta = {"name": env["metadata"]["name"]}
    if "namespace" in env["metadata"]:
        meta["namespace"] = env["metadata"]["namespace"]
    patch: Manifest = {"apiVersion": env["apiVersion"], "kind": env["kind"]}
    patch.update(changes)
    patch["metadata"] = {**changes.get("metadata", {}), **meta}
    return patch


def _diff(a: Any, b: Any, by_key: bool) -> Any:
    if a == b:
        return _UNCHANGED
    if isinstance(a, dict) and isinstance(b, dict):
        missing = set(a) - set(b)
        if missing:
            raise ValueError(f"environments cannot remove fields: {sorted(missing)}")
        out = {}
        for key, value in b.items():
            if key not in a:
                out[key] = value
                continue
            sub = _diff(a[key], value, by_key)
            if sub is not _UNCHANGED:
                out[key] = sub
        return out
    if by_key and isinstance(a, list) and isinstance(b, list):
        if _keyed_by_name(a) and _keyed_by_name(b):
            return _diff_named_list(a, b)
    return b


def _keyed_by_name(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _diff_named_list(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lists merged by `name` (containers, env, volumes): only changed items, with their name."""
    before = {item["name"]: item for item in a}
    gone = set(before) - {item["name"] for item in b}
    if gone:
        raise ValueError(f"environments cannot remove list items: {sorted(gone)}")
    out = []
    for item in b:
        old = before.get(item["name"])
        if old is None:
            out.append(item)
            continue
        sub = _diff(old, item, True)
        if sub is not _UNCHANGED:
            out.append({**sub, "name": item["name"]})
    # kustomize puts the patch's items first, then the others in base order. Where that is not
    # the environment's order, the patch lists every item (unchanged ones by name only), so the
    # built object keeps the order the builders gave it.
    patched = {item["name"] for item in out}
    merged_order = [item["name"] for item in out] + [
        item["name"] for item in a if item["name"] not in patched
    ]
    if out and merged_order != [item["name"] for item in b]:
        changed = {item["name"]: item for item in out}
        out = [changed.get(item["name"], {"name": item["name"]}) for item in b]
    return out
