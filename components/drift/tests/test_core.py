from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from mlp_drift.core import (
    DriftError,
    Thresholds,
    compare,
    population_stability_index,
    quantile_edges,
)

from .conftest import SHIFTED_FEATURES, shift


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy(dtype=float) for c in frame.columns if c != "target"}


def test_unshifted_holdout_is_not_drift(cancer_split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, holdout = cancer_split
    report = compare(_columns(reference), _columns(holdout))
    assert report.sufficient
    assert not report.drift_detected, report.to_dict()
    assert len(report.features) == 30
    assert max(f.psi for f in report.features) < 0.2


def test_shifted_holdout_flags_exactly_the_shifted_features(
    cancer_split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    reference, holdout = cancer_split
    report = compare(_columns(reference), _columns(shift(holdout)))
    assert report.drift_detected
    assert set(report.drifted_features) == set(SHIFTED_FEATURES)
    by_name = {f.feature: f for f in report.features}
    for name in SHIFTED_FEATURES:
        assert by_name[name].psi > 0.5
        assert by_name[name].ks_pvalue < 1e-4
        assert by_name[name].current_mean > by_name[name].reference_mean


def test_psi_matches_a_hand_computed_value() -> None:
    reference = np.array([0.0, 1.0, 2.0, 3.0] * 25)  # 2 bins at the median: 50% / 50%
    current = np.array([0.0] * 20 + [3.0] * 80)  # 20% / 80%
    expected = (0.2 - 0.5) * math.log(0.2 / 0.5) + (0.8 - 0.5) * math.log(0.8 / 0.5)
    assert population_stability_index(reference, current, bins=2) == pytest.approx(expected)
    assert population_stability_index(reference, reference, bins=10) == pytest.approx(0.0)


def test_psi_of_a_new_category_is_large_but_finite() -> None:
    reference = np.zeros(100)
    current = np.ones(100)
    psi = population_stability_index(reference, current, bins=10)
    assert math.isfinite(psi) and psi > 5


def test_discrete_reference_has_deduplicated_edges() -> None:
    edges = quantile_edges(np.array([1.0] * 90 + [2.0] * 10), bins=10)
    assert list(edges) == sorted(set(edges))
    assert len(edges) <= 2


def test_ks_alone_flags_a_variance_change(rng: np.random.Generator) -> None:
    reference = {"x": rng.normal(0, 1, 2000)}
    wider = {"x": rng.normal(0, 3, 2000)}
    same = {"x": rng.normal(0, 1, 2000)}
    assert compare(reference, wider, Thresholds(psi=100.0)).drift_detected
    assert not compare(reference, same, Thresholds(psi=100.0)).drift_detected


def test_too_few_rows_makes_no_decision(rng: np.random.Generator) -> None:
    report = compare({"x": rng.normal(0, 1, 500)}, {"x": rng.normal(9, 1, 10)})
    assert not report.sufficient
    assert not report.drift_detected
    assert report.features == ()
    assert report.current_samples == 10


def test_threshold_is_configurable(cancer_split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, holdout = cancer_split
    strict = compare(_columns(reference), _columns(holdout), Thresholds(psi=0.01, ks_alpha=0.5))
    assert strict.drift_detected


@pytest.mark.parametrize(
    ("reference", "current", "message"),
    [
        ({}, {}, "reference has no features"),
        ({"a": [1.0, 2.0]}, {"b": [1.0]}, "current data lacks reference features: a"),
        ({"a": [1.0, float("nan")]}, {"a": [1.0] * 40}, "feature 'a': reference has 1 non-finite"),
        (
            {"a": [1.0, 2.0]},
            {"a": [1.0] * 39 + [float("inf")]},
            "feature 'a': current has 1 non-finite",
        ),
        ({"a": []}, {"a": [1.0] * 40}, "feature 'a': reference has no values"),
    ],
)
def test_bad_input_names_the_feature(
    reference: dict[str, list[float]], current: dict[str, list[float]], message: str
) -> None:
    with pytest.raises(DriftError, match=message.replace("(", r"\(")):
        compare(reference, current)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"psi": 0.0}, "psi threshold must be > 0"),
        ({"ks_alpha": 1.0}, "ks alpha must be in"),
        ({"bins": 1}, "bins must be >= 2"),
        ({"min_samples": 0}, "min samples must be >= 1"),
    ],
)
def test_thresholds_are_validated(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(DriftError, match=message):
        Thresholds(**kwargs)  # type: ignore[arg-type]
