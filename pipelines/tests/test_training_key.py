"""The pipeline's ``plan`` step names a training by its key (data, params, code version): a run
whose key a registered version has reuses that version instead of training. The worker count and
the distribution strategy change the trained model (the global batch, the steps per epoch, the
Keras that fits it: mlp_train.distributed), so they are in the key, and a run with another
``train_workers`` trains again. The strategy is chosen by the pipeline's train step, which is not
part of the training code version (mlp_common.provenance.TRAINING_CODE), so the key must name it
itself."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mlp_common.dataset import write_snapshot
from mlp_common.files import read_json
from mlp_common.registry import ModelRegistry
from mlp_ingest.core import load_sklearn
from mlp_pipeline.pipeline import plan
from mlp_train.distributed import STRATEGY

MODEL = "wine"
# The pipeline's defaults for everything but the worker count; only `workers` varies below.
PARAMS: dict[str, Any] = {
    "test_size": 0.2,
    "val_size": 0.2,
    "id_column": "",
    "seed": 42,
    "learning_rate": 0.001,
    "hidden_units": 64,
    "dropout": 0.1,
    "epochs": 30,
    "batch_size": 32,
}


@pytest.fixture
def inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """(a dataset snapshot's URI, an empty registry), with a fixed training code version."""
    monkeypatch.setenv("MLP_CODE_VERSION", "test-code")
    info = write_snapshot(
        str(tmp_path / "snapshots"), load_sklearn("wine")[0], name="wine", target="target"
    )
    assert info.uri
    return info.uri, tmp_path / "registry"


def planned(inputs: tuple[str, Path], workers: int, output: Path) -> dict[str, Any]:
    """plan.json of the plan step for a run with ``train_workers`` = ``workers``."""
    snapshot, registry = inputs
    artifact = SimpleNamespace(path=str(output))
    action = plan(
        snapshot_uri=snapshot,
        registry_uri=str(registry),
        model_name=MODEL,
        force_retrain=False,
        workers=workers,
        plan=artifact,  # type: ignore[arg-type]  # kfp's Output[Artifact]: only .path is read
        **PARAMS,
    )
    decided: dict[str, Any] = read_json(output / "plan.json")
    assert action == decided["action"]
    return decided


def register(inputs: tuple[str, Path], key: str, folder: Path) -> int:
    """A version trained under ``key`` (what the register step records)."""
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"not a real model: nothing here loads it")
    return ModelRegistry(inputs[1]).register(MODEL, folder, {"training_key": key}).version


def test_a_run_with_another_worker_count_trains_again(
    inputs: tuple[str, Path], tmp_path: Path
) -> None:
    keys = {}
    for workers in (1, 2, 3):
        first = planned(inputs, workers, tmp_path / f"plan-{workers}")
        assert (first["action"], first["version"]) == ("train", None), (workers, first)
        keys[workers] = first["training_key"]
        version = register(inputs, first["training_key"], tmp_path / f"model-{workers}")
        again = planned(inputs, workers, tmp_path / f"again-{workers}")
        assert (again["action"], again["version"]) == ("reuse", version)
    # 1 -> 2 changes the worker count and the strategy (default -> multi-worker); 2 -> 3 only
    # the worker count: each is a different training.
    assert len(set(keys.values())) == 3, keys
    # Back to one worker: the first version again.
    back = planned(inputs, 1, tmp_path / "back")
    assert (back["action"], back["version"]) == ("reuse", 1)


def test_the_key_names_the_strategy_the_train_step_runs(
    inputs: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlp_register.plan

    seen: list[dict[str, Any]] = []
    real = mlp_register.plan.main

    def recording(argv: list[str]) -> int:
        seen.append(json.loads(argv[argv.index("--params") + 1]))
        return real(argv)

    monkeypatch.setattr(mlp_register.plan, "main", recording)
    for workers in (1, 2):
        planned(inputs, workers, tmp_path / f"plan-{workers}")
    train = [params["train"] for params in seen]
    # One worker trains in the step's own process under TensorFlow's default strategy; more run
    # mlp_train.launch's workers, which train under mlp_train.distributed's strategy.
    assert [(t.get("workers"), t.get("strategy")) for t in train] == [
        (1, "default"),
        (2, STRATEGY),
    ]
