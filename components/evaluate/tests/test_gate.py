"""The gate on synthetic predictions whose correct decision is known."""

import numpy as np
import pytest
from mlp_common.step import StepError
from mlp_evaluate.gate import GatePolicy, compare, decide, mcnemar_exact, score
from sklearn.metrics import f1_score

N, CLASSES = 400, 10
POLICY = GatePolicy(margin=0.01, confidence=0.95)


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


def test_clearly_better_is_promoted_with_its_statistic() -> None:
    candidate = with_errors([*range(20), *range(300, 305)])  # fixes 60 rows, breaks 5
    record = gate(candidate)
    assert (record["decision"], record["verdict"]) == ("promote", "promote")
    assert record["statistic"] == pytest.approx(55 / N)
    low, high = record["interval"]
    assert 0.01 < low < 55 / N < high
    assert record["production_version"] == 3 and record["examples"] == N
    mcnemar = record["comparisons"]["production"]["mcnemar"]
    assert (mcnemar["candidate_only_right"], mcnemar["other_only_right"]) == (60, 5)
    assert mcnemar["p_value"] < 1e-10
    assert "production v3 0.8000" in record["reason"] and "interval" in record["reason"]


def test_identical_predictions_stay_candidate_as_a_tie() -> None:
    record = gate(PRODUCTION.copy())
    assert (record["decision"], record["verdict"]) == ("candidate", "stays candidate (tie)")
    assert record["statistic"] == 0 and record["interval"] == [0, 0]
    assert record["comparisons"]["production"]["mcnemar"]["p_value"] == 1.0


def test_slightly_worse_is_refused() -> None:
    record = gate(with_errors(range(83)))  # three more errors than production
    assert (record["decision"], record["verdict"]) == ("refused", "refused (worse than production)")
    assert record["statistic"] == pytest.approx(-3 / N)
    assert record["interval"][0] < 0 <= record["interval"][1]  # not significant, still refused


def test_better_but_not_significant_stays_candidate() -> None:
    candidate = with_errors([*range(4, 80), 300, 301])  # fixes 4 rows, breaks 2
    record = gate(candidate)
    assert record["verdict"] == "stays candidate (not significant)"
    assert record["decision"] == "candidate"
    assert record["statistic"] == pytest.approx(2 / N)
    assert record["interval"][0] <= 0.01  # does not clear the margin


def test_margin_is_applied_to_the_interval() -> None:
    candidate = with_errors([*range(20), *range(300, 305)])  # +55 rows, interval ~[0.10, 0.17]
    strict = GatePolicy(margin=0.2, confidence=0.95)
    assert gate(candidate, strict)["verdict"] == "stays candidate (not significant)"


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


def test_f1_macro_matches_scikit_learn_and_is_gated() -> None:
    y, pred = labels(), with_errors([*range(0, 40), 41, 57])
    expected = f1_score(y, pred, labels=list(range(CLASSES)), average="macro", zero_division=0)
    assert score("f1_macro", y, pred, CLASSES) == pytest.approx(expected)
    policy = GatePolicy(metric="f1_macro", margin=0.01)
    assert gate(with_errors(range(20)), policy)["verdict"] == "promote"


def test_decision_is_reproducible_and_depends_on_the_seed_only_through_the_interval() -> None:
    candidate = with_errors([*range(4, 80), 300, 301])
    y = labels()
    assert compare(y, candidate, PRODUCTION, CLASSES, POLICY) == compare(
        y, candidate, PRODUCTION, CLASSES, POLICY
    )


def test_mcnemar_exact_p_value() -> None:
    y = labels()[:20]
    candidate, other = y.copy(), y.copy()
    other[:10] = (other[:10] + 1) % CLASSES
    assert mcnemar_exact(y, candidate, other)["p_value"] == pytest.approx(2 * 0.5**10)


def test_bad_policy_lists_every_problem() -> None:
    with pytest.raises(StepError, match=r"--margin 2: .*--confidence 0.2: .*--resamples 5:"):
        GatePolicy(margin=2, confidence=0.2, resamples=5).check()
