"""Register: put a trained model with its evaluation into the registry as a new version.

The version directory gets the model directory (``model.keras``, ``saved_model/``,
``features.json``, ``params.json``, ``metrics.json``), the evaluation (``evaluation.json``,
``gate.json``, ``confusion_matrix.png``) and, when given, the training data statistics
(``statistics.json``, the reference for skew and drift checks). ``metadata.json`` records params,
metrics, the baseline's metrics, the gate decision (its test, counts, p-value, effect and interval;
``parent`` is the production version it compared with, never merely the previous version) and the
lineage: the dataset snapshot URI and hashes, the split rule and the test set's hash, the source
and query (credentials redacted), the train step's code version, component images (on a
cluster: the PipelineVersion's pins, and ``image_digests``, what the run's pods actually ran, read
from their status by :mod:`mlp_common.run_images`; locally ``local`` and the code version),
pipeline run id, ``trained_at`` and the training key that lets a later run with the
same inputs reuse this version (see :mod:`mlp_common.registry`). ``MODEL_CARD.md``
(:mod:`mlp_register.card`) is generated from the final metadata inside the version.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlp_common.dataset import META_FILE as DATASET_META
from mlp_common.files import read_json
from mlp_common.provenance import cluster_images, recorded_code_version, redact_credentials
from mlp_common.registry import ModelRegistry, ModelVersion, promotion_problems
from mlp_common.run_images import run_image_digests
from mlp_common.step import StepError

from mlp_register.card import CARD_FILE, model_card

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
    *,
    source: str = "",
    query: str = "",
    images: dict[str, str] | None = None,
    training_key: str | None = None,
) -> dict[str, Any]:
    """The producer-side metadata of a version (the registry adds version, parent, created_at)."""
    training = read_json(_require(model_dir / "metrics.json", "not a model directory"))
    evaluation = read_json(_require(evaluation_dir / "evaluation.json", "not an evaluation dir"))
    gate = read_json(_require(evaluation_dir / "gate.json", "not an evaluation directory"))
    params = read_json(_require(model_dir / "params.json", "not a model directory"))
    provenance_path = model_dir / "provenance.json"
    provenance = read_json(provenance_path) if provenance_path.is_file() else {}
    described_path = model_dir / "features.json"
    described = read_json(described_path) if described_path.is_file() else {}
    split = described.get("split")
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
        "baseline": {
            "model": training.get("baseline", "scikit-learn baseline"),
            "val_accuracy": training["baseline_val_accuracy"],
            "test": evaluation.get("baseline"),
        },
        "dataset": {
            "name": dataset["name"],
            "version": dataset["version"],
            "content_hash": dataset["content_hash"],
            "rows": dataset["rows"],
            "snapshot_uri": dataset.get("uri"),
            "files": dataset.get("files", {}),
            "source": redact_credentials(source) or None,
            "query": redact_credentials(query) or None,
        },
        "split": None
        if split is None
        else split | {"test_hash": described.get("test_hash"), "rows": described.get("splits")},
        "code_version": provenance.get("code_version") or recorded_code_version(),
        "register_code_version": recorded_code_version(),
        "images": cluster_images(images or {}),
        "image_digests": run_image_digests(images or {}),
        "pipeline_run_id": run_id,
        "gate": gate,
        "compared_with": {"production_version": gate.get("production_version")},
        "trained_at": provenance.get("trained_at"),
        "training_key": training_key,
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
    source: str = "",
    query: str = "",
    images: dict[str, str] | None = None,
    training_key: str | None = None,
) -> ModelVersion:
    """Register a new version. With ``apply_gate`` a version that passes the promotion check
    (:func:`mlp_common.registry.promotion_problems`: its gate decided ``promote``) also moves
    ``production`` (compare-and-swap against the production version the gate compared with);
    otherwise promotion is a separate step (the pipeline's ``dsl.If``)."""
    model_dir, evaluation_dir = Path(model_dir), Path(evaluation_dir)
    dataset = read_json(_require(Path(dataset_dir) / DATASET_META, "not a dataset directory"))
    _require(model_dir / "model.keras", "not a model directory")
    metadata = build_metadata(
        model_dir,
        evaluation_dir,
        dataset,
        run_id,
        source=source,
        query=query,
        images=images,
        training_key=training_key,
    )
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
        version = registry.register(
            model_name,
            bundle,
            metadata,
            parent=metadata["gate"].get("production_version"),
            render={CARD_FILE: model_card},
        )
    if apply_gate and not promotion_problems(version):
        registry.promote(
            model_name,
            version.version,
            reason=metadata["gate"].get("reason", ""),
            expected=metadata["gate"].get("production_version"),
        )
    return version
