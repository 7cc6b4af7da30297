"""Evaluate: held-out metrics for a candidate model and the promotion gate.

Metrics on the test split: accuracy, macro and weighted F1, the per-class report and the confusion
matrix (JSON and a PNG plot). The gate compares the candidate with the current production model
*on the same test split*: promote only if it beats production by the margin,
``candidate[metric] > production[metric] + margin`` (so a retrain that merely ties does not churn
production), and reaches ``min_score``; with no production model the candidate is promoted if it
reaches ``min_score``. Otherwise it is registered as a candidate only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlp_common.files import atomic_directory, read_json, write_json_atomic
from mlp_common.step import StepError

LABEL = "label"
GATE_METRICS = ("accuracy", "f1_macro")
PROMOTE = "promote"
CANDIDATE = "candidate"


@dataclass(frozen=True)
class GatePolicy:
    metric: str = "accuracy"
    margin: float = 0.0
    min_score: float = 0.0

    def check(self) -> None:
        if self.metric not in GATE_METRICS:
            raise StepError(f"--metric {self.metric}: expected one of {', '.join(GATE_METRICS)}")
        if not -1 < self.margin < 1:
            raise StepError(f"--margin {self.margin}: must be in (-1, 1)")


def load_test(data_dir: Path, features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    path = data_dir / "test.parquet"
    if not path.is_file():
        raise StepError(f"{data_dir}: no test.parquet; not a preprocess output directory")
    table = pd.read_parquet(path)
    missing = [c for c in [*features, LABEL] if c not in table.columns]
    if missing:
        raise StepError(f"{path}: missing columns {missing}")
    return table[features].to_numpy("float32"), table[LABEL].to_numpy("int64")


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


def gate(
    candidate: dict[str, Any], production: dict[str, Any] | None, policy: GatePolicy
) -> dict[str, Any]:
    """The promotion decision, with the numbers that led to it."""
    score = float(candidate[policy.metric])
    decision: dict[str, Any] = {
        "metric": policy.metric,
        "margin": policy.margin,
        "min_score": policy.min_score,
        "candidate": score,
        "production": None,
    }
    if score < policy.min_score:
        reason = f"{policy.metric} {score:.4f} is below the floor {policy.min_score:.4f}"
        return decision | {"decision": CANDIDATE, "reason": reason}
    if production is None:
        return decision | {"decision": PROMOTE, "reason": "no production model yet"}
    current = float(production[policy.metric])
    needed = current + policy.margin
    decision["production"] = current
    if score > needed:
        reason = f"{policy.metric} {score:.4f} > production {current:.4f} + margin {policy.margin}"
        return decision | {"decision": PROMOTE, "reason": reason}
    reason = (
        f"{policy.metric} {score:.4f} does not beat production {current:.4f} "
        f"+ margin {policy.margin}"
    )
    return decision | {"decision": CANDIDATE, "reason": reason}


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
) -> dict[str, Any]:
    """Evaluate the candidate (and production) on the test split; write the evaluation directory:
    ``evaluation.json`` (metrics), ``gate.json`` (decision) and ``confusion_matrix.png``."""
    policy.check()
    model_dir, data_dir = Path(model_dir), Path(data_dir)
    features_path = data_dir / "features.json"
    if not features_path.is_file():
        raise StepError(f"{data_dir}: no features.json; not a preprocess output directory")
    description = read_json(features_path)
    x, y = load_test(data_dir, description["features"])
    classes = list(description["classes"])
    metrics = classification_metrics(y, predict(model_dir, x), classes)
    production_metrics = None
    if production_dir is not None:
        production_metrics = classification_metrics(y, predict(Path(production_dir), x), classes)
    decision = gate(metrics, production_metrics, policy)
    if production_metrics is not None:
        decision["production_metrics"] = {k: production_metrics[k] for k in GATE_METRICS}
    with atomic_directory(output) as tmp:
        write_json_atomic(tmp / "evaluation.json", metrics)
        write_json_atomic(tmp / "gate.json", decision)
        plot_confusion_matrix(metrics["confusion_matrix"], classes, tmp / "confusion_matrix.png")
    return {"metrics": metrics, "gate": decision}
