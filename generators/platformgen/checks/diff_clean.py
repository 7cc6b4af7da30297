"""Diff-clean objects: what we write is what the apiserver stores, so a second apply or an
Argo CD sync finds nothing to change.

The apiserver drops nulls, keeps or drops empty maps and lists depending on the field,
rewrites quantities to their canonical form (`1000m` is stored as `1`, `1024Mi` as `1Gi`) and
merges list items that share a key. Any of those in a manifest makes the live object differ
from the rendered one forever: Argo CD shows it OutOfSync, `kubectl diff` is never empty.
`check_object` reports each one with its field path; the tests run it over every object
both emitters render (tests/test_diff_clean.py).
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterator
from typing import Any

from platformgen.naming import Manifest
from platformgen.quantity import canonical_bytes, canonical_cpu

ALLOWED_EMPTY: tuple[tuple[str, str, str], ...] = (
    (
        "NetworkPolicy",
        "spec.podSelector",
        "{} selects every pod of the namespace; the apiserver stores and returns it as {}",
    ),
)
"""(kind, field path glob, why): the only places an empty map or list is meaningful."""

QUANTITY_FIELDS: tuple[str, ...] = (
    "*.resources.limits.*",
    "*.resources.requests.*",
    "*.emptyDir.sizeLimit",
    "*.target.averageValue",
    "*.target.value",
)
"""Field path globs (list indices removed) whose values are resource.Quantity."""

LIST_KEYS: tuple[str, ...] = ("name", "mountPath")
"""Keys that identify the items of a list (the apiserver merges items that share one)."""


def _subject(m: Manifest) -> str:
    meta = m.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{m.get('kind')} {where}{meta.get('name')}"


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def _without_indices(path: str) -> str:
    out, depth = [], 0
    for char in path:
        depth += char == "["
        if not depth:
            out.append(char)
        depth -= char == "]"
    return "".join(out)


def canonical_quantity(path: str, value: str) -> str:
    """The form the apiserver stores `value` in (cpu in milli-units, the rest in bytes)."""
    return canonical_cpu(value) if path.endswith("cpu") else canonical_bytes(value)


def check_object(m: Manifest) -> list[str]:
    """Why `m` would not read back unchanged from the apiserver (empty when it would)."""
    problems: list[str] = []
    kind = str(m.get("kind"))
    for path, value in _walk(m, ""):
        plain = _without_indices(path)
        if value is None:
            problems.append(f"{path}: null (the apiserver drops it)")
        elif isinstance(value, dict | list) and not value and path:
            allowed = any(
                kind == k and fnmatch.fnmatchcase(plain, glob) for k, glob, _ in ALLOWED_EMPTY
            )
            if not allowed:
                problems.append(f"{path}: empty {'map' if isinstance(value, dict) else 'list'}")
        elif any(fnmatch.fnmatchcase("." + plain, glob) for glob in QUANTITY_FIELDS):
            if not isinstance(value, str):
                problems.append(f"{path}: quantity {value!r} must be a string")
            else:
                try:
                    canonical = canonical_quantity(plain, value)
                except ArithmeticError:
                    problems.append(f"{path}: {value!r} is not a quantity")
                    continue
                if canonical != value:
                    problems.append(f"{path}: quantity {value!r} is stored as {canonical!r}")
        if isinstance(value, list) and all(isinstance(i, dict) for i in value):
            for key in LIST_KEYS:
                if value and all(key in item for item in value):
                    counts = Counter(str(item[key]) for item in value)
                    for item_key, n in sorted(counts.items()):
                        if n > 1:
                            problems.append(f"{path}: {n} items with {key} {item_key!r}")
    return [f"{_subject(m)}: {p}" for p in problems]


def check_objects(objects: list[Manifest]) -> list[str]:
    return [p for m in objects for p in check_object(m)]
