"""Evaluate: held-out metrics for a candidate model and the promotion gate.

Metrics on the test split: accuracy, macro and weighted F1, the per-class report and the confusion
matrix (JSON and a PNG plot), plus the metrics of the scikit-learn baseline trained next to the
candidate. The gate (:mod:`mlp_evaluate.gate`) compares the candidate with the production model and
with the baseline *on the same test rows* (exact McNemar, declared alpha and power) and records its
test, counts, p-value, difference, interval and decision. A production model whose features,
order, dtypes or classes differ is not scored: the gate refuses unless a schema change is
declared. The test split is read, scored and counted batch by batch into a
:class:`mlp_evaluate.tally.Tally` (confusion matrices, agreement counts, the bootstrap's resampled
totals) and every figure is computed from those counts, so evaluation memory does not grow with
the test set: no per-row array outlives its batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from mlp_common.files import atomic_directory, read_json, write_json_atomic
from mlp_common.step import StepError
from mlp_common.tables import iter_parquet

from mlp_evaluate.gate import (
    CANDIDATE,
    GATE_METRICS,
    PROMOTE,
    REFUSED,
    GatePolicy,
    decide_tally,
    policy_tally,
    schema_problems,
)
from mlp_evaluate.tally import CANDIDATE_MODEL, Tally, confusion

LABEL = "label"
BASELINE_FILE = "baseline.joblib"

__all__ = ["CANDIDATE", "GATE_METRICS", "PROMOTE", "REFUSED", "GatePolicy", "evaluate"]


def test_batches(data_dir: Path, features: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The test split as (features float32, labels int64) batches, never whole in memory."""
    path = data_dir / "test.parquet"
    if not path.is_file():
        raise StepError(f"{data_dir}: no test.parquet; not a preprocess output directory")
    import pyarrow.parquet as pq

    missing = [c for c in [*features, LABEL] if c not in pq.read_schema(path).names]
    if missing:
        raise StepError(f"{path}: missing columns {missing}")
    for table in iter_parquet([path], [*features, LABEL]):
        yield table[features].to_numpy("float32"), table[LABEL].to_numpy("int64")


Predictor = Callable[[np.ndarray], np.ndarray]


def baseline_predictor(model_dir: Path) -> Predictor | None:
    """Class indices of the scikit-learn baseline trained next to the model (None if absent)."""
    path = model_dir / BASELINE_FILE
    if not path.is_file():
        return None
    import joblib

    model = joblib.load(path)
    return lambda x: np.asarray(model.predict(x)).astype("int64")


def keras_predictor(model_dir: Path) -> Predictor:
    """Class indices predicted by the Keras model in ``model_dir``."""
    import keras

    path = model_dir / "model.keras"
    if not path.is_file():
        raise StepError(f"{model_dir}: no model.keras; not a model directory")
    model = keras.saving.load_model(path)
    # One call per test batch: ``predict`` would build a dataset and step it 32 rows at a time
    # (about 25x slower on 8,192 rows, same probabilities).
    return lambda x: np.asarray(model.predict_on_batch(x)).argmax(axis=1).astype("int64")


def stream_tally(
    data_dir: Path,
    features: list[str],
    predictors: dict[str, Predictor],
    policy: GatePolicy,
    n_classes: int,
) -> Tally:
    """Score the test split batch by batch with every predictor (``candidate`` first) and count
    the results into the :class:`Tally` the gate's ``policy`` needs; each batch's features,
    labels and predictions are dropped once counted."""
    others = tuple(name for name in predictors if name != CANDIDATE_MODEL)
    tally = policy_tally(n_classes, others, policy)
    for x, y in test_batches(data_dir, features):
        tally.add(y, {name: predictor(x) for name, predictor in predictors.items()})
    return tally


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """Accuracy, F1 (macro, weighted), per-class report and confusion matrix of predictions."""
    return metrics_of_confusion(confusion(y_true, y_pred, len(classes)), classes)


def metrics_of_confusion(matrix: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, F1 (macro, weighted), per-class report and confusion matrix of the rows a
    confusion matrix counts: scikit-learn's own metrics of one row per non-empty cell, weighted
    by its count, which are exactly those of the rows themselves."""
    from sklearn.metrics import accuracy_score, classification_report, f1_score

    labels = list(range(len(classes)))
    y_true, y_pred = np.nonzero(matrix)
    weight = matrix[y_true, y_pred].astype("float64")
    if not len(weight):  # no rows: scikit-learn's metrics of nothing, as before
        y_true = y_pred = np.zeros(0, "int64")
        weight = None
    return {
        "accuracy": float(accuracy_score(y_true, y_pred, sample_weight=weight)),
        "f1_macro": float(
            f1_score(
                y_true,
                y_pred,
                labels=labels,
                average="macro",
                zero_division=0,
                sample_weight=weight,
            )
        ),
        "f1_weighted": float(
            f1_score(
                y_true,
                y_pred,
                labels=labels,
                average="weighted",
                zero_division=0,
                sample_weight=weight,
            )
        ),
        "per_class": classification_report(
            y_true,
            y_pred,
            labels=labels,
            target_names=classes,
            output_dict=True,
            zero_division=0,
            sample_weight=weight,
        ),
        "confusion_matrix": matrix.tolist(),
        "classes": classes,
        "examples": int(matrix.sum()),
    }


def plot_confusion_matrix(matrix: list[list[int]], classes: list[str], path: Path) -> None:
    """Write the confusion matrix as a PNG heat map with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4 + 0.4 * len(classes), 3.5 + 0.4 * len(classes)))
    data = np.asarray(matrix)
    axes.imshow(data, cmap="Blues")
    axes.set_xticks(range(len(classes)), labels=classes)
    axes.set_yticks(range(len(classes)), labels=classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title("confusion matrix (test split)")
    threshold = data.max() / 2 if data.size else 0
    for row in range(data.shape[0]):
        for col in range(data.shape[1]):
            colour = "white" if data[row, col] > threshold else "black"
            axes.text(col, row, str(data[row, col]), ha="center", va="center", color=colour)
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(figure)


def evaluate(
    model_dir: str | Path,
    data_dir: str | Path,
    output: str | Path,
    policy: GatePolicy,
    production_dir: str | Path | None = None,
    production_version: int | None = None,
) -> dict[str, Any]:
    """Evaluate the candidate, its scikit-learn baseline and the production model on the same test
    rows; write the evaluation directory: ``evaluation.json`` (metrics, baseline metrics),
    ``gate.json`` (decision, statistic, interval) and ``confusion_matrix.png``."""
    policy.check()
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    features_path = data_dir / "features.json"
    if not features_path.is_file():
        raise StepError(f"{data_dir}: no features.json; not a preprocess output directory")
    description = read_json(features_path)
    classes = list(description["classes"])
    predictors: dict[str, Predictor] = {CANDIDATE_MODEL: keras_predictor(model_dir)}
    baseline_model = baseline_predictor(model_dir)
    if baseline_model is not None:
        predictors["baseline"] = baseline_model
    schema: list[str] = []
    if production_dir is not None:
        described = Path(production_dir) / "features.json"
        if described.is_file():
            schema = schema_problems(description, read_json(described))
        if not schema:  # a model of another schema cannot even read these rows
            predictors["production"] = keras_predictor(Path(production_dir))
    tally = stream_tally(data_dir, description["features"], predictors, policy, len(classes))
    metrics = metrics_of_confusion(tally.confusion[CANDIDATE_MODEL], classes)
    if "baseline" in tally.confusion:
        baseline_metrics = metrics_of_confusion(tally.confusion["baseline"], classes)
        metrics["baseline"] = {k: baseline_metrics[k] for k in (*GATE_METRICS, "f1_weighted")}
    decision = decide_tally(tally, policy, production_version=production_version, schema=schema)
    if "production" in tally.confusion:
        production_metrics = metrics_of_confusion(tally.confusion["production"], classes)
        decision["production_metrics"] = {k: production_metrics[k] for k in GATE_METRICS}
    with atomic_directory(output) as tmp:
        write_json_atomic(tmp / "evaluation.json", metrics)
        write_json_atomic(tmp / "gate.json", decision)
        plot_confusion_matrix(metrics["confusion_matrix"], classes, tmp / "confusion_matrix.png")
    return {"metrics": metrics, "gate": decision}
