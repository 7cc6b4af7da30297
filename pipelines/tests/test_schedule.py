"""`mlp-pipeline submit` and `mlp-pipeline schedule`, run as the generated Jobs run them: the
arguments come from the rendered manifests (the one source of the pipeline and version names),
and the real kfp.Client talks to mlp_common.kfp_test_server, a local stand-in for the KFP
v2beta1 REST API (no real KFP API server can run here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlp_common.kfp_runs import TOKEN_PATH_ENV
from mlp_common.kfp_test_server import KfpApi, kfp_api
from mlp_common.step import StepError
from mlp_pipeline.cli import main
from mlp_pipeline.schedule import parse_params

ROOT = Path(__file__).resolve().parents[2]


def rendered_job(component: str, environment: str = "prod") -> dict[str, Any]:
    """The Job `platformgen render` wrote for `component` in `environment`."""
    (path,) = (ROOT / "overlays" / environment / component / "resources").glob("*.job.yaml")
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")))


def rendered_version(environment: str = "prod") -> str:
    folder = ROOT / "overlays" / environment / "mlp-training" / "resources"
    (path,) = folder.glob("*.pipeline-version.yaml")
    return str(yaml.safe_load(path.read_text(encoding="utf-8"))["metadata"]["name"])


def job_argv(job: dict[str, Any], host: str) -> list[str]:
    """The container's arguments, pointed at `host` (the only change)."""
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return [f"--host={host}" if a.startswith("--host=") else a for a in container["args"]]


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KfpApi]:
    token = tmp_path / "token"
    token.write_text("sa-token", encoding="utf-8")
    monkeypatch.setenv(TOKEN_PATH_ENV, str(token))
    monkeypatch.setenv("HOME", str(tmp_path))
    with kfp_api() as server:
        server.add_pipeline("mlp-training", [rendered_version()], namespace="ml-pipelines")
        yield server


def test_params_are_typed_and_checked() -> None:
    assert parse_params(["epochs=5", "min_effect=0.01", "source=s3://b/wine.csv"]) == {
        "epochs": 5,
        "min_effect": 0.01,
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


def test_rendered_schedule_job_upserts_one_recurring_run(api: KfpApi) -> None:
    argv = job_argv(rendered_job("retrain"), api.url)
    assert main(argv) == 0
    (recurring,) = api.recurring_runs.values()
    assert recurring["display_name"] == f"retrain/{rendered_version()}"
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 1"
    assert recurring["max_concurrency"] == "1" and recurring["no_catchup"] is True
    assert recurring["mode"] == "ENABLE"
    assert main(argv) == 0  # a second sync of the same Job: nothing new
    assert len(api.recurring_runs) == 1 and len(api.calls("POST", "/recurringruns")) == 1
    assert {r.authorization for r in api.requests} == {"Bearer sa-token"}


def test_dev_suspends_by_disabling_the_recurring_run(api: KfpApi) -> None:
    dev = job_argv(rendered_job("retrain", "dev"), api.url)
    assert "--disabled" in dev
    version = next(a.partition("=")[2] for a in dev if a.startswith("--pipeline-version="))
    pipeline_id = next(iter(api.pipelines))
    if version != rendered_version():
        api.add_version(pipeline_id, version)
    assert main(dev) == 0
    (recurring,) = api.recurring_runs.values()
    assert recurring["mode"] == "DISABLE"


def test_rendered_initial_training_job_submits_one_run(api: KfpApi) -> None:
    argv = [a for a in job_argv(rendered_job("initial-training"), api.url) if a != "--wait"]
    assert main(argv) == 0
    (run,) = api.runs.values()
    version_id = next(iter(api.versions))
    assert run["pipeline_version_reference"]["pipeline_version_id"] == version_id
    assert not api.recurring_runs


def test_version_not_deployed_is_a_clear_error(
    api: KfpApi, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = job_argv(rendered_job("retrain"), api.url)
    argv = [
        "--pipeline-version=mlp-training-0000000000" if a.startswith("--pipeline-version=") else a
        for a in argv
        if not a.startswith("--wait-for-version")
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "version 'mlp-training-0000000000' of pipeline 'mlp-training' not found" in err
    assert "Traceback" not in err and not api.recurring_runs


def test_dry_run_contacts_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["schedule", "--host=http://127.0.0.1:9", "--pipeline=p", "--pipeline-version=v"]
    assert main([*argv, "--schedule=0 3 * * 1", "--name=retrain", "--dry-run"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert described["pipeline_version"] == "v" and described["schedule"] == "0 3 * * 1"


def test_unreachable_api_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(TOKEN_PATH_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    argv = ["submit", "--host=http://127.0.0.1:9", "--pipeline=p", "--pipeline-version=v"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "at http://127.0.0.1:9 failed" in err and "Connection refused" in err
    assert "Traceback" not in err
