"""Checks of the build, before anything is emitted: problems the spec only shows once it is
built (two components rendering one object, two objects one file name), reported together
at their spec paths like the load-time checks of spec/."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from platformgen.builders import PLATFORM_GROUP
from platformgen.errors import SpecError
from platformgen.naming import Manifest, kebab
from platformgen.spec.model import PlatformSpec

Problem = str


def _where(spec: PlatformSpec, group: str) -> str:
    return f"pipelines.{group}" if group in spec.pipelines else f"components.{group}"


def base_files(spec: PlatformSpec, groups: Mapping[str, list[Manifest]]) -> dict[str, list[str]]:
    """The file name of each object of base, by group (`base/<group>/<name>`), once every
    object is known to be unique and to have a file of its own; SpecError otherwise."""
    problems = list(_duplicate_objects(spec, groups))
    names = {group: _file_names(objects, group) for group, objects in groups.items()}
    for group, found in names.items():
        collisions = sorted(n for n, count in Counter(found).items() if count > 1)
        if collisions:
            problems.append(
                f"platform.yaml: {_where(spec, group)}: two objects would be written to the same "
                f"file {', '.join(f'base/{group}/{n}' for n in collisions)} (same kind and "
                "name): rename one of them"
            )
    if problems:
        raise SpecError(problems)
    return names


def _duplicate_objects(spec: PlatformSpec, groups: Mapping[str, list[Manifest]]) -> list[Problem]:
    """Two objects with one kind, namespace and name: kustomize and the apiserver refuse."""
    owners: dict[tuple[str, str, str], str] = {}
    problems = []
    for group, objects in groups.items():
        for m in objects:
            key = (m["kind"], m["metadata"].get("namespace", ""), m["metadata"]["name"])
            other = owners.setdefault(key, group)
            if other != group:
                problems.append(
                    f"platform.yaml: {_where(spec, group)}: its {key[0]} {key[1]}/{key[2]} is "
                    f"also rendered for {other!r}: two objects cannot share a kind, namespace "
                    "and name"
                )
    return problems


def _file_names(objects: list[Manifest], group: str) -> list[str]:
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
    return names
