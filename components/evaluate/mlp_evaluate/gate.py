"""The promotion gate: a paired test on the same held-out rows, with a declared alpha and power.

Two models scored on the same rows differ only where exactly one of them is right: the
*discordant* rows. ``b`` rows the candidate gets right and production wrong, ``c`` the other way.
Under "the candidate is not better" each discordant row is a fair coin, so

- **exact McNemar** (metric ``accuracy``): the one-sided p-value is ``P(X >= b)`` for
  ``X ~ Binomial(b + c, 1/2)``. Promotion needs ``p <= alpha``. The test is exact, so when the two
  models are equally good the chance of a promotion is at most ``alpha`` whatever the data.
- **paired bootstrap** (metric ``f1_macro``, which McNemar does not cover): ``resamples`` seeded
  Poisson resamples of the rows (:func:`bootstrap_differences`, memory bounded by a chunk of
  rows whatever the test set's size); the one-sided p-value is the share of resampled
  differences ``<= 0``, and promotion also needs at least :func:`min_discordant` discordant rows
  (the fewest with which an exact test could reject at ``alpha``), so a handful of lucky rows
  never decides.

**Power.** ``min_effect`` is the smallest improvement worth detecting (metric units: 0.02 = two
points of accuracy). :func:`power` is the probability that the exact test rejects when the
candidate is better by exactly ``min_effect``, in the most favourable case that fits that effect:
it fixes ``min_effect * n`` rows and breaks none. If even that chance is below ``required_power``
the test set is too small to tell such a model from noise, and the gate refuses instead of
promoting on luck. ``observed_power`` (recorded, not decisive) is the same power at the share of
rows the two models actually disagree on.

**Schema.** A candidate whose features (names, order, dtypes) or classes differ from
production's is refused unless ``schema_change`` is declared: the two would not be answering the
same question, and the server's clients would break.

Decisions (``decision`` / ``verdict``), checked in this order:

1. schema differs from production's          -> ``refused`` / "refused (schema differs)"
   (unless ``schema_change`` is declared)
2. below ``min_score``                      -> ``refused`` / "refused (below min_score)"
3. worse than the scikit-learn baseline      -> ``refused`` / "refused (worse than baseline)"
4. declared schema change, schema differs    -> ``promote`` / "promote (declared schema change)"
   no production model                       -> ``promote`` / "promote (first model)"
5. power at ``min_effect`` < required        -> ``refused`` / "refused (test set too small)"
6. observed difference to production == 0    -> ``candidate`` / "stays candidate (tie)"
7. observed difference to production < 0     -> ``refused`` / "refused (worse than production)"
8. p <= alpha (and, bootstrap, enough discordant rows) -> ``promote`` / "promote"
9. otherwise                                 -> ``candidate`` / "stays candidate (not significant)"
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from mlp_common.step import StepError

from mlp_evaluate.tally import (
    BOOTSTRAP_CHUNK_ROWS,
    CANDIDATE_MODEL,
    PoissonBootstrap,
    Tally,
    confusion,
    score_of,
)

__all__ = [
    "BOOTSTRAP_CHUNK_ROWS",
    "GATE_METRICS",
    "GatePolicy",
    "PoissonBootstrap",
    "Tally",
    "bootstrap_differences",
    "compare",
    "decide",
    "decide_tally",
    "power",
    "schema_problems",
    "score",
]

GATE_METRICS = ("accuracy", "f1_macro")
PROMOTE = "promote"
CANDIDATE = "candidate"
REFUSED = "refused"
MCNEMAR = "exact McNemar"
BOOTSTRAP = "paired bootstrap"


@dataclass(frozen=True)
class GatePolicy:
    """What the gate requires. ``alpha`` is the one-sided false-promotion rate; ``min_effect``
    the smallest improvement (metric units) the test set must be able to detect with
    ``required_power``."""

    metric: str = "accuracy"
    alpha: float = 0.05
    min_effect: float = 0.02
    required_power: float = 0.8
    min_score: float = 0.0
    schema_change: bool = False
    resamples: int = 2000
    seed: int = 0

    def check(self) -> None:
        problems = []
        if self.metric not in GATE_METRICS:
            problems.append(f"--metric {self.metric}: expected one of {', '.join(GATE_METRICS)}")
        if not 0 < self.alpha < 0.5:
            problems.append(f"--alpha {self.alpha}: must be in (0, 0.5)")
        if not 0 < self.min_effect < 1:
            problems.append(f"--min-effect {self.min_effect}: must be in (0, 1)")
        if not 0 <= self.required_power < 1:
            problems.append(f"--power {self.required_power}: must be in [0, 1)")
        if self.resamples < 100:
            problems.append(f"--resamples {self.resamples}: must be >= 100")
        if problems:
            raise StepError("; ".join(problems))

    @property
    def test(self) -> str:
        return MCNEMAR if self.metric == "accuracy" else BOOTSTRAP

    def method(self) -> str:
        if self.test == MCNEMAR:
            how = "exact McNemar test on the discordant rows (one-sided binomial, p = 1/2)"
        else:
            how = (
                f"paired bootstrap of the {self.metric} difference ({self.resamples} resamples, "
                f"seed {self.seed}), at least {min_discordant(self.alpha)} discordant rows"
            )
        return (
            f"{how}; promote at p <= {self.alpha:g}; the test set must detect +{self.min_effect:g} "
            f"{self.metric} with power >= {self.required_power:g}"
        )


def score(metric: str, y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """The metric on all rows (the observed value)."""
    return score_of(metric, confusion(y, pred, n_classes))


def bootstrap_differences(
    metric: str,
    y: np.ndarray,
    candidate: np.ndarray,
    other: np.ndarray,
    n_classes: int,
    resamples: int,
    seed: int,
) -> np.ndarray:
    """:class:`PoissonBootstrap` of the rows given whole."""
    bootstrap = PoissonBootstrap(metric, n_classes, resamples, seed)
    bootstrap.add(y, candidate, other)
    return bootstrap.differences()


def discordant(y: np.ndarray, candidate: np.ndarray, other: np.ndarray) -> tuple[int, int]:
    """``(b, c)``: rows only the candidate gets right, rows only the other model gets right."""
    right, other_right = candidate == y, other == y
    return int(np.sum(right & ~other_right)), int(np.sum(~right & other_right))


def mcnemar_p(b: int, c: int) -> float:
    """One-sided exact McNemar p-value: ``P(X >= b)``, ``X ~ Binomial(b + c, 1/2)``."""
    from scipy.stats import binom

    return 1.0 if b + c == 0 else float(binom.sf(b - 1, b + c, 0.5))


def mcnemar_exact(y: np.ndarray, candidate: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """Discordant counts with the one- and two-sided exact McNemar p-values."""
    return mcnemar_of_counts(*discordant(y, candidate, other))


def mcnemar_of_counts(b: int, c: int) -> dict[str, Any]:
    """:func:`mcnemar_exact` from the discordant counts ``(b, c)``."""
    from scipy.stats import binomtest

    two_sided = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return {
        "candidate_only_right": b,
        "other_only_right": c,
        "p_value": mcnemar_p(b, c),
        "p_value_two_sided": two_sided,
    }


def min_discordant(alpha: float) -> int:
    """The fewest discordant rows with which an exact one-sided test can reject at ``alpha``
    (all of them in the candidate's favour): ``ceil(log2(1 / alpha))``."""
    return math.ceil(math.log2(1 / alpha) - 1e-12)


def critical_counts(discordant_rows: np.ndarray, alpha: float) -> np.ndarray:
    """For each number of discordant rows ``d``, the smallest ``b`` with ``P(X >= b) <= alpha``
    (``X ~ Binomial(d, 1/2)``); ``d + 1`` where no ``b`` is small enough."""
    from scipy.stats import binom

    d = np.asarray(discordant_rows, dtype="int64")
    k = np.asarray(binom.isf(alpha, d, 0.5), dtype="int64") + 1
    k = np.where(binom.sf(k - 1, d, 0.5) > alpha, k + 1, k)  # float rounding at the edge
    k = np.where((k > 1) & (binom.sf(k - 2, d, 0.5) <= alpha), k - 1, k)
    return np.minimum(k, d + 1)


def power(n: int, effect: float, alpha: float, discordance: float | None = None) -> float:
    """The probability that the one-sided exact McNemar test at ``alpha`` rejects on ``n`` rows
    when the candidate is better by ``effect`` (accuracy) and the models disagree on a share
    ``discordance`` of rows (default: ``effect``, the most favourable case)."""
    from scipy.stats import binom

    psi = max(effect, discordance if discordance is not None else effect)
    if n <= 0 or psi <= 0:
        return 0.0
    psi = min(psi, 1.0)
    d = likely_counts(n, psi)
    theta = min(1.0, (psi + effect) / (2 * psi))
    k = critical_counts(d, alpha)
    reject = np.where(k <= d, binom.sf(k - 1, d, theta), 0.0)
    return float(min(1.0, max(0.0, np.sum(binom.pmf(d, n, psi) * reject))))


def likely_counts(n: int, p: float) -> np.ndarray:
    """The values of ``Binomial(n, p)`` that carry its probability: those within ``40 sd + 1000``
    of the mean (Bernstein's inequality leaves each tail below ``e^-800``, zero in float64), all
    of ``0..n`` for a few thousand rows. Memory grows with the spread, not with ``n``."""
    spread = 40 * math.sqrt(n * p * (1 - p)) + 1000
    low, high = max(0, math.floor(n * p - spread)), min(n, math.ceil(n * p + spread))
    return np.arange(low, high + 1)


def _effect_interval(b: int, c: int, n: int, alpha: float) -> list[float]:
    """A ``1 - 2 alpha`` interval of the accuracy difference: the Clopper-Pearson interval of
    ``b / (b + c)`` given the discordant rows, scaled by their share of the rows."""
    from scipy.stats import beta

    d = b + c
    if d == 0:
        return [0.0, 0.0]
    low = 0.0 if b == 0 else float(beta.ppf(alpha, b, c + 1))
    high = 1.0 if c == 0 else float(beta.ppf(1 - alpha, b + 1, c))
    return [round(d / n * (2 * low - 1), 12), round(d / n * (2 * high - 1), 12)]


def compare(
    y: np.ndarray,
    candidate: np.ndarray,
    other: np.ndarray,
    n_classes: int,
    policy: GatePolicy,
) -> dict[str, Any]:
    """Paired comparison of two prediction vectors on the same rows: the test, the discordant
    counts, the one-sided p-value, the observed difference and its ``1 - 2 alpha`` interval."""
    tally = policy_tally(n_classes, ("other",), policy)
    tally.add(y, {CANDIDATE_MODEL: candidate, "other": other})
    return compare_tally(tally, "other", policy)


def policy_tally(n_classes: int, others: tuple[str, ...], policy: GatePolicy) -> Tally:
    """The :class:`Tally` that ``policy``'s test needs (bootstrap totals only for the bootstrap)."""
    bootstrap = (policy.metric, policy.resamples, policy.seed) if policy.test == BOOTSTRAP else None
    return Tally(n_classes, others, bootstrap)


def compare_tally(tally: Tally, other: str, policy: GatePolicy) -> dict[str, Any]:
    """:func:`compare` of the candidate with model ``other`` from the counts of a :class:`Tally`."""
    b, c = (int(v) for v in tally.agreement[other][:2])
    observed = tally.score(policy.metric) - tally.score(policy.metric, other)
    record: dict[str, Any] = {
        "test": policy.test,
        "candidate_only_right": b,
        "other_only_right": c,
        "difference": round(float(observed), 12),
        "mcnemar": mcnemar_of_counts(b, c),
    }
    if policy.test == MCNEMAR:
        record["p_value"] = mcnemar_p(b, c)
        record["interval"] = _effect_interval(b, c, tally.rows, policy.alpha)
        return record
    differences = tally.bootstrap[other].differences()
    low, high = np.quantile(differences, [policy.alpha, 1 - policy.alpha])
    record["p_value"] = float((1 + np.sum(differences <= 0)) / (1 + len(differences)))
    record["interval"] = [round(float(low), 12), round(float(high), 12)]
    return record


def schema_problems(candidate: Mapping[str, Any], production: Mapping[str, Any]) -> list[str]:
    """How the candidate's feature description (``features.json``) differs from production's:
    feature names and order, dtypes (where both record them) and classes."""
    problems = []
    ours, theirs = list(candidate.get("features") or []), list(production.get("features") or [])
    if ours != theirs:
        if set(ours) == set(theirs):
            problems.append("features are in a different order")
        else:
            added, removed = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
            problems.append(f"features differ (added {added}, removed {removed})")
    ours_types, theirs_types = candidate.get("dtypes"), production.get("dtypes")
    if isinstance(ours_types, Mapping) and isinstance(theirs_types, Mapping):
        changed = sorted(
            f"{name}: {theirs_types[name]} -> {ours_types[name]}"
            for name in set(ours_types) & set(theirs_types)
            if ours_types[name] != theirs_types[name]
        )
        if changed:
            problems.append(f"dtypes differ ({', '.join(changed)})")
    if list(candidate.get("classes") or []) != list(production.get("classes") or []):
        problems.append(
            f"classes differ ({list(production.get('classes') or [])} -> "
            f"{list(candidate.get('classes') or [])})"
        )
    return problems


def decide(
    y: np.ndarray,
    candidate: np.ndarray,
    n_classes: int,
    policy: GatePolicy,
    *,
    baseline: np.ndarray | None,
    production: np.ndarray | None,
    production_version: int | None = None,
    schema: list[str] | None = None,
) -> dict[str, Any]:
    """The gate decision with the numbers that led to it (pure: predictions in, record out).
    ``schema`` lists how the candidate's schema differs from production's (see
    :func:`schema_problems`)."""
    policy.check()
    others = {"baseline": baseline, "production": production}
    given = {name: pred for name, pred in others.items() if pred is not None}
    tally = policy_tally(n_classes, tuple(given), policy)
    tally.add(y, {CANDIDATE_MODEL: candidate, **given})
    return decide_tally(tally, policy, production_version=production_version, schema=schema)


def decide_tally(
    tally: Tally,
    policy: GatePolicy,
    *,
    production_version: int | None = None,
    schema: list[str] | None = None,
) -> dict[str, Any]:
    """:func:`decide` from the counts of a :class:`Tally` (of :func:`policy_tally`) whose other
    models are ``baseline`` and/or ``production``: the evaluate step streams the test split into
    one, so the decision needs no per-row arrays."""
    policy.check()
    n = tally.rows
    metric = policy.metric
    has_baseline, has_production = "baseline" in tally.agreement, "production" in tally.agreement
    record: dict[str, Any] = {
        "metric": policy.metric,
        "test": policy.test,
        "alpha": policy.alpha,
        "min_effect": policy.min_effect,
        "required_power": policy.required_power,
        "power": round(power(n, policy.min_effect, policy.alpha), 6),
        "min_score": policy.min_score,
        "schema_change": policy.schema_change,
        "schema_differences": list(schema or []),
        "method": policy.method(),
        "examples": n,
        "candidate": tally.score(metric),
        "baseline": None,
        "production": None,
        "production_version": production_version,
        "counts": None,
        "observed_power": None,
        "p_value": None,
        "statistic": None,
        "interval": None,
        "comparisons": {},
    }

    def result(decision: str, verdict: str, reason: str) -> dict[str, Any]:
        return record | {"decision": decision, "verdict": verdict, "reason": reason}

    if has_baseline:
        record["baseline"] = tally.score(metric, "baseline")
        record["comparisons"]["baseline"] = compare_tally(tally, "baseline", policy)
    if has_production:
        record["production"] = tally.score(metric, "production")
        against = compare_tally(tally, "production", policy)
        record["comparisons"]["production"] = against
        record["statistic"], record["interval"] = against["difference"], against["interval"]
        record["p_value"] = against["p_value"]
        discordance = (against["candidate_only_right"] + against["other_only_right"]) / max(n, 1)
        record["observed_power"] = round(power(n, policy.min_effect, policy.alpha, discordance), 6)
        _, _, both_right, both_wrong = (int(v) for v in tally.agreement["production"])
        record["counts"] = {
            "candidate_only_right": against["candidate_only_right"],
            "production_only_right": against["other_only_right"],
            "both_right": both_right,
            "both_wrong": both_wrong,
        }
    if record["schema_differences"] and not policy.schema_change:
        return result(
            REFUSED,
            "refused (schema differs)",
            f"{'; '.join(record['schema_differences'])}; declare a schema change to replace "
            "production with a model of another schema",
        )
    if record["candidate"] < policy.min_score:
        return result(
            REFUSED,
            "refused (below min_score)",
            f"{metric} {record['candidate']:.4f} is below the floor {policy.min_score:.4f}",
        )
    if has_baseline and record["comparisons"]["baseline"]["difference"] < 0:
        return result(
            REFUSED,
            "refused (worse than baseline)",
            f"{metric} {record['candidate']:.4f} < scikit-learn baseline "
            f"{record['baseline']:.4f} on the same {n} rows",
        )
    if not has_production and record["schema_differences"]:
        return result(
            PROMOTE,
            "promote (declared schema change)",
            f"{'; '.join(record['schema_differences'])}; the schema change is declared, so the "
            "candidate replaces production without a paired comparison",
        )
    if not has_production:
        return result(PROMOTE, "promote (first model)", "no production model yet")
    if record["power"] < policy.required_power:
        return result(
            REFUSED,
            "refused (test set too small)",
            f"{n} test rows detect +{policy.min_effect:g} {metric} with power "
            f"{record['power']:.2f} < {policy.required_power:g} at alpha {policy.alpha:g}; "
            "production stays (use more test rows or declare a larger minimum effect)",
        )
    difference, (low, high) = record["statistic"], record["interval"]
    b, c = against["candidate_only_right"], against["other_only_right"]
    versus = f"production{'' if production_version is None else f' v{production_version}'}"
    numbers = (
        f"{metric} {record['candidate']:.4f} vs {versus} {record['production']:.4f}: "
        f"{b} rows fixed, {c} broken, difference {difference:+.4f} "
        f"[{low:+.4f}, {high:+.4f}], {policy.test} p = {record['p_value']:.4g}"
    )
    if difference == 0:
        return result(CANDIDATE, "stays candidate (tie)", f"{numbers}; a tie")
    if difference < 0:
        return result(REFUSED, "refused (worse than production)", f"{numbers}; worse")
    enough = policy.test == MCNEMAR or b + c >= min_discordant(policy.alpha)
    if record["p_value"] <= policy.alpha and enough:
        return result(PROMOTE, "promote", f"{numbers} <= alpha {policy.alpha:g}")
    return result(
        CANDIDATE,
        "stays candidate (not significant)",
        f"{numbers} > alpha {policy.alpha:g}"
        if enough
        else f"{numbers}; fewer than {min_discordant(policy.alpha)} discordant rows",
    )
