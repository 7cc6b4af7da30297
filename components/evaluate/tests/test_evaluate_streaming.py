"""Evaluate streams the test split into counts (issue 23): the same figures as the in-memory
computation on the same rows, however the rows are batched, in memory that does not grow with
the rows."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlp_common.files import read_json, write_json_atomic
from mlp_evaluate import core
from mlp_evaluate.gate import GatePolicy, critical_counts, decide, decide_tally, policy_tally, power
from mlp_evaluate.tally import CANDIDATE_MODEL
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

CLASSES = 10


def predictions(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Labels and three models that are right on about 90, 85 and 80 % of the rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, rows)
    found = {"y": y}
    for name, right in (("candidate", 0.9), ("baseline", 0.85), ("production", 0.8)):
        found[name] = np.where(rng.random(rows) < right, y, rng.integers(0, CLASSES, rows))
    return found


def in_memory_bootstrap(
    metric: str, y: np.ndarray, mine: np.ndarray, theirs: np.ndarray, resamples: int, seed: int
) -> np.ndarray:
    """The bootstrap as the evaluate step computed it before it streamed: per-row terms of the
    whole test set, Poisson weights drawn 2,048 rows at a time from one generator."""
    from mlp_evaluate.tally import metric_of_totals, row_statistics

    rng = np.random.default_rng(seed)
    a, b = (row_statistics(metric, y, pred, CLASSES) for pred in (mine, theirs))
    totals_a, totals_b = np.zeros((resamples, a.shape[1])), np.zeros((resamples, b.shape[1]))
    weight = np.zeros(resamples)
    for start in range(0, len(y), 2048):
        weights = rng.poisson(1.0, size=(resamples, len(y[start : start + 2048]))).astype(float)
        totals_a += weights @ a[start : start + 2048]
        totals_b += weights @ b[start : start + 2048]
        weight += weights.sum(axis=1)
    weight = np.maximum(weight, 1.0)
    return metric_of_totals(metric, totals_a, weight) - metric_of_totals(metric, totals_b, weight)


@pytest.mark.parametrize("metric", ["accuracy", "f1_macro"])
def test_batched_counts_decide_exactly_as_the_whole_arrays(metric: str) -> None:
    """The gate's record from the test rows fed in uneven batches equals the record from the
    rows given whole; the bootstrap's differences equal the pre-streaming computation's."""
    found = predictions(9_001, seed=1)
    policy = GatePolicy(metric=metric, resamples=300, seed=7)
    whole = decide(
        found["y"],
        found["candidate"],
        CLASSES,
        policy,
        baseline=found["baseline"],
        production=found["production"],
    )
    tally = policy_tally(CLASSES, ("baseline", "production"), policy)
    start = 0
    for size in (1, 2047, 3000, 5, 4096, 10_000):
        rows = slice(start, start + size)
        tally.add(
            found["y"][rows],
            {name: found[name][rows] for name in (CANDIDATE_MODEL, "baseline", "production")},
        )
        start += size
    assert tally.rows == 9_001
    streamed = decide_tally(tally, policy)
    assert json.dumps(streamed, sort_keys=True) == json.dumps(whole, sort_keys=True)
    if metric == "f1_macro":
        reference = in_memory_bootstrap(
            metric, found["y"], found["candidate"], found["production"], 300, 7
        )
        low, high = np.quantile(reference, [policy.alpha, 1 - policy.alpha])
        assert streamed["interval"] == [round(float(low), 12), round(float(high), 12)]


def test_metrics_from_the_confusion_matrix_equal_scikit_learns_on_the_rows() -> None:
    classes = [str(c) for c in range(CLASSES)]
    labels = list(range(CLASSES))
    for seed in range(5):
        found = predictions(1_000 + 37 * seed, seed)
        y, pred = found["y"], found["candidate"]
        if seed == 4:  # a class nobody predicts and no row has
            y, pred = np.where(y == 3, 4, y), np.where(pred == 3, 4, pred)
        expected = {
            "accuracy": float(accuracy_score(y, pred)),
            "f1_macro": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
            "f1_weighted": float(
                f1_score(y, pred, labels=labels, average="weighted", zero_division=0)
            ),
            "per_class": classification_report(
                y, pred, labels=labels, target_names=classes, output_dict=True, zero_division=0
            ),
            "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
            "classes": classes,
            "examples": len(y),
        }
        got = core.classification_metrics(y, pred, classes)
        assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_power_over_the_likely_counts_equals_the_sum_over_all_counts() -> None:
    from scipy.stats import binom

    for n, effect, discordance in ((50_000, 0.02, 0.1), (200_000, 0.01, None), (3_000, 0.05, 0.3)):
        psi = max(effect, discordance or effect)
        d = np.arange(n + 1)
        k = critical_counts(d, 0.05)
        theta = (psi + effect) / (2 * psi)
        reject = np.where(k <= d, binom.sf(k - 1, d, theta), 0.0)
        full = float(np.sum(binom.pmf(d, n, psi) * reject))
        assert power(n, effect, 0.05, discordance) == pytest.approx(full, rel=1e-12, abs=1e-15)


def _test_split(directory: Path, rows: int) -> None:
    """A preprocess output with two features: ``truth`` (the label) and ``noise``."""
    directory.mkdir()
    rng = np.random.default_rng(0)
    y = rng.integers(0, CLASSES, rows)
    write_json_atomic(
        directory / "features.json",
        {
            "features": ["truth", "noise"],
            "classes": [str(c) for c in range(CLASSES)],
        },
    )
    table = pa.table(
        {"truth": y.astype("float32"), "noise": rng.random(rows, dtype="float32"), "label": y}
    )
    pq.write_table(table, directory / "test.parquet", row_group_size=65_536)


def _stub_predictor(model_dir: Path) -> core.Predictor:
    """The truth, except on a share of rows (by noise) that grows with the model's number."""
    wrong = 0.05 * int(model_dir.name[-1])

    def predict(x: np.ndarray) -> np.ndarray:
        truth = x[:, 0].astype("int64")
        return np.where(x[:, 1] < wrong, (truth + 1) % CLASSES, truth)

    return predict


def test_evaluate_memory_does_not_grow_with_the_test_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evaluate on 1.5 million test rows against a production model: Python-tracked memory
    stays within a few batches. Before evaluate streamed into counts it kept the labels and each
    model's predictions for every row (and the gate's power summed over every possible count):
    over 100 MB here, growing with the rows."""
    import matplotlib.pyplot  # noqa: F401  (imported before measuring, like the rest)
    import scipy.stats  # noqa: F401
    import sklearn.metrics  # noqa: F401

    rows = 1_500_000
    _test_split(tmp_path / "data", rows)
    for name in ("model1", "model2"):
        (tmp_path / name).mkdir()
        write_json_atomic(
            tmp_path / name / "features.json", read_json(tmp_path / "data" / "features.json")
        )
    monkeypatch.setattr(core, "keras_predictor", _stub_predictor)
    tracemalloc.start()
    try:
        result = core.evaluate(
            tmp_path / "model1",
            tmp_path / "data",
            tmp_path / "out",
            GatePolicy(),
            production_dir=tmp_path / "model2",
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result["metrics"]["examples"] == rows
    assert result["gate"]["counts"]["production_only_right"] == 0
    assert result["gate"]["verdict"] == "promote"
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB traced"
