"""Every image in an environment that the spec marks `requireDigests` is pinned by digest:
in `kustomize build overlays/<env>` (what is applied), at any depth, so pod templates inside
custom resources count too (KServe predictor, Katib trial template, each pipeline step inside
the PipelineVersion)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from platformgen.spec.load import load_spec

from support import ROOT, tool

DIGEST_REFERENCE = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
SPEC = load_spec(ROOT / "platform.yaml")
PINNED = sorted(name for name, env in SPEC.environments.items() if env.require_digests)


def images(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, reference) of every `image` string anywhere in `value`."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "image" and isinstance(item, str):
                yield where, item
            else:
                yield from images(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from images(item, f"{path}[{i}]")


def test_some_environment_requires_digests() -> None:
    assert "prod" in PINNED


@pytest.mark.tools
@pytest.mark.parametrize("env", PINNED)
def test_every_image_is_pinned_by_digest(env: str) -> None:
    built = subprocess.run(
        [str(tool("kustomize")), "build", str(ROOT / "overlays" / env)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: dict[str, list[str]] = {}
    for doc in yaml.safe_load_all(built):
        if doc:
            subject = f"{doc['kind']} {doc['metadata']['name']}"
            found[subject] = [ref for _, ref in images(doc)]
            for where, ref in images(doc):
                assert DIGEST_REFERENCE.match(ref), f"{subject} {where}: {ref} has no digest"
    kinds = {subject.split()[0] for subject, refs in found.items() if refs}
    # The pod templates of every kind that runs one, including inside custom resources.
    assert kinds >= {"Deployment", "Job", "InferenceService", "Experiment"}
    [version] = [refs for subject, refs in found.items() if subject.startswith("PipelineVersion")]
    steps = {step.image for p in SPEC.pipelines.values() for step in p.steps.values()}
    assert {ref.split("@")[0] for ref in version} == steps


@pytest.mark.tools
def test_the_check_finds_tags() -> None:
    """The same walk over an environment that follows tags finds them (the check can fail)."""
    unpinned = [name for name, env in SPEC.environments.items() if not env.require_digests]
    if not unpinned:
        pytest.skip("every environment requires digests")
    built = subprocess.run(
        [str(tool("kustomize")), "build", str(ROOT / "overlays" / unpinned[0])],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    refs = [ref for doc in yaml.safe_load_all(built) if doc for _, ref in images(doc)]
    assert refs and not all(DIGEST_REFERENCE.match(ref) for ref in refs)
