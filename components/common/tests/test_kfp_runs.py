"""kfp_runs against the real kfp.Client, talking to a local stand-in of the KFP v2beta1 REST API
(mlp_common.kfp_test_server: there is no real KFP API server here). The requests are the SDK's
own; the stand-in only stores and lists what it is sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlp_common import kfp_runs
from mlp_common.kfp_test_server import KfpApi, kfp_api
from mlp_common.step import StepError

NAMESPACE = "ml-pipelines"
V1, V2 = "mlp-training-1111111111", "mlp-training-2222222222"


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KfpApi]:
    token = tmp_path / "token"
    token.write_text("projected-sa-token\n", encoding="utf-8")
    monkeypatch.setenv(kfp_runs.TOKEN_PATH_ENV, str(token))
    monkeypatch.setenv("HOME", str(tmp_path))  # kfp.Client reads ~/.config/kfp/context.json
    with kfp_api() as server:
        server.add_pipeline("mlp-training", [V1], namespace=NAMESPACE)
        yield server


def schedule(version: str, api: KfpApi, cron: str = "0 3 * * 1") -> kfp_runs.UpsertResult:
    client = kfp_runs.connect(api.url, NAMESPACE)
    deployed = kfp_runs.find_version(client, "mlp-training", version, NAMESPACE)
    return kfp_runs.upsert_recurring_run(
        client,
        deployed,
        kfp_runs.Schedule("retrain", cron),
        experiment="mlp-training",
        namespace=NAMESPACE,
    )


def test_first_apply_creates_one_recurring_run_of_the_version(api: KfpApi) -> None:
    result = schedule(V1, api)
    assert result.created and not result.removed
    (recurring,) = api.recurring_runs.values()
    version_id = next(v for v, body in api.versions.items() if body["name"] == V1)
    assert recurring["pipeline_version_reference"]["pipeline_version_id"] == version_id
    assert recurring["display_name"] == f"retrain/{V1}"
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 1"
    assert recurring["max_concurrency"] == "1" and recurring["no_catchup"] is True
    assert recurring["mode"] == "ENABLE"


def test_reapply_is_a_no_op(api: KfpApi) -> None:
    first = schedule(V1, api)
    posts = len(api.calls("POST", "/recurringruns"))
    second = schedule(V1, api)
    assert not second.created and not second.removed
    assert second.recurring_run_id == first.recurring_run_id
    assert len(api.calls("POST", "/recurringruns")) == posts
    assert not api.calls("DELETE", "/recurringruns")


def test_new_version_replaces_the_old_one_and_leaves_others_alone(api: KfpApi) -> None:
    first = schedule(V1, api)
    client = kfp_runs.connect(api.url, NAMESPACE)
    deployed = kfp_runs.find_version(client, "mlp-training", V1, NAMESPACE)
    experiment = kfp_runs.experiment_id(client, "mlp-training", NAMESPACE)
    by_hand = client.create_recurring_run(
        experiment,
        "retrain/by-hand",
        cron_expression="0 0 1 * * *",
        pipeline_id=deployed.pipeline_id,
        version_id=deployed.version_id,
    )
    api.add_version(deployed.pipeline_id, V2)
    second = schedule(V2, api)
    assert second.created and second.removed == (f"retrain/{V1}",)
    assert first.recurring_run_id not in api.recurring_runs
    disabled = api.calls("POST", f"/recurringruns/{first.recurring_run_id}:disable")
    deleted = api.calls("DELETE", f"/recurringruns/{first.recurring_run_id}")
    assert disabled and deleted
    names = sorted(r["display_name"] for r in api.recurring_runs.values())
    assert names == ["retrain/by-hand", f"retrain/{V2}"]
    assert by_hand.recurring_run_id in api.recurring_runs


def test_a_new_cron_replaces_the_schedule(api: KfpApi) -> None:
    first = schedule(V1, api)
    second = schedule(V1, api, cron="30 4 * * *")
    assert second.created and second.removed == (f"retrain/{V1}",)
    (recurring,) = api.recurring_runs.values()
    assert recurring["recurring_run_id"] != first.recurring_run_id
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 30 4 * * *"


def test_every_request_carries_the_projected_token(api: KfpApi) -> None:
    schedule(V1, api)
    assert api.requests
    assert {r.authorization for r in api.requests} == {"Bearer projected-sa-token"}


def test_missing_version_names_it(api: KfpApi) -> None:
    with pytest.raises(StepError) as error:
        schedule("mlp-training-9999999999", api)
    message = str(error.value)
    assert "version 'mlp-training-9999999999' of pipeline 'mlp-training' not found" in message
    assert NAMESPACE in message and not api.recurring_runs


def test_missing_pipeline_names_it(api: KfpApi) -> None:
    client = kfp_runs.connect(api.url, NAMESPACE)
    with pytest.raises(StepError, match="pipeline 'other' not found"):
        kfp_runs.find_version(client, "other", V1, NAMESPACE)


def test_submit_run_runs_the_deployed_version(api: KfpApi) -> None:
    client = kfp_runs.connect(api.url, NAMESPACE)
    deployed = kfp_runs.find_version(client, "mlp-training", V1, NAMESPACE)
    run_id = kfp_runs.submit_run(
        client,
        deployed,
        run_name="initial",
        experiment="mlp-training",
        namespace=NAMESPACE,
        arguments={"epochs": 3},
    )
    run = api.runs[run_id]
    assert run["pipeline_version_reference"]["pipeline_version_id"] == deployed.version_id
    assert run["runtime_config"]["parameters"] == {"epochs": 3}
    assert run["display_name"] == "initial"


def test_token_variable_pointing_nowhere_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(kfp_runs.TOKEN_PATH_ENV, str(tmp_path / "absent"))
    with pytest.raises(StepError, match="no token there"):
        kfp_runs.connect("http://127.0.0.1:9")


def test_unreachable_api_is_one_readable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(kfp_runs.TOKEN_PATH_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    client = kfp_runs.connect("http://127.0.0.1:9", NAMESPACE)
    with pytest.raises(
        StepError, match=r"looking up pipeline 'mlp-training' at http://127.0.0.1:9"
    ):
        kfp_runs.find_version(client, "mlp-training", V1, NAMESPACE)


def test_cron_gets_kfp_seconds_field() -> None:
    assert kfp_runs.kfp_cron("0 3 * * 1") == "0 0 3 * * 1"
    with pytest.raises(StepError, match="five cron fields"):
        kfp_runs.kfp_cron("0 0 3 * * 1")
