"""A TrainJob run trains on one dataset from its first worker's start to its last restart
(mlp_train.run_data): the data is pinned once under the run's work directory, which is what the
TrainingRuntime's entrypoint (mlp_train.jobset) passes every pod start of the run.

Each "pod start" here is what the entrypoint does in a pod: the run options from MLP_WORK_DIR and
MLP_RUN_ID added to the TrainJob's train options, then the train step's input resolution."""

from __future__ import annotations

import argparse
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from mlp_common.dataset import write_dataset
from mlp_common.files import read_json, write_json_atomic
from mlp_common.registry import ModelRegistry
from mlp_common.step import DataError, StepError
from mlp_ingest.core import load_sklearn
from mlp_preprocess.cli import main as preprocess
from mlp_train import data_source, run_data
from mlp_train.cli import add_arguments, input_data
from mlp_train.jobset import run_options


def preprocessed(folder: Path, rows: int | None = None) -> Path:
    frame = load_sklearn("wine")[0]
    frame = frame if rows is None else frame.head(rows)
    write_dataset(folder / "ds", frame, name="wine", target="target", source="t")
    assert preprocess(["--dataset", str(folder / "ds"), "--output", str(folder / "prep")]) == 0
    return folder / "prep"


def register(root: Path, prep: Path, folder: Path) -> int:
    """A registry version whose model directory records ``prep`` as its data (data.json)."""
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"not a real model: nothing here loads it")
    write_json_atomic(folder / "data.json", data_source.describe(prep, str(prep)))
    return ModelRegistry(root).register("wine", folder, {}).version


@pytest.fixture
def registry(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(registry root whose latest version records the first data, the first, the second data)"""
    first = preprocessed(tmp_path / "first")
    second = preprocessed(tmp_path / "second", rows=150)
    root = tmp_path / "registry"
    assert register(root, first, tmp_path / "v1") == 1
    return root, first, second


def pod_start(work: Path, run_id: str, train_options: list[str]) -> dict[str, Any]:
    """The data.json of the data one pod start of TrainJob run ``run_id`` trains on."""
    environ = {"MLP_WORK_DIR": str(work), "MLP_RUN_ID": run_id}
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([*train_options, *run_options(environ, train_options)])
    return input_data(args)[1]


def latest(root: Path) -> list[str]:
    """The TrainJob's options in platform.yaml: the registry's latest version's data."""
    return [f"--data-from-registry={root}", "--model=wine", "--version=latest"]


def test_a_version_registered_mid_run_does_not_reach_the_run(
    registry: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    root, first, second = registry
    work = tmp_path / "work"
    worker_0 = pod_start(work, "uid-1", latest(root))
    assert worker_0["uri"] == str(first)
    # The pipeline registers version 2 (other data) before worker 1 starts ...
    assert register(root, second, tmp_path / "v2") == 2
    worker_1 = pod_start(work, "uid-1", latest(root))
    # ... and before JobSet restarts the run (both workers again, resuming the checkpoint).
    restart = [pod_start(work, "uid-1", latest(root)) for _ in range(2)]
    assert worker_1 == worker_0 and restart == [worker_0, worker_0], "the run's data moved"
    pin = read_json(work / "uid-1" / run_data.PIN_FILE)
    assert (pin["version"], pin["uri"], pin["files"]) == (1, str(first), worker_0["files"])
    # A new TrainJob (a new JobSet UID) trains on the newest data.
    assert pod_start(work, "uid-2", latest(root))["uri"] == str(second)


@pytest.mark.parametrize("source", ["registry", "explicit path"])
def test_a_resume_refuses_data_that_changed_under_it(
    registry: tuple[Path, Path, Path], tmp_path: Path, source: str
) -> None:
    root, first, _ = registry
    options = latest(root) if source == "registry" else [f"--data={first}"]
    work = tmp_path / "work"
    started = pod_start(work, "uid-1", options)
    assert started["uri"] == str(first)
    shutil.copy(first / "val.parquet", first / "train.parquet")  # rewritten under the run
    with pytest.raises(DataError) as refused:
        pod_start(work, "uid-1", options)
    message = str(refused.value)
    assert "the data this run pinned changed under it" in message, message
    assert f"{first}/train.parquet has sha256:" in message
    assert f"the run pinned {started['files']['train.parquet']}" in message
    assert "cannot resume on other data" in message


def test_an_explicit_preprocess_output_is_the_one_pinned(
    registry: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, first, _ = registry
    options = [f"--data={first}", "--data-uri=minio://mlpipeline/v2/artifacts/run-1/data"]
    record = pod_start(tmp_path / "work", "uid-1", options)
    assert record == {
        "uri": "minio://mlpipeline/v2/artifacts/run-1/data",
        "files": data_source.describe(first, "")["files"],
    }
    pin = read_json(tmp_path / "work" / "uid-1" / run_data.PIN_FILE)
    assert pin["location"] == str(first) and pin["version"] is None


def test_options_for_other_data_than_the_pin_are_refused(
    registry: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    root, first, _ = registry
    pod_start(tmp_path / "work", "uid-1", latest(root))
    with pytest.raises(StepError, match=r"pinned for .*'version': 'latest'.* another run's"):
        pod_start(tmp_path / "work", "uid-1", [f"--data={first}"])


def test_a_worker_that_loses_the_race_trains_on_the_winners_pin(
    registry: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _, first, second = registry
    pin = tmp_path / "run" / run_data.PIN_FILE
    request = {"data": "x"}

    def winner(prep: Path) -> dict[str, Any]:
        files = data_source.describe(prep, str(prep))["files"]
        return {"uri": str(prep), "files": files, "location": str(prep), "version": None}

    def resolve_while_the_other_worker_pins() -> tuple[Path, dict[str, Any]]:
        assert run_data.create(pin, {**winner(first), "request": request})
        return second, winner(second)

    local, record = run_data.pinned(pin, request, resolve_while_the_other_worker_pins)
    assert local == first and record == run_data.record(winner(first))


def test_exactly_one_of_many_concurrent_creators_makes_the_pin(tmp_path: Path) -> None:
    pin = tmp_path / "run" / run_data.PIN_FILE
    start = threading.Barrier(8)
    created: list[bool] = []

    def creator(index: int) -> None:
        start.wait()
        created.append(run_data.create(pin, {"worker": index}))

    threads = [threading.Thread(target=creator, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(created) == [False] * 7 + [True]
    assert read_json(pin)["worker"] in range(8)
    assert sorted(p.name for p in pin.parent.iterdir()) == [run_data.PIN_FILE]  # no temp left
