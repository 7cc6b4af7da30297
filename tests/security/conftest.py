"""Shared fixtures for the security gates: the rendered output of every environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..e2e.kube import ROOT, kustomize_build


@pytest.fixture(scope="session")
def rendered(env: str) -> str:
    """`kustomize build overlays/<env>`: what the cluster receives."""
    return kustomize_build(ROOT / "overlays" / env)


@pytest.fixture(scope="session")
def rendered_file(env: str, rendered: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The environment's output as one multi-document file, for tools that read files."""
    path = tmp_path_factory.mktemp(f"rendered-{env}") / f"{env}.yaml"
    path.write_text(rendered, encoding="utf-8")
    return path
