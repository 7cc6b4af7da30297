"""Multi-worker training (mlp_train.distributed) with real TensorFlow workers on 127.0.0.1.

The two cluster tests start real worker processes (mlp_train.launch); each takes 2 process
starts of TensorFlow (about 20 s on an idle 2-core machine, several times that under load).
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlp_common.dataset import write_dataset
from mlp_common.files import read_json, write_json_atomic
from mlp_common.registry import ModelRegistry
from mlp_common.step import StepError
from mlp_ingest.core import load_sklearn
from mlp_preprocess.cli import main as preprocess
from mlp_train import data_source
from mlp_train.core import HyperParameters, train
from mlp_train.distributed import ClusterSpec, cluster_from_environment
from mlp_train.launch import LocalCluster, free_ports, tf_config

EPOCHS = 12
# The 2-worker model's validation accuracy may differ from the single-worker model's (same data,
# seed and epochs) by at most this much: 2 of wine's 36 validation rows. The global batch is
# twice as large, so an epoch has half the steps, and the two runs use different Keras versions
# (tf_keras under the strategy, Keras 3 alone), so equality is not expected.
ACCURACY_TOLERANCE = 0.06


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_dataset(root / "ds", load_sklearn("wine")[0], name="wine", target="target", source="t")
    assert preprocess(["--dataset", str(root / "ds"), "--output", str(root / "prep")]) == 0
    return root / "prep"


def train_args(data: Path, output: Path, epochs: int, patience: int) -> list[str]:
    return ["--data", str(data), "--output", str(output), "--epochs", str(epochs)] + [
        "--patience",
        str(patience),
        "--seed",
        "7",
    ]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}},
            ClusterSpec(("a:1", "b:2"), 1),
        ),
        (
            {"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker"}},
            ClusterSpec(("c:1", "a:1"), 1),
        ),
        (
            {"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief"}},
            ClusterSpec(("c:1", "a:1"), 0),
        ),
    ],
)
def test_tf_config_names_this_workers_rank(config: dict[str, Any], expected: ClusterSpec) -> None:
    cluster = cluster_from_environment({"TF_CONFIG": json.dumps(config)})
    assert cluster == expected
    assert cluster.is_chief == (expected.rank == 0)


def test_no_tf_config_means_default_strategy() -> None:
    assert cluster_from_environment({}) is None
    assert cluster_from_environment({"TF_CONFIG": " "}) is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "TF_CONFIG: not JSON"),
        ('{"cluster": {"ps": ["a:1"]}, "task": {}}', "cluster.ps: MultiWorkerMirroredStrategy"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}', "index 1"),
        ('{"cluster": {"worker": []}, "task": {"type": "worker"}}', "no chief or worker"),
    ],
)
def test_bad_tf_config(raw: str, message: str) -> None:
    with pytest.raises(StepError, match=message.replace(".", r"\.")):
        cluster_from_environment({"TF_CONFIG": raw})


def test_generated_tf_config_matches_the_parser() -> None:
    ports = free_ports(2)
    assert len(set(ports)) == 2
    addresses = [f"127.0.0.1:{p}" for p in ports]
    parsed = cluster_from_environment({"TF_CONFIG": tf_config(addresses, 1)})
    assert parsed == ClusterSpec(tuple(addresses), 1)


def test_two_workers_train_a_model_that_serves(data: Path, tmp_path: Path) -> None:
    from mlp_serve.model import load_version

    output = tmp_path / "model"
    cluster = LocalCluster(2, train_args(data, output, EPOCHS, EPOCHS), tmp_path / "cluster")
    summary = cluster.run(max_restarts=0, timeout=600)
    assert summary["succeeded"], _logs(tmp_path / "cluster")
    assert [a["exit_codes"] for a in summary["attempts"]] == [[0, 0]]

    metrics = read_json(output / "metrics.json")
    distribution = metrics["distribution"]
    rows = metrics["train_examples"]
    assert distribution["workers"] == 2
    assert distribution["global_batch_size"] == 2 * distribution["per_worker_batch_size"] == 32
    assert distribution["steps_per_epoch"] == rows // 32
    assert distribution["initial_epoch"] == 0
    assert distribution["steps_run"] == metrics["epochs_run"] * distribution["steps_per_epoch"]
    # Only the chief wrote a model directory; the backup was deleted on completion.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster", "model"]
    # Both replicas ended with the same weights: the other worker printed the same objective.
    for index in (0, 1):
        log = (tmp_path / "cluster" / "attempt-1" / f"worker-{index}.log").read_text()
        assert f"val_accuracy={metrics['val_accuracy']:.6f}" in log, log[-2000:]

    # The chief's model loads and serves (the model server's loader, through a registry).
    entry = ModelRegistry(tmp_path / "registry").register("wine", output, {})
    served = load_version(entry)
    val = pd.read_parquet(data / "val.parquet")
    x = val[list(served.features)].to_numpy("float32")
    accuracy = float(np.mean(served.predict(x).argmax(axis=1) == val["label"].to_numpy()))
    assert accuracy == pytest.approx(metrics["val_accuracy"], abs=1e-6)

    params = HyperParameters(epochs=EPOCHS, patience=EPOCHS, seed=7)
    single = train(data, tmp_path / "single", params)
    assert abs(metrics["val_accuracy"] - single["val_accuracy"]) <= ACCURACY_TOLERANCE, (
        metrics["val_accuracy"],
        single["val_accuracy"],
    )
    assert metrics["val_accuracy"] > 0.85


def test_same_seed_and_worker_count_give_the_same_weights(data: Path, tmp_path: Path) -> None:
    import keras

    weights = []
    for run in ("first", "second"):
        output = tmp_path / run / "model"
        cluster = LocalCluster(2, train_args(data, output, 3, 3), tmp_path / run / "cluster")
        assert cluster.run(max_restarts=0, timeout=600)["succeeded"], _logs(tmp_path / run)
        weights.append(keras.saving.load_model(output / "model.keras").get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))


def test_killed_worker_resumes_from_backup_on_the_data_the_run_pinned(
    data: Path, tmp_path: Path
) -> None:
    """The TrainJob's way of naming data (the registry's latest version, pinned per run): a
    version registered while the run is down does not reach the restarted workers."""
    epochs = 10
    output = tmp_path / "model"
    backup = tmp_path / "model.backup"
    registry = tmp_path / "registry"
    newer = preprocessed(tmp_path / "newer", rows=150)
    assert register(registry, data, tmp_path / "v1") == 1
    argv = [f"--data-from-registry={registry}", "--model=wine", "--version=latest"]
    argv += ["--data-pin", str(tmp_path / "run" / "data.json"), "--output", str(output)]
    argv += ["--epochs", str(epochs), "--patience", str(epochs), "--seed", "7"]
    cluster = LocalCluster(2, argv, tmp_path / "cluster")
    killed: list[int] = []

    def kill_worker_after_first_backup(cluster: LocalCluster) -> None:
        # The chief's BackupAndRestore writes backup/chief/checkpoint at the end of an epoch.
        first = len(cluster.attempts) == 1
        if first and not killed and (backup / "chief" / "checkpoint").is_file():
            cluster.kill(1)
            killed.append(1)
            # The pipeline registers a version on other data before the set restarts.
            assert register(registry, newer, tmp_path / "v2") == 2

    summary = cluster.run(max_restarts=1, timeout=900, monitor=kill_worker_after_first_backup)
    assert killed, "training finished before the first backup"
    attempts = summary["attempts"]
    assert len(attempts) == 2, _logs(tmp_path / "cluster")
    assert attempts[0]["exit_codes"][1] == -9  # SIGKILL
    assert summary["succeeded"], _logs(tmp_path / "cluster")

    distribution = read_json(output / "metrics.json")["distribution"]
    per_epoch = distribution["steps_per_epoch"]
    # The restarted workers resumed at a backed-up epoch instead of epoch 0 ...
    assert 1 <= distribution["initial_epoch"] < epochs
    assert distribution["steps_run"] == (epochs - distribution["initial_epoch"]) * per_epoch
    # ... so they ran fewer steps than a restart from scratch (epochs * steps per epoch) would.
    assert distribution["steps_run"] < epochs * per_epoch
    assert not backup.exists() or not any(backup.iterdir())
    # ... on the data the run started on (version 1's), not the version registered meanwhile.
    assert read_json(output / "data.json")["uri"] == str(data)
    assert read_json(tmp_path / "run" / "data.json")["version"] == 1
    assert read_json(output / "metrics.json")["train_examples"] == len(
        pd.read_parquet(data / "train.parquet")
    )


def preprocessed(folder: Path, rows: int) -> Path:
    frame = load_sklearn("wine")[0].head(rows)
    write_dataset(folder / "ds", frame, name="wine", target="target", source="t")
    assert preprocess(["--dataset", str(folder / "ds"), "--output", str(folder / "prep")]) == 0
    return folder / "prep"


def register(root: Path, prep: Path, folder: Path) -> int:
    """A registry version whose model directory records ``prep`` as its data (data.json)."""
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"not a real model: nothing here loads it")
    write_json_atomic(folder / "data.json", data_source.describe(prep, str(prep)))
    return ModelRegistry(root).register("wine", folder, {}).version


def _logs(root: Path) -> str:
    return "\n".join(f"== {p}\n{p.read_text()[-3000:]}" for p in sorted(root.rglob("*.log")))
