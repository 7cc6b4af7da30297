"""Test support (not used at run time): a local stand-in for the KFP v2beta1 REST API.

There is no real Kubeflow Pipelines API server here (its Go module cannot be fetched), so tests
of :mod:`mlp_common.kfp_runs` run the real ``kfp.Client`` against this small HTTP server. It
speaks only the subset that client (and the drift monitor) uses: healthz, pipelines (listed, or
got by name) and their versions (listed with ``name``/``display_name`` EQUALS filters, sorted by
``sort_by``), experiments, runs and recurring runs (create, list, get, disable, enable, delete),
with the v2beta1 JSON field names. It records every request
(method, path, query, ``Authorization`` header), so tests assert what the SDK really sent.
It does not run anything, check RBAC or validate pipeline specs.

    with kfp_api() as api:
        api.add_pipeline("mlp-training", ["mlp-training-0123456789"], namespace="ml-pipelines")
        ...  # kfp.Client(host=api.url)
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PREFIX = "/apis/v2beta1"
NOW = "2026-11-29T00:00:00Z"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: dict[str, Any] | None


@dataclass
class KfpApi:
    """The server's state; tests read and seed it directly."""

    url: str = ""
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    recurring_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_pipeline(self, name: str, versions: list[str], namespace: str = "") -> str:
        """A K8s-native Pipeline and its PipelineVersions (display names are the pipeline's,
        as the KFP compiler writes them; ``name`` is the object's metadata.name)."""
        pipeline_id = str(uuid.uuid4())
        self.pipelines[pipeline_id] = {
            "pipeline_id": pipeline_id,
            "name": name,
            "display_name": name,
            "namespace": namespace,
            "created_at": NOW,
        }
        for version in versions:
            self.add_version(pipeline_id, version)
        return pipeline_id

    def add_version(self, pipeline_id: str, name: str, created_at: str = NOW) -> str:
        version_id = str(uuid.uuid4())
        self.versions[version_id] = {
            "pipeline_id": pipeline_id,
            "pipeline_version_id": version_id,
            "name": name,
            "display_name": self.pipelines[pipeline_id]["display_name"],
            "created_at": created_at,
        }
        return version_id

    def calls(self, method: str, path_prefix: str) -> list[Request]:
        return [
            r
            for r in self.requests
            if r.method == method and r.path.startswith(PREFIX + path_prefix)
        ]


def _matches(item: dict[str, Any], raw_filter: str | None) -> bool:
    if not raw_filter:
        return True
    for predicate in json.loads(raw_filter).get("predicates", []):
        if predicate.get("operation") not in ("EQUALS", 1):  # protojson: name or number
            raise ValueError(f"unsupported filter operation {predicate.get('operation')}")
        if item.get(predicate["key"]) != predicate.get("stringValue"):
            return False
    return True


def _page(items: list[dict[str, Any]], query: dict[str, str], key: str) -> dict[str, Any]:
    field, _, order = (query.get("sort_by") or "").partition(" ")
    if field:
        items = sorted(items, key=lambda item: str(item.get(field, "")), reverse=order == "desc")
    size = int(query.get("page_size") or 10)
    start = int(query.get("page_token") or 0)
    page = items[start : start + size]
    out: dict[str, Any] = {key: page, "total_size": len(items)}
    if start + size < len(items):
        out["next_page_token"] = str(start + size)
    return out


class _Handler(BaseHTTPRequestHandler):
    api: KfpApi

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        api = self.api
        with api.lock:
            api.requests.append(
                Request(method, parts.path, query, self.headers.get("Authorization"), body)
            )
            try:
                status, reply = self._route(method, parts.path.removeprefix(PREFIX), query, body)
            except ValueError as exc:
                status, reply = 400, {"code": 3, "message": str(exc)}
        self._reply(status, reply)

    def _route(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        api = self.api
        segments = path.strip("/").split("/")
        missing = (404, {"code": 5, "message": f"{path} not found"})
        if method == "GET" and path == "/healthz":
            return 200, {"multi_user": False}
        if method == "GET" and path == "/pipelines":
            ns = query.get("namespace", "")
            items = [
                p
                for p in api.pipelines.values()
                if (not ns or p["namespace"] in (ns, "")) and _matches(p, query.get("filter"))
            ]
            return 200, _page(items, query, "pipelines")
        if method == "GET" and segments[:2] == ["pipelines", "names"] and len(segments) == 3:
            ns = query.get("namespace", "")
            named = [
                p
                for p in api.pipelines.values()
                if p["name"] == segments[2] and (not ns or p["namespace"] in (ns, ""))
            ]
            return (200, named[0]) if named else missing
        if method == "GET" and len(segments) == 3 and segments[0] == "pipelines":
            if segments[1] not in api.pipelines:
                return missing
            items = [
                v
                for v in api.versions.values()
                if v["pipeline_id"] == segments[1] and _matches(v, query.get("filter"))
            ]
            return 200, _page(items, query, "pipeline_versions")
        if path == "/experiments" and method == "GET":
            ns = query.get("namespace", "")
            items = [
                e
                for e in api.experiments.values()
                if (not ns or e.get("namespace", "") == ns) and _matches(e, query.get("filter"))
            ]
            return 200, _page(items, query, "experiments")
        if path == "/experiments" and method == "POST":
            experiment = {**(body or {}), "experiment_id": str(uuid.uuid4()), "created_at": NOW}
            api.experiments[experiment["experiment_id"]] = experiment
            return 200, experiment
        if path == "/runs" and method == "POST":
            run = {**(body or {}), "run_id": str(uuid.uuid4()), "state": "PENDING"}
            run["created_at"] = NOW
            if not self._references_version(run):
                return 404, {"code": 5, "message": "pipeline version not found"}
            api.runs[run["run_id"]] = run
            return 200, run
        if method == "GET" and len(segments) == 2 and segments[0] == "runs":
            return (200, api.runs[segments[1]]) if segments[1] in api.runs else missing
        if path == "/recurringruns" and method == "POST":
            recurring = {**(body or {}), "recurring_run_id": str(uuid.uuid4())}
            recurring.update(created_at=NOW, updated_at=NOW, status="ENABLED")
            if "max_concurrency" in recurring:  # int64: a JSON string, as grpc-gateway writes it
                recurring["max_concurrency"] = str(recurring["max_concurrency"])
            if not self._references_version(recurring):
                return 404, {"code": 5, "message": "pipeline version not found"}
            api.recurring_runs[recurring["recurring_run_id"]] = recurring
            return 200, recurring
        if path == "/recurringruns" and method == "GET":
            experiment_id = query.get("experiment_id")
            items = [
                r
                for r in api.recurring_runs.values()
                if (experiment_id is None or r.get("experiment_id") == experiment_id)
                and _matches(r, query.get("filter"))
            ]
            return 200, _page(items, query, "recurringRuns")  # the proto's json_name
        if len(segments) == 2 and segments[0] == "recurringruns":
            key, _, action = segments[1].partition(":")
            if key not in api.recurring_runs:
                return missing
            if method == "GET":
                return 200, api.recurring_runs[key]
            if method == "DELETE":
                del api.recurring_runs[key]
                return 200, {}
            if method == "POST" and action in ("enable", "disable"):
                api.recurring_runs[key]["mode"] = action.upper()
                return 200, {}
        return 501, {"code": 12, "message": f"{method} {path} is not in the stand-in"}

    def _references_version(self, item: dict[str, Any]) -> bool:
        reference = item.get("pipeline_version_reference") or {}
        version = self.api.versions.get(reference.get("pipeline_version_id", ""))
        return version is not None and version["pipeline_id"] == reference.get("pipeline_id")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


@contextlib.contextmanager
def kfp_api() -> Iterator[KfpApi]:
    """Serve a fresh :class:`KfpApi` on 127.0.0.1 and a free port for the ``with`` block."""
    api = KfpApi()
    handler = type("Handler", (_Handler,), {"api": api})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
