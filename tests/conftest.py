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


def xdist_group(item: pytest.Item) -> str:
    """The unit `make test` schedules on one pytest-xdist worker (--dist loadgroup): every test
    on an environment's control plane (tests/e2e, session-scoped per environment, Argo CD last),
    else the test's file, so module-scoped fixtures (the alert chain, the pipeline runs) are
    built once."""
    if "cluster" in getattr(item, "fixturenames", ()):
        return f"cluster-{item.callspec.params['env']}"  # type: ignore[attr-defined]
    if "node_session" in getattr(item, "fixturenames", ()):
        return "node"  # one cluster with a node for every test on it (tests/e2e/conftest.py)
    return item.path.relative_to(ROOT).as_posix()


SLOWEST_FIRST = ("node", "cluster-", "tests/e2e/", "pipelines/", "components/train/")
"""Groups handed out first (they are the longest), so no worker starts one at the end."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    groups = {item.nodeid: xdist_group(item) for item in items}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))

    def rank(item: pytest.Item) -> int:
        group = groups[item.nodeid]
        starts = [i for i, prefix in enumerate(SLOWEST_FIRST) if group.startswith(prefix)]
        return starts[0] if starts else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: each group keeps pytest's order


@pytest.fixture
def spec_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a fixture spec into tmp_path as platform.yaml and return its path."""

    def copy(case: str) -> Path:
        target = tmp_path / "platform.yaml"
        shutil.copyfile(SPECS / f"{case}.yaml", target)
        return target

    return copy
