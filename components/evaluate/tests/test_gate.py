"""The gate on synthetic predictions whose correct decision is known."""

import numpy as np
import pytest
from mlp_common.step import StepError
from mlp_evaluate.gate import (
    GatePolicy,
    compare,
    decide,
    mcnemar_exact,
    power,
    schema_problems,
    score,
)
from sklearn.metrics import f1_score

N, CLASSES = 400, 10
POLICY = GatePolicy(alpha=0.05, min_effect=0.02)


def labels() -> np.ndarray:
    return np.arange(N) % CLASSES


def with_errors(rows: range | list[int]) -> np.ndarray:
    """Predictions equal to the labels except on ``rows`` (shifted to the next class)."""
    pred = labels().copy()
    index = np.asarray(list(rows), dtype="int64")
    pred[index] = (pred[index] + 1) % CLASSES
    return pred


# production is wrong on rows 0..79 (accuracy 0.80); the baseline on rows 0..99 (0.75)
PRODUCTION = with_errors(range(80))
BASELINE = with_errors(range(100))


def gate(candidate: np.ndarray, policy: GatePolicy = POLICY, **kwargs: object) -> dict:
    arguments = {"baseline": BASELINE, "production": PRODUCTION, "production_version": 3}
    return decide(labels(), candidate, CLASSES, policy, **(arguments | kwargs))  # type: ignore[arg-type]


def test_clearly_better_is_promoted_with_its_test_counts_p_and_interval() -> None:
    candidate = with_errors([*range(20), *range(300, 305)])  # fixes 60 rows, breaks 5
    record = gate(candidate)
    assert (record["decision"], record["verdict"]) == ("promote", "promote")
    assert record["test"] == "exact McNemar" and record["alpha"] == 0.05
    assert record["statistic"] == pytest.approx(55 / N)
    low, high = record["interval"]
    assert 0 < low < 55 / N < high
    assert record["production_version"] == 3 and record["examples"] == N
    assert record["counts"] == {
        "candidate_only_right": 60,
        "production_only_right": 5,
        "both_right": 315,
        "both_wrong": 20,
    }
    assert record["p_value"] < 1e-10
    assert (
        "production v3 0.8000" in record["reason"] and "60 rows fixed, 5 broken" in record["reason"]
    )


def test_identical_predictions_stay_candidate_as_a_tie() -> None:
    record = gate(PRODUCTION.copy())
    assert (record["decision"], record["verdict"]) == ("candidate", "stays candidate (tie)")
    assert record["statistic"] == 0 and record["interval"] == [0, 0]
    assert record["p_value"] == 1.0


def test_slightly_worse_is_refused() -> None:
    record = gate(with_errors(range(83)))  # three more errors than production
    assert (record["decision"], record["verdict"]) == ("refused", "refused (worse than production)")
    assert record["statistic"] == pytest.approx(-3 / N)


def test_four_fixed_none_broken_on_a_few_hundred_rows_is_not_promoted() -> None:
    """Acceptance (issue 21): a 4/0 discordant split on 360 rows. The old gate's bootstrap
    interval was [+0.0028, +0.0222] and it promoted; McNemar's exact one-sided p is 1/16."""
    y = np.arange(360) % CLASSES
    production = y.copy()
    production[:40] = (production[:40] + 1) % CLASSES  # wrong on 40 rows
    candidate = production.copy()
    candidate[:4] = y[:4]  # fixes 4 of them, breaks none
    record = decide(y, candidate, CLASSES, POLICY, baseline=None, production=production)
    assert record["decision"] != "promote"
    assert record["verdict"] == "stays candidate (not significant)"
    assert record["p_value"] == pytest.approx(1 / 16)
    assert record["counts"]["candidate_only_right"] == 4
    assert record["counts"]["production_only_right"] == 0
    smaller_effect = GatePolicy(alpha=0.05, min_effect=0.01)  # 360 rows cannot detect +1 point
    refused = decide(y, candidate, CLASSES, smaller_effect, baseline=None, production=production)
    assert refused["verdict"] == "refused (test set too small)"
    assert refused["power"] < 0.8 and "power 0.29 < 0.8" in refused["reason"]


def test_power_is_exact_and_grows_with_the_test_set() -> None:
    # Best case at +5 points on 20 rows: the candidate fixes Binomial(20, 0.05) rows and breaks
    # none; the test rejects at alpha 0.05 from 5 such rows on (0.5**5 = 0.031).
    from scipy.stats import binom

    assert power(20, 0.05, 0.05) == pytest.approx(binom.sf(4, 20, 0.05))
    assert power(100, 0.02, 0.05) < power(360, 0.02, 0.05) < power(1000, 0.02, 0.05)
    assert power(360, 0.02, 0.05) == pytest.approx(0.847, abs=0.001)


def test_a_class_set_change_is_refused_unless_declared() -> None:
    """Acceptance (issue 21): production knows classes 0-9, the candidate 0-8 and 10."""
    ours = {"features": ["a", "b"], "classes": [*map(str, range(9)), "10"]}
    theirs = {"features": ["a", "b"], "classes": [*map(str, range(10))]}
    problems = schema_problems(ours, theirs)
    assert problems and "classes differ" in problems[0]
    record = gate(with_errors(range(20)), schema=problems)
    assert (record["decision"], record["verdict"]) == ("refused", "refused (schema differs)")
    declared = GatePolicy(schema_change=True)
    allowed = gate(with_errors(range(20)), declared, schema=problems, production=None)
    assert allowed["verdict"] == "promote (declared schema change)"


def test_features_order_and_dtypes_are_compared() -> None:
    base = {"features": ["a", "b"], "dtypes": {"a": "float64", "b": "int64"}, "classes": ["x"]}
    assert schema_problems(base, base) == []
    swapped = base | {"features": ["b", "a"]}
    assert schema_problems(swapped, base) == ["features are in a different order"]
    renamed = base | {"features": ["a", "c"]}
    assert schema_problems(renamed, base) == ["features differ (added ['c'], removed ['b'])"]
    retyped = base | {"dtypes": {"a": "float64", "b": "float64"}}
    assert schema_problems(retyped, base) == ["dtypes differ (b: int64 -> float64)"]


def test_never_promoted_when_worse_than_the_baseline() -> None:
    candidate = with_errors(range(101))  # one error more than the baseline
    record = gate(candidate, production=None)
    assert (record["decision"], record["verdict"]) == ("refused", "refused (worse than baseline)")
    assert record["comparisons"]["baseline"]["difference"] == pytest.approx(-1 / N)
    first = gate(with_errors(range(99)), production=None)  # one better: promoted, first model
    assert (first["decision"], first["verdict"]) == ("promote", "promote (first model)")
    assert first["baseline"] == pytest.approx(0.75)


def test_below_min_score_is_refused() -> None:
    record = gate(PRODUCTION, GatePolicy(min_score=0.9), production=None)
    assert record["verdict"] == "refused (below min_score)"


def test_f1_macro_matches_scikit_learn_and_is_gated_by_the_bootstrap() -> None:
    y, pred = labels(), with_errors([*range(0, 40), 41, 57])
    expected = f1_score(y, pred, labels=list(range(CLASSES)), average="macro", zero_division=0)
    assert score("f1_macro", y, pred, CLASSES) == pytest.approx(expected)
    policy = GatePolicy(metric="f1_macro")
    record = gate(with_errors(range(20)), policy)
    assert (record["verdict"], record["test"]) == ("promote", "paired bootstrap")
    few = gate(with_errors(range(76)), policy)  # 4 rows fixed: below the 5 discordant rows
    assert few["decision"] == "candidate" and "fewer than 5 discordant rows" in few["reason"]


def test_decision_is_reproducible() -> None:
    candidate = with_errors([*range(4, 80), 300, 301])
    y = labels()
    for policy in (POLICY, GatePolicy(metric="f1_macro")):
        assert compare(y, candidate, PRODUCTION, CLASSES, policy) == compare(
            y, candidate, PRODUCTION, CLASSES, policy
        )


def test_mcnemar_exact_p_value() -> None:
    y = labels()[:20]
    candidate, other = y.copy(), y.copy()
    other[:10] = (other[:10] + 1) % CLASSES
    result = mcnemar_exact(y, candidate, other)
    assert result["p_value"] == pytest.approx(0.5**10)
    assert result["p_value_two_sided"] == pytest.approx(2 * 0.5**10)


def test_bad_policy_lists_every_problem() -> None:
    with pytest.raises(StepError, match=r"--alpha 0.7: .*--min-effect 2: .*--resamples 5:"):
        GatePolicy(alpha=0.7, min_effect=2, resamples=5).check()


def test_bootstrap_memory_is_bounded_by_a_chunk_and_agrees_with_exact_scores() -> None:
    """The Poisson bootstrap draws weights a chunk of rows at a time: 50,000 rows x 1,000
    resamples (0.4 GB as one weight matrix) stay within a few chunks of memory, and resampled
    differences centre on the exact observed difference, the same for the same seed."""
    import tracemalloc

    from mlp_evaluate.gate import BOOTSTRAP_CHUNK_ROWS, bootstrap_differences

    rows = 50_000
    y = np.arange(rows) % CLASSES
    other = y.copy()
    other[: rows // 10] = (other[: rows // 10] + 1) % CLASSES
    candidate = other.copy()
    candidate[: rows // 50] = y[: rows // 50]
    tracemalloc.start()
    try:
        differences = bootstrap_differences("f1_macro", y, candidate, other, CLASSES, 1000, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    chunk = 1000 * BOOTSTRAP_CHUNK_ROWS * 8
    row_terms = 2 * rows * 3 * CLASSES * 8  # the per-row terms of both models
    assert peak < 3 * chunk + 2 * row_terms  # about 0.07 GB, not 0.4 GB
    observed = score("f1_macro", y, candidate, CLASSES) - score("f1_macro", y, other, CLASSES)
    assert np.median(differences) == pytest.approx(observed, abs=2e-3)
    again = bootstrap_differences("f1_macro", y, candidate, other, CLASSES, 1000, 0)
    assert np.array_equal(differences, again)
