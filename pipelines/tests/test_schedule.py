import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from mlp_common.step import StepError
from mlp_pipeline.cli import main
from mlp_pipeline.compile import COMPILED_DIR, IR_FILE
from mlp_pipeline.schedule import build_submission, parse_params, submit

# These tests cover argument handling and the package that would be submitted. No KFP API
# server can run here, so an actual submission is only exercised against a closed local port.


def test_params_are_typed_and_checked() -> None:
    assert parse_params(["epochs=5", "margin=0.01", "source=s3://b/wine.csv"]) == {
        "epochs": 5,
        "margin": 0.01,
        "source": "s3://b/wine.csv",
    }
    with pytest.raises(StepError, match="--param epoch: unknown pipeline parameter"):
        parse_params(["epoch=5"])
    with pytest.raises(StepError, match="--param epochs=five: not a valid int"):
        parse_params(["epochs=five"])
    with pytest.raises(StepError, match="expected NAME=VALUE"):
        parse_params(["epochs"])
    assert parse_params(["force_retrain=true"]) == {"force_retrain": True}
    assert parse_params(["force_retrain=0"]) == {"force_retrain": False}
    with pytest.raises(StepError, match="--param force_retrain=yes: not a valid bool"):
        parse_params(["force_retrain=yes"])


def test_submission_package_is_the_compiled_pipeline(tmp_path: Path) -> None:
    now = dt.datetime(2026, 1, 5, 3, 0, tzinfo=dt.UTC)
    submission = build_submission(
        "http://ml-pipeline.kubeflow:8888", tmp_path, params=["epochs=3"], now=now,
        pipeline_root="s3://mlp-artifacts/pipelines",
    )  # fmt: skip
    assert submission.run_name == "mlp-training-scheduled-20260105-030000"
    assert submission.package_path.read_text() == (COMPILED_DIR / IR_FILE).read_text()
    spec = next(yaml.safe_load_all(submission.package_path.read_text()))
    assert spec["pipelineInfo"]["name"] == "mlp-training"
    with pytest.raises(StepError, match="must be an http:// or https:// URL"):
        build_submission("ml-pipeline:8888", tmp_path)
    with pytest.raises(StepError, match="expected an s3://, minio:// or gs:// URI"):
        build_submission("http://x", tmp_path, pipeline_root="/data")


def test_cli_dry_run_prints_the_submission(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["submit", "--host", "http://127.0.0.1:9", "--dry-run", "--param", "epochs=2"]
    assert main([*argv, "--package-dir", str(tmp_path)]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["arguments"] == {"epochs": 2}
    assert described["package_path"] == str(tmp_path / IR_FILE)


def test_unreachable_api_fails_cleanly(tmp_path: Path) -> None:
    submission = build_submission("http://127.0.0.1:9", tmp_path)
    with pytest.raises(StepError, match=r"submit to http://127.0.0.1:9 failed"):
        submit(submission)
