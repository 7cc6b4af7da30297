"""Shared pytest fixtures for the generator tests."""

from __future__ import annotations

import json
import os
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


DURATIONS = ROOT / "tests" / "durations.json"
"""Seconds each group took in a measured `make test` (`make test-durations` rewrites it). The
groups are handed out longest first, so no worker starts a long one when the others are done."""

SLOWEST_FIRST = {
    "node": 600.0,
    "cluster-": 300.0,
    "tests/e2e/": 120.0,
    "tests/bench/": 120.0,
    "tests/images/": 60.0,
    "pipelines/": 30.0,
    "components/train/": 30.0,
}
"""A group `tests/durations.json` does not know yet (a new file) is guessed from its prefix."""


def _measured() -> dict[str, float]:
    if not DURATIONS.is_file():
        return {}
    seconds: dict[str, float] = json.loads(DURATIONS.read_text(encoding="utf-8"))["seconds"]
    return seconds


def expected_seconds(group: str, measured: dict[str, float]) -> float:
    if group in measured:
        return measured[group]
    return next((s for prefix, s in SLOWEST_FIRST.items() if group.startswith(prefix)), 1.0)


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist hands out the groups in the order below only without its default
    reordering (--no-loadscope-reorder), which sorts them by their number of tests and so
    started one-test e2e files of minutes at the very end."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    config.addinivalue_line("markers", "xdist_group(name): the pytest-xdist group (see below)")
    config.pluginmanager.register(LongestFirst(), "mlp-longest-first")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its group, first of the hooks: pytest-xdist's own hook names the
    work unit from the mark."""
    for item in items:
        group = xdist_group(item)
        item.add_marker(pytest.mark.xdist_group(group))
        item.user_properties.append(("xdist_group", group))


class LongestFirst:
    """Orders the groups longest first, last of the collection hooks (pytest regroups tests by
    session-scoped parameters such as `env`, tests/e2e/conftest.py moves Argo CD's tests after
    the others on their cluster; a stable sort keeps both within a group), before pytest-xdist
    sends the order to the scheduler (its pytest_collection_finish)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        groups = [dict(item.user_properties)["xdist_group"] for item in items]
        order = longest_first(groups, _measured())
        items[:] = [items[i] for i in order]


def longest_first(groups: list[str], measured: dict[str, float]) -> list[int]:
    """The indexes of `groups` (each test's group) with the longest groups first; the tests of
    one group keep their order."""
    return sorted(range(len(groups)), key=lambda i: -expected_seconds(groups[i], measured))


_spent: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Sum each group's setup, call and teardown time (on the xdist controller: the reports
    carry the group in their user_properties)."""
    group = dict(report.user_properties).get("xdist_group")
    if isinstance(group, str):
        _spent[group] = _spent.get(group, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With MLP_RECORD_DURATIONS=1 (`make test-durations`), write what each group took to
    tests/durations.json, for the next runs' order: the groups this (green) run ran are
    updated, the others kept."""
    if os.environ.get("MLP_RECORD_DURATIONS") != "1" or hasattr(session.config, "workerinput"):
        return
    if exitstatus != 0 or not _spent:
        return
    merged = {**_measured(), **{group: round(spent, 1) for group, spent in _spent.items()}}
    seconds = dict(sorted(merged.items()))
    text = json.dumps({"seconds": seconds}, indent=2, sort_keys=True) + "\n"
    DURATIONS.write_text(text, encoding="utf-8")


@pytest.fixture
def spec_copy(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a fixture spec into tmp_path as platform.yaml and return its path."""

    def copy(case: str) -> Path:
        target = tmp_path / "platform.yaml"
        shutil.copyfile(SPECS / f"{case}.yaml", target)
        return target

    return copy
