"""The promotion gate: a paired comparison on the same held-out rows.

Method: a **paired bootstrap** over the test rows. Each of ``resamples`` bootstrap samples draws
``n`` row indices with replacement (seeded, so the decision is reproducible) and computes the gate
metric of the candidate and of the other model *on the same rows*; the percentile interval of the
differences at ``confidence`` (two-sided) is the interval of "candidate minus other".

Why the bootstrap and not McNemar's exact test alone: McNemar tests "equal error rates" and gives a
p-value but no interval and no margin, and it only applies to accuracy. The gate must say "better
by at least ``margin`` at ``confidence``", for accuracy or macro F1; a paired interval on the
metric difference answers exactly that (promote when the whole interval lies above the margin).
McNemar's exact p-value (two-sided binomial test on the discordant rows) is recorded alongside
for accuracy-minded readers; it does not decide.

Decisions (``decision`` / ``verdict``), checked in this order:

1. below ``min_score``                      -> ``refused`` / "refused (below min_score)"
2. worse than the scikit-learn baseline      -> ``refused`` / "refused (worse than baseline)"
   (observed metric lower on the same rows: the baseline is a floor, no test needed to refuse)
3. no production model                       -> ``promote`` / "promote (first model)"
4. observed difference to production == 0    -> ``candidate`` / "stays candidate (tie)"
5. observed difference to production < 0     -> ``refused`` / "refused (worse than production)"
6. interval lower bound > ``margin``         -> ``promote`` / "promote"
7. otherwise                                 -> ``candidate`` / "stays candidate (not significant)"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from mlp_common.step import StepError

GATE_METRICS = ("accuracy", "f1_macro")
PROMOTE = "promote"
CANDIDATE = "candidate"
REFUSED = "refused"


@dataclass(frozen=True)
class GatePolicy:
    """What the gate requires. ``margin`` is in metric units (0.01 = one point of accuracy)."""

    metric: str = "accuracy"
    margin: float = 0.0
    min_score: float = 0.0
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0

    def check(self) -> None:
        problems = []
        if self.metric not in GATE_METRICS:
            problems.append(f"--metric {self.metric}: expected one of {', '.join(GATE_METRICS)}")
        if not -1 < self.margin < 1:
            problems.append(f"--margin {self.margin}: must be in (-1, 1)")
        if not 0.5 <= self.confidence < 1:
            problems.append(f"--confidence {self.confidence}: must be in [0.5, 1)")
        if self.resamples < 100:
            problems.append(f"--resamples {self.resamples}: must be >= 100")
        if problems:
            raise StepError("; ".join(problems))

    def method(self) -> str:
        return (
            f"paired bootstrap, {self.resamples} resamples of the test rows (seed {self.seed}), "
            f"two-sided {self.confidence:.0%} percentile interval of the {self.metric} difference"
        )


def _weighted_metric(
    metric: str, y: np.ndarray, pred: np.ndarray, weights: np.ndarray, n_classes: int
) -> np.ndarray:
    """``metric`` for each row of ``weights`` (row multiplicities of a resample), vectorized."""
    if metric == "accuracy":
        return np.asarray(weights @ (y == pred).astype("float64") / weights.sum(axis=1))
    scores = np.zeros(weights.shape[0])
    for label in range(n_classes):
        true_k, pred_k = (y == label).astype("float64"), (pred == label).astype("float64")
        tp = weights @ (true_k * pred_k)
        denominator = weights @ true_k + weights @ pred_k
        scores += np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return scores / n_classes


def score(metric: str, y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """The metric on all rows (the observed value)."""
    return float(_weighted_metric(metric, y, pred, np.ones((1, len(y))), n_classes)[0])


def resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """``resamples x n`` multiplicities: how often each row appears in each bootstrap sample."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n)) + np.arange(resamples)[:, None] * n
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n)


def mcnemar_exact(y: np.ndarray, candidate: np.ndarray, other: np.ndarray) -> dict[str, Any]:
    """Discordant counts and McNemar's exact two-sided p-value (binomial test, p = 1/2)."""
    from scipy.stats import binomtest

    right, other_right = candidate == y, other == y
    b = int(np.sum(right & ~other_right))
    c = int(np.sum(~right & other_right))
    p_value = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return {"candidate_only_right": b, "other_only_right": c, "p_value": p_value}


def compare(
    y: np.ndarray,
    candidate: np.ndarray,
    other: np.ndarray,
    n_classes: int,
    policy: GatePolicy,
) -> dict[str, Any]:
    """Paired comparison of two prediction vectors on the same rows."""
    weights = resample_weights(len(y), policy.resamples, policy.seed)
    differences = _weighted_metric(
        policy.metric, y, candidate, weights, n_classes
    ) - _weighted_metric(policy.metric, y, other, weights, n_classes)
    alpha = 1 - policy.confidence
    low, high = np.quantile(differences, [alpha / 2, 1 - alpha / 2])
    observed = score(policy.metric, y, candidate, n_classes) - score(
        policy.metric, y, other, n_classes
    )
    return {
        "difference": round(float(observed), 12),
        "interval": [round(float(low), 12), round(float(high), 12)],
        "mcnemar": mcnemar_exact(y, candidate, other),
    }


def decide(
    y: np.ndarray,
    candidate: np.ndarray,
    n_classes: int,
    policy: GatePolicy,
    *,
    baseline: np.ndarray | None,
    production: np.ndarray | None,
    production_version: int | None = None,
) -> dict[str, Any]:
    """The gate decision with the numbers that led to it (pure: predictions in, record out)."""
    policy.check()
    record: dict[str, Any] = {
        "metric": policy.metric,
        "margin": policy.margin,
        "min_score": policy.min_score,
        "confidence": policy.confidence,
        "method": policy.method(),
        "examples": len(y),
        "candidate": score(policy.metric, y, candidate, n_classes),
        "baseline": None,
        "production": None,
        "production_version": production_version,
        "statistic": None,
        "interval": None,
        "comparisons": {},
    }

    def result(decision: str, verdict: str, reason: str) -> dict[str, Any]:
        return record | {"decision": decision, "verdict": verdict, "reason": reason}

    metric = policy.metric
    if baseline is not None:
        record["baseline"] = score(metric, y, baseline, n_classes)
        record["comparisons"]["baseline"] = compare(y, candidate, baseline, n_classes, policy)
    if production is not None:
        record["production"] = score(metric, y, production, n_classes)
        against = compare(y, candidate, production, n_classes, policy)
        record["comparisons"]["production"] = against
        record["statistic"], record["interval"] = against["difference"], against["interval"]
    if record["candidate"] < policy.min_score:
        return result(
            REFUSED,
            "refused (below min_score)",
            f"{metric} {record['candidate']:.4f} is below the floor {policy.min_score:.4f}",
        )
    if baseline is not None and record["comparisons"]["baseline"]["difference"] < 0:
        return result(
            REFUSED,
            "refused (worse than baseline)",
            f"{metric} {record['candidate']:.4f} < scikit-learn baseline "
            f"{record['baseline']:.4f} on the same {len(y)} rows",
        )
    if production is None:
        return result(PROMOTE, "promote (first model)", "no production model yet")
    difference, (low, high) = record["statistic"], record["interval"]
    versus = f"production{'' if production_version is None else f' v{production_version}'}"
    numbers = (
        f"{metric} {record['candidate']:.4f} vs {versus} {record['production']:.4f}: "
        f"difference {difference:+.4f}, {policy.confidence:.0%} interval [{low:+.4f}, {high:+.4f}]"
    )
    if difference == 0:
        return result(CANDIDATE, "stays candidate (tie)", f"{numbers}; a tie")
    if difference < 0:
        return result(REFUSED, "refused (worse than production)", f"{numbers}; worse")
    if low > policy.margin:
        return result(PROMOTE, "promote", f"{numbers} > margin {policy.margin}")
    return result(
        CANDIDATE,
        "stays candidate (not significant)",
        f"{numbers}; the interval does not clear the margin {policy.margin}",
    )
