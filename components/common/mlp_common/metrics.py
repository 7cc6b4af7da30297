"""Metric helpers shared by train, evaluate and tune."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# Katib's StdOut metrics collector default filter: "<name>=<value>" per line.
KATIB_LINE = re.compile(r"^([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)$")


def katib_lines(metrics: Mapping[str, float]) -> str:
    """Format metrics as sorted ``name=value`` lines, the format Katib's StdOut collector reads."""
    lines = []
    for name in sorted(metrics):
        value = float(metrics[name])
        if not math.isfinite(value):
            raise ValueError(f"metric {name!r} is not finite: {value}")
        lines.append(f"{name}={value:.6f}")
    return "\n".join(lines) + "\n"


def parse_katib_lines(text: str) -> dict[str, float]:
    """Parse ``name=value`` lines (the last value of a name wins), ignoring other lines."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = KATIB_LINE.match(line.strip())
        if match and match.group(2) not in ("", "+", "-"):
            found[match.group(1)] = float(match.group(2))
    return found


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """Measure wall time: ``with stopwatch() as t: ...`` then ``t["seconds"]``."""
    result = {"seconds": 0.0}
    start = time.perf_counter()
    try:
        yield result
    finally:
        result["seconds"] = time.perf_counter() - start
