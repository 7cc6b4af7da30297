"""The image digests a run's pods ran (mlp_common.run_images).

The Kubernetes API here is a small HTTP stand-in that answers the two GETs the reader makes with
pod documents in the API's own shape (what a kubelet reports after pulling by tag); the same
reader against the real kube-apiserver, with the generated pipeline-runner Role deciding, is
tests/e2e/test_tenants.py::test_pipeline_runner_reads_the_image_digests_of_its_run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from mlp_common.run_images import (
    WORKFLOW_LABEL,
    KubernetesApi,
    run_image_digests,
    used_digests,
)

PINS = {
    "register": "registry.example.com/mlp/register-python:0.2.0-dev",
    "train": "registry.example.com/mlp/train-python:0.2.0-dev",
    "ingest": "registry.example.com/mlp/ingest-python:0.2.0-dev",
}
TRAIN_ID = "registry.example.com/mlp/train-python@sha256:" + "a" * 64
REGISTER_ID = "registry.example.com/mlp/register-python@sha256:" + "b" * 64


def pod(name: str, image: str, image_id: str, workflow: str = "mlp-training-x7k2p") -> Any:
    """A KFP v2 executor pod as the API returns it: Argo's init, wait and main containers."""
    return {
        "metadata": {"name": name, "labels": {WORKFLOW_LABEL: workflow}},
        "spec": {
            "initContainers": [{"name": "kfp-launcher", "image": "ghcr.io/kubeflow/kfp-launcher"}],
            "containers": [
                {"name": "wait", "image": "quay.io/argoproj/argoexec:v3.5"},
                {"name": "main", "image": image},
            ],
        },
        "status": {
            "containerStatuses": [
                {"name": "wait", "image": "quay.io/argoproj/argoexec:v3.5",
                 "imageID": "quay.io/argoproj/argoexec@sha256:" + "c" * 64},
                {"name": "main", "image": image, "imageID": image_id},
            ]
        },
    }  # fmt: skip


PODS = [
    pod("mlp-training-x7k2p-system-container-impl-1", PINS["train"], TRAIN_ID),
    pod("mlp-training-x7k2p-system-container-impl-2", PINS["register"], REGISTER_ID),
]


def test_each_step_gets_the_digest_its_pod_ran_and_a_cached_step_none() -> None:
    assert used_digests(PINS, PODS) == {"ingest": None, "register": REGISTER_ID, "train": TRAIN_ID}


class Api:
    """Records the GETs; answers GET pod and LIST pods (by label selector) of one namespace."""

    def __init__(self, pods: list[Any], status: int = 200) -> None:
        self.requests: list[tuple[str, str | None]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                api.requests.append((self.path, self.headers.get("Authorization")))
                parts = urlsplit(self.path)
                prefix = "/api/v1/namespaces/ml-pipelines/pods"
                body: Any = {"kind": "Status", "code": status, "reason": "Forbidden"}
                code = status
                if status == 200 and parts.path == prefix:
                    wanted = parse_qs(parts.query)["labelSelector"][0].split("=", 1)
                    items = [p for p in pods if p["metadata"]["labels"].get(wanted[0]) == wanted[1]]
                    body = {"kind": "PodList", "items": items}
                elif status == 200 and parts.path.startswith(prefix + "/"):
                    name = parts.path.rsplit("/", 1)[1]
                    found = [p for p in pods if p["metadata"]["name"] == name]
                    body, code = (found[0], 200) if found else ({"code": 404}, 404)
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def account(tmp_path: Path) -> Path:
    (tmp_path / "token").write_text("runner-token\n")
    return tmp_path


def serve(api: Api) -> Iterator[Api]:
    thread = threading.Thread(target=api.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.httpd.shutdown()
        api.httpd.server_close()


def test_the_register_pod_reads_its_runs_pods_with_its_token(account: Path) -> None:
    other_run = pod("mlp-training-zzzzz-impl-1", PINS["ingest"], "x@sha256:" + "d" * 64, "other")
    for api in serve(Api([*PODS, other_run])):
        reader = KubernetesApi(api.url, account)
        record = run_image_digests(PINS, reader, PODS[1]["metadata"]["name"], "ml-pipelines")
        assert record == {
            "source": "pod status",
            "namespace": "ml-pipelines",
            "workflow": "mlp-training-x7k2p",
            "digests": {"ingest": None, "register": REGISTER_ID, "train": TRAIN_ID},
        }  # the other run's ingest pod is not this run's
        (own, _), (listing, token) = api.requests
        assert own == "/api/v1/namespaces/ml-pipelines/pods/" + PODS[1]["metadata"]["name"]
        assert listing == (
            "/api/v1/namespaces/ml-pipelines/pods?labelSelector="
            "workflows.argoproj.io%2Fworkflow%3Dmlp-training-x7k2p"
        )
        assert token == "Bearer runner-token"


def test_a_forbidden_read_records_the_reason_not_digests(account: Path) -> None:
    for api in serve(Api(PODS, status=403)):
        record = run_image_digests(PINS, KubernetesApi(api.url, account), "p", "ml-pipelines")
        assert record["source"] == "unavailable"
        assert "HTTP Error 403" in record["reason"]


def test_a_local_run_records_local_and_the_code_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("MLP_CODE_VERSION", "0123abc")
    assert run_image_digests({}) == {"source": "local", "code_version": "0123abc"}
