"""Register: put a trained model with its evaluation into the registry as a new version.

The version directory gets the model directory (``model.keras``, ``saved_model/``,
``features.json``, ``params.json``, ``metrics.json``), the evaluation (``evaluation.json``,
``gate.json``, ``confusion_matrix.png``) and, when given, the training data statistics
(``statistics.json``, the reference for skew and drift checks). ``metadata.json`` records params,
metrics, the dataset hash, code version, parent version, pipeline run id, timestamps and the gate
decision (see :mod:`mlp_common.registry`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlp_common.dataset import META_FILE as DATASET_META
from mlp_common.files import read_json
from mlp_common.provenance import code_version
from mlp_common.registry import ModelRegistry, ModelVersion
from mlp_common.step import StepError

EVALUATION_FILES = ("evaluation.json", "gate.json", "confusion_matrix.png")


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise StepError(f"{path}: missing; {what}")
    return path


def build_metadata(
    model_dir: Path,
    evaluation_dir: Path,
    dataset: dict[str, Any],
    run_id: str,
) -> dict[str, Any]:
    """The producer-side metadata of a version (the registry adds version, parent, created_at)."""
    training = read_json(_require(model_dir / "metrics.json", "not a model directory"))
    evaluation = read_json(_require(evaluation_dir / "evaluation.json", "not an evaluation dir"))
    gate = read_json(_require(evaluation_dir / "gate.json", "not an evaluation directory"))
    params = read_json(_require(model_dir / "params.json", "not a model directory"))
    return {
        "params": params,
        "metrics": {
            "test_accuracy": evaluation["accuracy"],
            "test_f1_macro": evaluation["f1_macro"],
            "test_f1_weighted": evaluation["f1_weighted"],
            "val_accuracy": training["val_accuracy"],
            "val_loss": training["val_loss"],
            "baseline_val_accuracy": training["baseline_val_accuracy"],
            "examples_per_second": training["examples_per_second"],
            "epochs_run": training["epochs_run"],
        },
        "dataset": {
            key: dataset[key]
            for key in ("name", "version", "content_hash", "rows", "source")
            if key in dataset
        },
        "code_version": code_version(),
        "pipeline_run_id": run_id,
        "gate": gate,
        "trained_at": training.get("trained_at"),
    }


def register(
    registry_root: str | Path,
    model_name: str,
    model_dir: str | Path,
    evaluation_dir: str | Path,
    dataset_dir: str | Path,
    *,
    run_id: str,
    statistics: str | Path | None = None,
    apply_gate: bool = False,
) -> ModelVersion:
    """Register a new version. With ``apply_gate`` a ``promote`` gate decision also moves
    ``production``; otherwise promotion is a separate step (the pipeline's ``dsl.If``)."""
    model_dir, evaluation_dir = Path(model_dir), Path(evaluation_dir)
    dataset = read_json(_require(Path(dataset_dir) / DATASET_META, "not a dataset directory"))
    _require(model_dir / "model.keras", "not a model directory")
    metadata = build_metadata(model_dir, evaluation_dir, dataset, run_id)
    registry = ModelRegistry(registry_root)
    with tempfile.TemporaryDirectory(prefix="mlp-register-") as staging:
        bundle = Path(staging) / "bundle"
        shutil.copytree(model_dir, bundle)
        for name in EVALUATION_FILES:
            shutil.copy2(evaluation_dir / name, bundle / name)
        if statistics is not None:
            shutil.copy2(
                _require(Path(statistics), "no statistics file"), bundle / "statistics.json"
            )
        promote = apply_gate and metadata["gate"]["decision"] == "promote"
        return registry.register(
            model_name,
            bundle,
            metadata,
            promote=promote,
            promote_reason=metadata["gate"].get("reason", ""),
        )
