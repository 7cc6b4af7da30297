"""The whole pipeline, run locally with kfp.local (real steps, real TensorFlow, small epochs)."""

from pathlib import Path

import pandas as pd
import pytest
from mlp_common.faults import FAULT_ENV
from mlp_common.registry import ModelRegistry
from mlp_ingest.core import load_sklearn
from mlp_pipeline.local import RunSummary, run_local

FAST = {"epochs": 8, "learning_rate": 0.02, "min_score": 0.5}  # small and quick


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunSummary, RunSummary]:
    """Run 1 with one injected transient ingest failure, then run 2, into one registry."""
    root = tmp_path_factory.mktemp("pipeline")
    fault = {FAULT_ENV: f"ingest:1:{root / 'faults'}"}
    first = run_local(root / "run-1", root / "registry", FAST, extra_env=fault)
    second = run_local(root / "run-2", root / "registry", FAST)
    return root / "registry", first, second


def test_first_run_registers_and_promotes_version_1(
    two_runs: tuple[Path, RunSummary, RunSummary],
) -> None:
    registry, first, _ = two_runs
    assert first.succeeded, first.render()
    assert first.version is not None and first.version.version == 1
    assert first.version.parent is None
    assert first.version.metadata["gate"]["decision"] == "promote"
    assert ModelRegistry(registry).promotions("wine")[0]["to"] == 1
    steps = [a["step"] for a in first.attempts if a["status"] == "ok"]
    assert steps == [
        "ingest",
        "validate",
        "preprocess",
        "train",
        "evaluate",
        "register",
        "registry",
    ]


def test_transient_failure_is_retried(two_runs: tuple[Path, RunSummary, RunSummary]) -> None:
    _, first, second = two_runs
    ingest = first.step_attempts("ingest")
    assert [a["status"] for a in ingest] == ["failed", "ok"]
    assert "injected transient failure (attempt 1 of 1)" in ingest[0]["message"]
    assert "(1 retries)" in first.render()
    assert [a["status"] for a in second.step_attempts("ingest")] == ["ok"]


def test_second_run_is_version_2_with_parent_1_and_gate(
    two_runs: tuple[Path, RunSummary, RunSummary],
) -> None:
    registry, first, second = two_runs
    assert second.succeeded, second.render()
    assert second.version is not None and second.version.version == 2
    assert second.version.parent == 1
    gate = second.version.metadata["gate"]
    assert gate["decision"] in ("promote", "candidate") and gate["production"] is not None
    meta = second.version.metadata
    assert meta["dataset"]["content_hash"] == first.version.metadata["dataset"]["content_hash"]
    assert (
        meta["pipeline_run_id"]
        and meta["pipeline_run_id"] != first.version.metadata["pipeline_run_id"]
    )
    text = second.render()
    for expected in ("steps:", "train", "test_accuracy", "gate: ", "registered: wine version 2"):
        assert expected in text
    assert ModelRegistry(registry).list_versions("wine") == [1, 2]


def test_corrupted_data_stops_the_run_at_validate(tmp_path: Path) -> None:
    frame = load_sklearn("wine")[0]
    frame.loc[:36, "alcohol"] = None
    frame.to_csv(tmp_path / "corrupt.csv", index=False)
    arguments = {"source": str(tmp_path / "corrupt.csv"), "target": "target", **FAST}
    summary = run_local(tmp_path / "run", tmp_path / "registry", arguments)
    assert not summary.succeeded
    validate = summary.step_attempts("validate")
    assert [a["status"] for a in validate] == ["failed"]
    assert "column 'alcohol': 37 nulls, rule allows 0" in validate[0]["message"]
    assert summary.step_attempts("train") == [] and summary.version is None
    assert "column 'alcohol': 37 nulls, rule allows 0" in summary.render()
    assert ModelRegistry(tmp_path / "registry").list_versions("wine") == []
    assert isinstance(pd.read_csv(tmp_path / "corrupt.csv"), pd.DataFrame)
