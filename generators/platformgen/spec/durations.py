"""Prometheus durations (scrape and evaluation intervals, alert `for`, rate windows): the
pattern the Prometheus Operator's CRDs accept, and a bound that keeps every one meaningful.

Prometheus parses a duration into a signed 64-bit count of nanoseconds (prometheus/common
`model.ParseDuration`): past about 292 years `promtool check rules` rejects the rule ("duration
out of range"), and a PromQL range that long is not even parsed. Long before that a duration
stops meaning anything: Prometheus keeps 15 days of samples by default, so a range or a hold
longer than a year never sees data and never fires, and a scrape or evaluation interval that
long never runs. `MAX_DURATION` is that year (Prometheus' `1y` is 365 days).
"""

from __future__ import annotations

import re

PROMETHEUS_DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
"""The Prometheus Operator's CRD pattern for a Duration (interval, `for`): units largest first,
each at most once."""
UNIT_MILLISECONDS = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}
"""Prometheus' units (model.ParseDuration: a year is 365 days, a week 7)."""
MAX_DURATION = "1y"


def milliseconds(value: str) -> int:
    """The length of a Prometheus duration that matches PROMETHEUS_DURATION (exact: Python
    integers do not overflow)."""
    return sum(
        int(number) * UNIT_MILLISECONDS[unit]
        for number, unit in re.findall(r"([0-9]+)(ms|[ywdhms])", value)
    )


def prometheus_duration(value: str) -> str:
    """The validator of `model.Duration`: a non-zero Prometheus duration of at most a year."""
    if not PROMETHEUS_DURATION.match(value) or milliseconds(value) == 0:
        raise ValueError(f"{value!r}: must be a non-zero Prometheus duration such as 30s, 5m or 1h")
    if milliseconds(value) > milliseconds(MAX_DURATION):
        raise ValueError(
            f"{value!r}: at most {MAX_DURATION} (a longer range or hold never sees data or never "
            "fires: Prometheus keeps 15 days by default, and cannot parse 292 years)"
        )
    return value
