"""The local run's summary as data (``mlp-pipeline run --summary-json``; ``make demo`` reads it),
on a made-up run: no pipeline, no TensorFlow."""

import json
from pathlib import Path

from mlp_common.registry import ModelRegistry
from mlp_pipeline.local import RunSummary


def test_summary_json_names_steps_version_metrics_and_gate(tmp_path: Path) -> None:
    source = tmp_path / "model"
    source.mkdir()
    (source / "model.keras").write_bytes(b"keras")
    gate = {"decision": "promote", "verdict": "promote (first model)", "reason": "no production"}
    metadata = {
        "metrics": {"test_accuracy": 0.98},
        "gate": gate,
        "dataset": {"snapshot_uri": "file:///snapshots/digits/abc"},
        "pipeline_run_id": "run-1",
    }
    version = ModelRegistry(tmp_path / "registry").register("digits", source, metadata)
    attempts = [
        {"step": "ingest", "status": "error", "seconds": 0.5, "message": "flaky"},
        {"step": "ingest", "status": "ok", "seconds": 1.25, "message": ""},
        {"step": "registry", "status": "ok", "seconds": 0.25, "message": ""},
    ]
    summary = RunSummary(tmp_path / "run", True, attempts, version=version, production=1)
    document = json.loads(json.dumps(summary.to_json()))
    assert document["steps"] == [
        {"step": "ingest", "status": "ok", "seconds": 1.75, "attempts": 2, "message": ""},
        {"step": "promote", "status": "ok", "seconds": 0.25, "attempts": 1, "message": ""},
    ]
    assert document["version"]["version"] == 1 and document["version"]["gate"] == gate
    assert document["version"]["metrics"] == {"test_accuracy": 0.98}
    assert document["version"]["snapshot_uri"] == "file:///snapshots/digits/abc"
    assert (document["succeeded"], document["reused"], document["production"]) == (True, False, 1)
