"""Alert thresholds that mean something: an alert that can never fire, or fires on any traffic
at all, is refused with its spec path.

Each bound follows from how the alert is computed (builders/prometheus_rule.py):

- **p99 latency** is `histogram_quantile(0.99, ...)` over the serving histogram
  `mlp_request_duration_seconds` (components/serve, `LATENCY_BUCKETS`). The estimate never
  exceeds the largest finite bucket bound (a p99 in the `+Inf` bucket is reported as that bound),
  so a threshold at or above it never fires; below the smallest bound the histogram cannot tell
  latencies apart, and any request at all crosses it.
- **Drift PSI** is the sum over bins of (p - q) ln(p / q), both proportions floored at
  `PSI_EPSILON`: it never exceeds `MAX_PSI` (all traffic in one bin the reference never saw),
  so a threshold there never fires. Below `MIN_PSI` the sampling noise of a few thousand rows
  of unchanged data crosses it (PSI's bias is about (bins - 1) / rows).
- **Model age** is compared in whole seconds: below a quarter of an hour it fires for every
  model, which is older than that by the time a pipeline has trained, evaluated and
  registered it and a rollout serves it (under a second it even renders as `> 0`); beyond a
  century it never fires.
- **Error ratio** is already between 0 and 1 (the model); below one in a million requests it is
  "any error at all" written as a ratio.

Non-finite numbers are refused by the model for every field (`allow_inf_nan=False`). Thresholds
render into PromQL with Python's float `repr` (`1e-05`, `0.25`): PromQL reads its exponent form
(checked with promtool).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from platformgen.spec.model import PlatformSpec

Problem = tuple[str, str]

LATENCY_BUCKETS = (0.001, 10.0)
"""The smallest and largest finite bucket bounds of `mlp_request_duration_seconds`
(mlp_serve.metrics; tests/spec/test_security_rules.py checks they agree)."""
PSI_EPSILON = 1e-4
"""The floor of both PSI proportions (builders.prometheus_rule.PSI_EPSILON, mlp_drift)."""
MAX_PSI = 2 * (1 - PSI_EPSILON) * math.log(1 / PSI_EPSILON)
"""The largest PSI any one feature reaches (served and reference mass in disjoint bins)."""
MIN_PSI = 0.01
MIN_MODEL_AGE_HOURS = 0.25
MAX_ALERT_HOURS = 24 * 366 * 100
"""An age threshold beyond a century never fires; its seconds would also leave the range
Prometheus compares exactly (float64 integers)."""
MIN_ERROR_RATIO = 1e-6


def check_alert_thresholds(spec: PlatformSpec) -> Iterator[Problem]:
    """Every threshold of every component's alerts outside the range where it can both fire
    and stay quiet."""
    for name, c in spec.components.items():
        a = c.alerts
        if a is None:
            continue
        path = f"components.{name}.alerts"
        low, high = LATENCY_BUCKETS
        latency = a.latency_p99_seconds
        if latency is not None and latency >= high:
            yield (
                f"{path}.latencyP99Seconds",
                f"{latency!r}: must be below {high:g} seconds, the largest finite bucket of the "
                "latency histogram: p99 is never estimated above it, so the alert never fires",
            )
        elif latency is not None and latency < low:
            yield (
                f"{path}.latencyP99Seconds",
                f"{latency!r}: must be at least {low:g} seconds, the smallest bucket of the "
                "latency histogram: below it any request at all fires the alert",
            )
        psi = a.drift_psi
        if psi is not None and psi >= MAX_PSI:
            yield (
                f"{path}.driftPsi",
                f"{psi!r}: must be below {MAX_PSI:.2f}, the largest PSI a feature reaches (bins "
                f"floored at {PSI_EPSILON:g}): the alert never fires",
            )
        elif psi is not None and psi < MIN_PSI:
            yield (
                f"{path}.driftPsi",
                f"{psi!r}: must be at least {MIN_PSI:g}: below it the sampling noise of unchanged "
                "data fires the alert",
            )
        hours = a.model_age_hours
        if hours is not None and hours > MAX_ALERT_HOURS:
            yield (
                f"{path}.modelAgeHours",
                f"{hours:g}: at most {MAX_ALERT_HOURS} hours (a century)",
            )
        elif hours is not None and hours < MIN_MODEL_AGE_HOURS:
            yield (
                f"{path}.modelAgeHours",
                f"{hours!r}: must be at least {MIN_MODEL_AGE_HOURS:g} hours: every model is "
                "older than that by the time it is trained, evaluated, registered and served",
            )
        ratio = a.error_ratio
        if ratio is not None and ratio < MIN_ERROR_RATIO:
            yield (
                f"{path}.errorRatio",
                f"{ratio!r}: must be at least {MIN_ERROR_RATIO:g} (one request in a million): a "
                "smaller ratio is any error at all",
            )
