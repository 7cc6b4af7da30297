"""Evaluate: held-out metrics for a candidate model and the promotion gate.

Metrics on the test split: accuracy, macro and weighted F1, the per-class report and the confusion
matrix (JSON and a PNG plot), plus the metrics of the scikit-learn baseline trained next to the
candidate. The gate (:mod:`mlp_evaluate.gate`) compares the candidate with the production model and
with the baseline *on the same test rows* (exact McNemar, declared alpha and power) and records its
test, counts, p-value, difference, interval and decision. A production model whose features,
order, dtypes or classes differ is not scored: the gate refuses unless a schema change is
declared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlp_common.files import atomic_directory, read_json, write_json_atomic
from mlp_common.step import StepError

from mlp_evaluate.gate import (
    CANDIDATE,
    GATE_METRICS,
    PROMOTE,
    REFUSED,
    GatePolicy,
    decide,
    schema_problems,
)

LABEL = "label"
BASELINE_FILE = "baseline.joblib"

__all__ = ["CANDIDATE", "GATE_METRICS", "PROMOTE", "REFUSED", "GatePolicy", "evaluate"]


def load_test(data_dir: Path, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    path = data_dir / "test.parquet"
    if not path.is_file():
        raise StepError(f"{data_dir}: no test.parquet; not a preprocess output directory")
    table = pd.read_parquet(path)
    missing = [c for c in [*features, LABEL] if c not in table.columns]
    if missing:
        raise StepError(f"{path}: missing columns {missing}")
    return table[features].to_numpy("float32"), table[LABEL].to_numpy("int64")


def predict_baseline(model_dir: Path, x: np.ndarray) -> np.ndarray | None:
    """Class indices of the scikit-learn baseline trained next to the model (None if absent)."""
    path = model_dir / BASELINE_FILE
    if not path.is_file():
        return None
    import joblib

    return np.asarray(joblib.load(path).predict(x)).astype("int64")


def predict(model_dir: Path, x: np.ndarray) -> np.ndarray:
    """Class indices predicted by the Keras model in ``model_dir``."""
    import keras

    path = model_dir / "model.keras"
    if not path.is_file():
        raise StepError(f"{model_dir}: no model.keras; not a model directory")
    model = keras.saving.load_model(path)
    return np.asarray(model.predict(x, verbose=0)).argmax(axis=1)


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """Accuracy, F1 (macro, weighted), per-class report and confusion matrix."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    labels = list(range(len(classes)))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "f1_weighted": float(
            f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
        ),
        "per_class": classification_report(
            y_true, y_pred, labels=labels, target_names=classes, output_dict=True, zero_division=0
        ),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "classes": classes,
        "examples": len(y_true),
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
    x, y = load_test(data_dir, description["features"])
    classes = list(description["classes"])
    predicted = predict(model_dir, x)
    metrics = classification_metrics(y, predicted, classes)
    baseline = predict_baseline(model_dir, x)
    if baseline is not None:
        baseline_metrics = classification_metrics(y, baseline, classes)
        metrics["baseline"] = {k: baseline_metrics[k] for k in (*GATE_METRICS, "f1_weighted")}
    schema: list[str] = []
    production = None
    if production_dir is not None:
        described = Path(production_dir) / "features.json"
        if described.is_file():
            schema = schema_problems(description, read_json(described))
        if not schema:  # a model of another schema cannot even read these rows
            production = predict(Path(production_dir), x)
    decision = decide(
        y,
        predicted,
        len(classes),
        policy,
        baseline=baseline,
        production=production,
        production_version=production_version,
        schema=schema,
    )
    if production is not None:
        production_metrics = classification_metrics(y, production, classes)
        decision["production_metrics"] = {k: production_metrics[k] for k in GATE_METRICS}
    with atomic_directory(output) as tmp:
        write_json_atomic(tmp / "evaluation.json", metrics)
        write_json_atomic(tmp / "gate.json", decision)
        plot_confusion_matrix(metrics["confusion_matrix"], classes, tmp / "confusion_matrix.png")
    return {"metrics": metrics, "gate": decision}
