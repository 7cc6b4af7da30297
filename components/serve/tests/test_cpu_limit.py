"""The CPU limit comes from cgroup v2 ``cpu.max`` (or v1 quota files) and the affinity mask."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlp_serve.cpu_limit import available_cpus, cgroup_cpus


@pytest.mark.parametrize(
    ("cpu_max", "cpus"),
    [("max 100000", None), ("100000 100000", 1), ("150000 100000", 2), ("50000 100000", 1)],
)
def test_cgroup_v2_quota_rounds_up_to_whole_cpus(
    tmp_path: Path, cpu_max: str, cpus: int | None
) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    assert cgroup_cpus(tmp_path) == cpus


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    v1 = tmp_path / "cpu,cpuacct"
    v1.mkdir()
    (v1 / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpus(tmp_path) == 3
    (v1 / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpus(tmp_path) is None


def test_available_cpus_is_the_smaller_of_quota_and_affinity(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    assert cgroup_cpus(tmp_path) is None  # no cgroup files at all: no quota
    assert available_cpus(tmp_path) == affinity
    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{(affinity + 4) * 100000} 100000\n")
    assert available_cpus(tmp_path) == affinity
