"""Shared pytest fixtures for the generator tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from support import ROOT, SPECS


def rendered_environments() -> list[str]:
    """Every overlays/<env>/ with a kustomization (what `make render` wrote)."""
    overlays = ROOT / "overlays"
    if not overlays.is_dir():
        return []
    return sorted(p.name for p in overlays.iterdir() if (p / "kustomization.yaml").is_file())


@pytest.fixture(scope="session", params=rendered_environments() or ["<none rendered>"])
def env(request: pytest.FixtureRequest) -> str:
    """Each rendered environment; session-scoped so tests group per environment."""
    name: str = request.param
    if name not in rendered_environments():
        pytest.fail("no rendered overlays/<env>/ found: run `make render`")
    return name


@pytest.fixture
def spec_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a fixture spec into tmp_path as platform.yaml and return its path."""

    def copy(case: str) -> Path:
        target = tmp_path / "platform.yaml"
        shutil.copyfile(SPECS / f"{case}.yaml", target)
        return target

    return copy
