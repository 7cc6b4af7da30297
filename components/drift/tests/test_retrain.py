"""Retraining on a drift alert: Alertmanager webhook payloads (version 4) posted to the real
monitor process.

The acceptance test starts a real local pipeline run (`mlp-pipeline run`, kfp.local, real
TensorFlow, one epoch) from one firing FeatureDrift notification and checks the registry got a
version. The KFP submitter is tested against a stub of the KFP API (the three v2beta1 calls it
makes), since no KFP API server runs here."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mlp_common.registry import ModelRegistry
from mlp_drift.retrain import KfpSubmitter, RetrainTrigger

from .test_server import _post, _wait_for, monitor

ROOT = Path(__file__).resolve().parents[3]
PIPELINE = ROOT / ".venv" / "bin" / "mlp-pipeline"


def payload(*alerts: tuple[str, str], **labels: str) -> bytes:
    """An Alertmanager webhook notification (version 4) of (alertname, status) alerts."""
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}/{alertname=~"DriftMonitorFeatureDrift"}:{alertname="x"}',
            "truncatedAlerts": 0,
            "status": "firing" if any(s == "firing" for _, s in alerts) else "resolved",
            "receiver": "ml-serving/drift-monitor/drift-monitor",
            "groupLabels": {"alertname": alerts[0][0]},
            "commonLabels": {},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.monitoring:9093",
            "alerts": [
                {
                    "status": status,
                    "labels": {
                        "alertname": name,
                        "namespace": "ml-serving",
                        "service": "drift-monitor",
                        "feature": "pixel_3_4",
                        **labels,
                    },
                    "annotations": {"summary": "Feature pixel_3_4 has drifted"},
                    "startsAt": "2026-11-29T21:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus/graph",
                    "fingerprint": "c2b1f4a3e5d6a7b8",
                }  # fmt: skip
                for name, status in alerts
            ],
        }
    ).encode()


FIRING = payload(("DriftMonitorFeatureDrift", "firing"))


def test_a_firing_drift_alert_runs_the_local_pipeline(
    cancer_files: dict[str, Path], tmp_path: Path
) -> None:
    """The acceptance test of issue 11 part 6: a webhook payload leads to a pipeline run."""
    registry, summary = tmp_path / "retrained", tmp_path / "summary.json"
    command = (
        f"{PIPELINE} run --registry {registry} --runs {tmp_path / 'runs'} --summary-json {summary}"
    )
    args = [
        "--reference", str(cancer_files["reference"]),
        "--retrain", "local", "--retrain-command", command,
        "--retrain-param", "epochs=1", "--retrain-param", "min_score=0.1",
        "--retrain-cooldown", "3600",
    ]  # fmt: skip
    with monitor(tmp_path, *args) as base:
        status, body = _post(base + "/alerts", FIRING)
        assert status == 202, body
        assert "submitted: local run" in body
        # Alertmanager repeats the group: no second run while the first is in its cooldown.
        status, body = _post(base + "/alerts", FIRING)
        assert (status, body.startswith("ignored: a run was submitted")) == (200, True), body
        document = _wait_for(
            lambda: summary.is_file() and json.loads(summary.read_text()),
            "the pipeline run's summary",
            timeout=600,
        )
        metrics = urllib_get(base + "/metrics")
    assert document["succeeded"], json.dumps(document["steps"], indent=1)
    assert ModelRegistry(registry).list_versions("digits") == [1]
    assert 'mlp_drift_retrain_notifications_total{outcome="submitted"} 1.0' in metrics
    assert 'mlp_drift_retrain_notifications_total{outcome="cooldown"} 1.0' in metrics


def urllib_get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (payload(("DriftMonitorFeatureDrift", "resolved")), 200, "ignored: no firing"),
        (payload(("ModelServerHighLatency", "firing")), 200, "ignored: no firing"),
        (b"{not json", 400, "body is not JSON"),
        (b"[]", 400, "expected an Alertmanager webhook payload"),
        (json.dumps({"version": "3", "alerts": []}).encode(), 400, "payload version '3'"),
        (json.dumps({"version": "4"}).encode(), 400, "payload has no 'alerts' list"),
        (
            json.dumps({"version": "4", "alerts": [{"status": "firing"}]}).encode(),
            400,
            "alerts[0]: expected an object with a 'labels' object",
        ),
        (
            json.dumps({"version": "4", "alerts": [{"status": "x", "labels": {}}]}).encode(),
            400,
            "alerts[0].status: 'x', want firing or resolved",
        ),
    ],
    ids=[
        "resolved",
        "other-alert",
        "not-json",
        "not-object",
        "version-3",
        "no-alerts",
        "no-labels",
        "bad-status",
    ],
)
def test_other_notifications_start_nothing(
    cancer_files: dict[str, Path], tmp_path: Path, body: bytes, status: int, message: str
) -> None:
    marker = tmp_path / "ran"
    command = f"{sys.executable} -c \"open('{marker}', 'w').close()\""
    args = ["--reference", str(cancer_files["reference"]), "--retrain", "local",
            "--retrain-command", command, "--retrain-cooldown", "0"]  # fmt: skip
    with monitor(tmp_path, *args) as base:
        got, text = _post(base + "/alerts", body)
        assert (got, message in text) == (status, True), text
        # The same monitor does submit on a firing drift alert (so the quiet case is real).
        got, text = _post(base + "/alerts", FIRING)
        assert got == 202, text
        _wait_for(marker.is_file, "the command to run")


def test_cooldown_counts_from_the_last_submission() -> None:
    class Count:
        runs = 0

        def submit(self, reason: str) -> str:
            self.runs += 1
            return f"run {self.runs}: {reason}"

        def busy(self) -> bool:
            return False

    now = [1000.0]
    submitter = Count()
    trigger = RetrainTrigger(submitter, cooldown=600, clock=lambda: now[0])
    document = json.loads(FIRING)
    assert trigger.notify(document).outcome == "submitted"
    now[0] += 599
    assert trigger.notify(document).outcome == "cooldown"
    now[0] += 2
    outcome = trigger.notify(document)
    assert (outcome.outcome, submitter.runs) == ("submitted", 2)
    assert "FeatureDrift firing for features pixel_3_4" in outcome.message


class KfpStub:
    """The three KFP API v2beta1 calls the submitter makes, recorded (not a KFP server)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                stub.requests.append(("GET", self.path, dict(self.headers), None))
                if self.path.startswith("/apis/v2beta1/pipelines/names/mlp-training"):
                    self._reply({"pipeline_id": "p-1", "display_name": "mlp-training"})
                else:
                    version = {"pipeline_version_id": "v-7", "name": "mlp-training-0123456789"}
                    self._reply({"pipeline_versions": [version]})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                stub.requests.append(("POST", self.path, dict(self.headers), body))
                self._reply({"run_id": "r-42", "state": "PENDING"})

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def kfp_stub() -> Iterator[KfpStub]:
    stub = KfpStub()
    thread = threading.Thread(target=stub.httpd.serve_forever, daemon=True)
    thread.start()
    yield stub
    stub.httpd.shutdown()
    stub.httpd.server_close()


def test_kfp_run_of_the_deployed_version_with_the_projected_token(
    kfp_stub: KfpStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = tmp_path / "token"
    token.write_text("projected-token\n")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token))
    submitter = KfpSubmitter(
        kfp_stub.url, "mlp-training", "ml-pipelines", {"epochs": "5", "source": "sklearn:digits"}
    )
    described = submitter.submit("DriftMonitorFeatureDrift firing for features f1")
    assert described == "KFP run r-42 of mlp-training version v-7"
    (m1, p1, h1, _), (m2, p2, _, _), (m3, p3, h3, run) = kfp_stub.requests
    assert (m1, p1) == ("GET", "/apis/v2beta1/pipelines/names/mlp-training?namespace=ml-pipelines")
    assert (m2, p2) == (
        "GET", "/apis/v2beta1/pipelines/p-1/versions?page_size=1&sort_by=created_at+desc"
    )  # fmt: skip
    assert (m3, p3) == ("POST", "/apis/v2beta1/runs")
    assert h1["Authorization"] == h3["Authorization"] == "Bearer projected-token"
    assert run["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "v-7"}
    assert run["runtime_config"] == {"parameters": {"epochs": 5, "source": "sklearn:digits"}}
    assert run["display_name"].startswith("mlp-training-drift-")
    assert "f1" in run["description"]


def test_kfp_run_of_the_version_this_environment_deploys(kfp_stub: KfpStub) -> None:
    from mlp_drift.retrain import RetrainError

    deployed = KfpSubmitter(
        kfp_stub.url, "mlp-training", None, {}, version="mlp-training-0123456789"
    )
    assert deployed.submit("drift") == "KFP run r-42 of mlp-training version v-7"
    listing = kfp_stub.requests[1][1]
    assert "filter=" in listing and "mlp-training-0123456789" in listing
    assert "sort_by" not in listing  # never "the newest"
    other = KfpSubmitter(kfp_stub.url, "mlp-training", None, {}, version="mlp-training-9999")
    with pytest.raises(RetrainError, match="0 versions named 'mlp-training-9999'"):
        other.submit("drift")


def test_kfp_errors_are_502_with_the_reason(cancer_files: dict[str, Path], tmp_path: Path) -> None:
    args = ["--reference", str(cancer_files["reference"]), "--retrain", "kfp",
            "--kfp-host", "http://127.0.0.1:9", "--kfp-pipeline", "mlp-training"]  # fmt: skip
    started = time.monotonic()
    with monitor(tmp_path, *args) as base:
        status, body = _post(base + "/alerts", FIRING)
    assert status == 502, body
    assert "retraining not submitted: GET http://127.0.0.1:9/apis/v2beta1/pipelines/names/" in body
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("store", ["filesystem", "s3"])
def test_two_replicas_receiving_one_alert_start_one_run(
    store: str,
    cancer_split: tuple[Any, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Acceptance (issue 21): the Deployment has two replicas behind one Service and both get
    the notification (or its repeat). The cooldown lives in the registry, so one run starts."""
    import contextlib

    from mlp_common.testing import s3_server

    from .test_server import _register

    monkeypatch.setenv("MLP_CACHE_DIR", str(tmp_path / "cache"))
    runs = tmp_path / "runs.txt"
    command = f"{sys.executable} -c \"open('{runs}', 'a').write('run\\n')\""
    with s3_server("models", serialized=True) if store == "s3" else contextlib.nullcontext():
        root = "s3://models/registry" if store == "s3" else str(tmp_path / "registry")
        registry = ModelRegistry(root)
        registry.promote("cancer", _register(registry, cancer_split[0], tmp_path, "v1"))
        args = ["--registry", root, "--model", "cancer", "--retrain", "local",
                "--retrain-command", command, "--retrain-cooldown", "3600"]  # fmt: skip
        (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
        with monitor(tmp_path / "a", *args) as a, monitor(tmp_path / "b", *args) as b:
            start = threading.Barrier(2)
            answers: dict[str, tuple[int, str]] = {}

            def notify(name: str, base: str) -> None:
                start.wait()
                answers[name] = _post(base + "/alerts", FIRING)

            threads = [threading.Thread(target=notify, args=x) for x in (("a", a), ("b", b))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(status for status, _ in answers.values()) == [200, 202], answers
            _wait_for(runs.is_file, "the run to start")
            for base in (a, b):  # Alertmanager's repeat, to either replica
                status, body = _post(base + "/alerts", FIRING)
                assert (status, body.startswith("ignored: a run was submitted")) == (200, True)
            time.sleep(1)
    assert runs.read_text() == "run\n"


def test_the_monitor_runs_the_version_its_environment_deploys_not_the_newest(
    cancer_files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Deployment is told its environment's PipelineVersion by MLP_PIPELINE_VERSION
    (platformgen renders it per overlay); a newer version of the pipeline in KFP (another
    environment's, or one not yet deployed here) is never the one that runs."""
    from mlp_common import contracts
    from mlp_common.kfp_test_server import kfp_api

    token = tmp_path / "token"
    token.write_text("projected-token\n")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token))
    monkeypatch.setenv(contracts.PIPELINE, "mlp-training")
    monkeypatch.setenv(contracts.PIPELINE_NAMESPACE, "ml-pipelines")
    monkeypatch.setenv(contracts.PIPELINE_VERSION, "mlp-training-0123456789")
    with kfp_api() as api:
        pipeline = api.add_pipeline("mlp-training", [], namespace="ml-pipelines")
        deployed = api.add_version(pipeline, "mlp-training-0123456789", "2026-11-29T00:00:00Z")
        api.add_version(pipeline, "mlp-training-9876543210", "2026-12-01T00:00:00Z")  # newer
        args = ["--reference", str(cancer_files["reference"]), "--retrain", "kfp",
                "--kfp-host", api.url]  # fmt: skip
        with monitor(tmp_path, *args) as base:
            status, body = _post(base + "/alerts", FIRING)
        assert status == 202, body
        (run,) = api.runs.values()
        assert run["pipeline_version_reference"] == {
            "pipeline_id": pipeline,
            "pipeline_version_id": deployed,
        }
        (named,) = api.calls("GET", "/pipelines/names/")
        assert named.query == {"namespace": "ml-pipelines"}
        assert {r.authorization for r in api.requests} == {"Bearer projected-token"}
