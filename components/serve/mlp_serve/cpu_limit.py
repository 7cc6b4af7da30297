"""How many CPUs this process may really use: the container's CPU limit, not the node's cores.

A pod with ``limits.cpu: 1`` on a 64-core node sees 64 CPUs in ``os.cpu_count()``; sizing thread
pools from that makes 64 threads fight over one CPU's worth of CFS quota. The limit is the
smallest of:

- the CPU affinity mask (``taskset``, a cpuset; ``os.sched_getaffinity``);
- the cgroup v2 quota, ``cpu.max`` = ``<quota> <period>`` (``max`` = unlimited), rounded up;
- the cgroup v1 quota, ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (``-1`` = unlimited).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _quota_cpus(quota: str, period: str) -> int | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:  # "max"
        return None
    if q <= 0 or p <= 0:
        return None
    return max(1, math.ceil(q / p))


def cgroup_cpus(root: Path = CGROUP_ROOT) -> int | None:
    """The CPU quota of this process's cgroup, rounded up to whole CPUs; None when unlimited."""
    v2 = root / "cpu.max"
    if v2.is_file():
        quota, _, period = v2.read_text().strip().partition(" ")
        return _quota_cpus(quota, period or "100000")
    for v1 in (root / "cpu,cpuacct", root / "cpu"):
        quota_file = v1 / "cpu.cfs_quota_us"
        if quota_file.is_file():
            period = (v1 / "cpu.cfs_period_us").read_text().strip()
            return _quota_cpus(quota_file.read_text().strip(), period)
    return None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """min(affinity mask, cgroup quota), at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        count = os.cpu_count() or 1
    try:
        quota = cgroup_cpus(root)
    except OSError:
        quota = None
    return max(1, min(count, quota) if quota is not None else count)
