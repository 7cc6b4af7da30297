"""The result file every benchmark writes: machine, tool versions, and median/min/max of runs.

``bench/results/<name>.json``::

    {"name", "title", "created", "conditions", "machine", "tools", "settings",
     "measurements": [{"group", "series", "x", "metric", "unit", "runs", "median", "min", "max"}],
     "targets": [{"name", "value", "target", "unit", "met", "detail"}],
     "notes": ["measured findings, one paragraph each"],
     "plot": {"title", "x", "y", "metric", "logx", "logy"}}
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TOOLS_BIN = ROOT / ".tools" / "bin"


@dataclass
class Measurement:
    group: str  # e.g. "pinned" / "unpinned", or "in-process" / "cli"
    series: str  # e.g. "ours", "kserve-constant"
    x: float  # e.g. concurrency, components
    metric: str  # e.g. "req_per_s"
    unit: str
    runs: list[float]
    median: float = 0.0
    min: float = 0.0
    max: float = 0.0

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError(f"{self.series} {self.metric} @ {self.x}: no runs")
        self.median = statistics.median(self.runs)
        self.min = min(self.runs)
        self.max = max(self.runs)


@dataclass
class Target:
    name: str
    value: float
    target: float
    unit: str
    met: bool
    detail: str = ""


@dataclass
class Result:
    name: str
    title: str
    conditions: str
    settings: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plot: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    load_at_start: list[float] = field(
        default_factory=lambda: [round(x, 2) for x in os.getloadavg()]
    )

    def add(
        self, group: str, series: str, x: float, metric: str, unit: str, runs: Sequence[float]
    ) -> Measurement:
        measurement = Measurement(group, series, x, metric, unit, [float(r) for r in runs])
        self.measurements.append(measurement)
        return measurement

    def find(self, group: str, series: str, x: float, metric: str) -> Measurement:
        for m in self.measurements:
            if (m.group, m.series, m.x, m.metric) == (group, series, x, metric):
                return m
        raise KeyError((group, series, x, metric))

    def write(self, directory: Path = RESULTS) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        document = {
            "name": self.name,
            "title": self.title,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "conditions": self.conditions,
            "machine": {**machine(), "load_average_at_start": self.load_at_start},
            "tools": {**python_versions(), **self.tools},
            "settings": self.settings,
            "measurements": [asdict(m) for m in self.measurements],
            "targets": [asdict(t) for t in self.targets],
            "notes": self.notes,
            "plot": self.plot,
        }
        path = directory / f"{self.name}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, path)
        return path


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) // 1024
    except OSError:
        pass
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count() or 0
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "cpus_usable": affinity,
        "memory_mib": memory,
        "kernel": platform.release(),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "load_average_at_write": [round(x, 2) for x in load],
    }


def python_versions(
    packages: Iterable[str] = ("platformgen", "pyyaml", "pydantic", "kserve", "tensorflow-cpu"),
) -> dict[str, str]:
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    try:
        import yaml

        versions["pyyaml-libyaml"] = "yes" if getattr(yaml, "__with_libyaml__", False) else "no"
    except ImportError:  # pragma: no cover
        pass
    return versions


def tool_path(name: str) -> str | None:
    """A pinned tool from .tools/bin, else one on PATH."""
    pinned = TOOLS_BIN / name
    if pinned.exists():
        return str(pinned)
    return shutil.which(name)


def tool_version(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def timed(argv: Sequence[str], **kwargs: Any) -> float:
    """Wall seconds of one subprocess run; raises on a non-zero exit with its stderr."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False, **kwargs)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, argv))} exited {done.returncode}:\n"
            f"{done.stderr.decode(errors='replace')[-2000:]}"
        )
    return elapsed


def load_results(directory: Path = RESULTS) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
