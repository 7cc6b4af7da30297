"""Every field we set reads back unchanged from the real kube-apiserver after apply.

This is the proof behind platformgen.diff_clean: the apiserver is the judge of which forms
survive (canonical quantities, no nulls, no empty maps or lists). A fixture with a
non-canonical quantity and an empty map shows the comparison catches what the lint forbids.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from .conftest import Applied
from .kube import Cluster, identity, snapshot

pytestmark = pytest.mark.tools


def unchanged(written: Any, live: Any, path: str = "") -> Iterator[str]:
    """Field paths of `written` that do not read back as written (the server may add fields,
    never change or drop ours)."""
    if isinstance(written, dict):
        if not isinstance(live, dict):
            yield f"{path}: wrote a map, read back {live!r}"
            return
        for key, value in written.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in live:
                yield f"{sub}: wrote {value!r}, read back nothing"
            else:
                yield from unchanged(value, live[key], sub)
    elif isinstance(written, list):
        if not isinstance(live, list) or len(live) != len(written):
            yield f"{path}: wrote {len(written)} items, read back {live!r}"
            return
        for i, (w, r) in enumerate(zip(written, live, strict=True)):
            yield from unchanged(w, r, f"{path}[{i}]")
    elif written != live or type(written) is str and type(live) is not str:
        yield f"{path}: wrote {written!r}, read back {live!r}"


def test_every_field_reads_back_unchanged(cluster: Cluster, applied: Applied) -> None:
    live = snapshot(cluster, applied.documents)
    problems = []
    for document in applied.documents:
        obj = live.get(identity(document))
        subject = f"{document['kind']} {document['metadata'].get('namespace', '')}/"
        subject += document["metadata"]["name"]
        if obj is None:
            problems.append(f"{subject}: not found after apply")
            continue
        problems += [f"{subject}: {p}" for p in unchanged(document, obj)]
    assert not problems, "\n".join(problems)


def test_readback_catches_what_the_lint_forbids(cluster: Cluster, applied: Applied) -> None:
    """The broken fixture: a non-canonical quantity and an empty map do not read back."""
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "readback-fixture", "namespace": "default", "annotations": {}},
        "spec": {"hard": {"cpu": "0.5", "memory": "1024Mi", "pods": "10"}},
    }
    cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=readback-fixture",
        "-f",
        "-",
        stdin=yaml.safe_dump(quota),
    )
    try:
        live = cluster.get_json("resourcequota", "readback-fixture", "-n", "default")
        problems = sorted(unchanged(quota, live))
    finally:
        cluster.kubectl("delete", "resourcequota", "readback-fixture", "-n", "default")
    assert problems == [
        "metadata.annotations: wrote {}, read back nothing",
        "spec.hard.cpu: wrote '0.5', read back '500m'",
        "spec.hard.memory: wrote '1024Mi', read back '1Gi'",
    ]
