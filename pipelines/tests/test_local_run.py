"""The whole pipeline, run locally with kfp.local (real steps, real TensorFlow, small epochs).

Four runs into one registry, in order:
1. first run (with one injected transient ingest failure): trains, version 1 promoted;
2. same data, params and code: trains nothing, reuses version 1 and says so;
3. the same inputs with ``force_retrain``: trains again in new processes; the result is identical,
   so the gate's decision is exactly "stays candidate (tie)";
4. changed data: a new snapshot, so it trains, and the gate decides with a paired statistic.
"""

from pathlib import Path

import pandas as pd
import pytest
from mlp_common.dataset import verify_snapshot
from mlp_common.faults import FAULT_ENV
from mlp_common.files import read_json
from mlp_common.registry import ModelRegistry, ModelVersion
from mlp_ingest.core import load_sklearn
from mlp_pipeline.local import RunSummary, run_local
from mlp_pipeline.tune import main as tune_main

FAST = {"epochs": 12, "min_score": 0.5}  # small, and still at least as good as the baseline
TRAINED = ["ingest", "snapshot", "validate", "plan", "preprocess", "train", "evaluate", "register"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunSummary]]:
    root = tmp_path_factory.mktemp("pipeline")
    registry = root / "registry"
    fault = {FAULT_ENV: f"ingest:1:{root / 'faults'}"}
    changed = load_sklearn("digits")[0].iloc[:-97]
    changed.to_csv(root / "changed.csv", index=False)
    summaries = [
        run_local(root / "run-1", registry, FAST, extra_env=fault),
        run_local(root / "run-2", registry, FAST),
        run_local(root / "run-3", registry, {**FAST, "force_retrain": True}),
        run_local(
            root / "run-4",
            registry,
            {**FAST, "source": str(root / "changed.csv"), "target": "target"},
        ),
    ]
    return registry, summaries


def ok_steps(summary: RunSummary) -> list[str]:
    return [a["step"] for a in summary.attempts if a["status"] == "ok"]


def test_first_run_registers_and_promotes_version_1(runs: tuple[Path, list[RunSummary]]) -> None:
    registry, (first, *_) = runs
    assert first.succeeded, first.render()
    assert first.version is not None and first.version.version == 1
    assert first.version.parent is None
    gate = first.version.metadata["gate"]
    assert (gate["decision"], gate["verdict"]) == ("promote", "promote (first model)")
    assert gate["candidate"] >= gate["baseline"]  # TF matches the scikit-learn baseline
    assert ModelRegistry(registry).promotions("digits")[0]["to"] == 1
    assert ok_steps(first) == [*TRAINED, "registry"]
    snapshot = first.version.metadata["dataset"]["snapshot_uri"]
    assert (
        verify_snapshot(snapshot).content_hash == first.version.metadata["dataset"]["content_hash"]
    )


def test_transient_failure_is_retried(runs: tuple[Path, list[RunSummary]]) -> None:
    _, (first, second, *_) = runs
    ingest = first.step_attempts("ingest")
    assert [a["status"] for a in ingest] == ["failed", "ok"]
    assert "injected transient failure (attempt 1 of 1)" in ingest[0]["message"]
    assert "(1 retries)" in first.render()
    assert [a["status"] for a in second.step_attempts("ingest")] == ["ok"]


def test_unchanged_data_trains_nothing_and_reuses_version_1(
    runs: tuple[Path, list[RunSummary]],
) -> None:
    registry, (first, second, *_) = runs
    assert second.succeeded, second.render()
    assert ok_steps(second) == ["ingest", "snapshot", "validate", "plan", "reuse"]
    assert second.reused and second.version is not None and second.version.version == 1
    text = second.render()
    assert "reused: digits version 1" in text and "nothing was trained" in text
    assert "train " not in text
    assert first.version is not None
    assert first.version.metadata["training_key"] == second.version.metadata["training_key"]


def test_forced_retrain_of_the_same_inputs_is_an_exact_tie(
    runs: tuple[Path, list[RunSummary]],
) -> None:
    registry, (first, _, third, _) = runs
    assert third.succeeded, third.render()
    assert ok_steps(third) == TRAINED  # trained, registered, not promoted
    assert third.version is not None and third.version.version == 2
    assert third.version.parent == 1
    gate = third.version.metadata["gate"]
    assert gate["verdict"] == "stays candidate (tie)"
    assert gate["decision"] == "candidate"
    assert (gate["statistic"], gate["interval"], gate["production_version"]) == (0, [0, 0], 1)
    assert first.version is not None
    # separate processes, same data, params and seed: identical metrics
    timing = {"examples_per_second"}
    assert {k: v for k, v in third.version.metadata["metrics"].items() if k not in timing} == {
        k: v for k, v in first.version.metadata["metrics"].items() if k not in timing
    }
    assert third.production == 1
    run_ids = {first.version.metadata["pipeline_run_id"], third.version.metadata["pipeline_run_id"]}
    assert len(run_ids) == 2


def test_changed_data_trains_and_the_gate_decides_with_a_statistic(
    runs: tuple[Path, list[RunSummary]],
) -> None:
    registry, (first, *_, fourth) = runs
    assert fourth.succeeded, fourth.render()
    assert "train" in ok_steps(fourth) and not fourth.reused
    assert fourth.version is not None and fourth.version.version == 3
    meta = fourth.version.metadata
    assert first.version is not None
    old = first.version.metadata["dataset"]
    assert meta["dataset"]["content_hash"] != old["content_hash"]
    assert meta["dataset"]["snapshot_uri"] != old["snapshot_uri"]
    assert meta["dataset"]["rows"] == 1797 - 97
    gate = meta["gate"]
    assert gate["production_version"] == 1 and gate["examples"] == 325
    assert meta["parent"] == 1  # the production version it was compared with
    assert isinstance(gate["statistic"], float) and len(gate["interval"]) == 2
    assert gate["interval"][0] <= gate["statistic"] <= gate["interval"][1]
    assert gate["test"] == "exact McNemar" and 0 <= gate["p_value"] <= 1

    # No row production v1 trained or validated on is in the rows v3 was gated on.
    def rows(version: ModelVersion, *splits: str) -> set[tuple[float, ...]]:
        written = Path(read_json(version.path / "data.json")["uri"])
        tables = [pd.read_parquet(written / f"{name}.parquet") for name in splits]
        return {tuple(r) for t in tables for r in t.to_numpy().round(9).tolist()}

    assert not rows(first.version, "train", "val") & rows(fourth.version, "test")
    assert gate["verdict"] in (
        "promote",
        "stays candidate (tie)",
        "stays candidate (not significant)",
        "refused (worse than production)",
        "refused (worse than baseline)",
        "refused (test set too small)",
    )
    assert f"gate: {gate['verdict']} ({gate['reason']})" in fourth.render()
    assert ModelRegistry(registry).list_versions("digits") == [1, 2, 3]


def test_tune_trials_read_the_data_the_pipeline_wrote(
    runs: tuple[Path, list[RunSummary]], tmp_path: Path
) -> None:
    """`make tune`'s trials (the Katib Experiment's command, mlp-tune) train on the preprocess
    output of the run that trained the production version, found through the registry."""
    registry, _ = runs
    production = ModelRegistry(registry).production("digits")
    assert production is not None
    record = read_json(production.path / "data.json")
    written = Path(record["uri"])  # the preprocess step's Dataset artifact in its run folder
    assert written.is_relative_to(registry.parent) and "preprocess" in written.parts
    assert read_json(written / "features.json") == read_json(production.path / "features.json")
    argv = ["--registry", str(registry), "--workdir", str(tmp_path), "--trials", "1"]
    assert tune_main([*argv, "--epochs", "1"]) == 0
    trial = read_json(tmp_path / "trial-0" / "data.json")
    assert trial == record  # same URI, and the same sha256 of every file
    (report,) = read_json(tmp_path / "tune.json")["trials"]
    assert f"--data-from-registry={registry.resolve()}" in report["command"]
    assert "--version=production" in report["command"]


def test_corrupted_data_stops_the_run_at_validate(tmp_path: Path) -> None:
    frame = load_sklearn("digits")[0]
    frame.loc[:36, "pixel_3_3"] = None
    frame.to_csv(tmp_path / "corrupt.csv", index=False)
    arguments = {"source": str(tmp_path / "corrupt.csv"), "target": "target", **FAST}
    summary = run_local(tmp_path / "run", tmp_path / "registry", arguments)
    assert not summary.succeeded
    validate = summary.step_attempts("validate")
    assert [a["status"] for a in validate] == ["failed"]
    assert "column 'pixel_3_3': 37 nulls, rule allows 0" in validate[0]["message"]
    assert summary.step_attempts("train") == [] and summary.version is None
    assert summary.step_attempts("plan") == []
    assert "column 'pixel_3_3': 37 nulls, rule allows 0" in summary.render()
    assert ModelRegistry(tmp_path / "registry").list_versions("digits") == []
