"""The rendered platform running on a real node (issue 18, part 3).

The dev environment, rendered from a spec copy whose model server is in KServe's `Standard`
mode (the only change: no Knative here), is applied with server-side apply to a control plane
with a node (its own, tests/e2e/kube.py `control_plane(node=True)`) and the real KServe
controller with its webhooks (tests/e2e/controllers.py). The images come from `make images`
through a local registry the node's containerd is pointed at, so every rendered pod pulls
`Always` under the name it has. moto's S3 server stands in for MinIO and the KFP v2beta1
stand-in for KFP's API server, as pods in `kubeflow` (tests/e2e/platform.py); the registry
holds the model the local pipeline trained (what `make demo` trains). Then:

- every Deployment, Job and InferenceService pod runs under Pod Security `restricted`, passes
  its probes and is Ready; both Jobs (submit a run and wait; schedule the recurring run)
  complete against the KFP stand-in;
- the model server answers v1 and v2 through the ClusterIP of KServe's Service (kube-proxy),
  from a pod the NetworkPolicies admit (the ingress gateway's labels), with the demo's
  prediction for the demo's row;
- Prometheus (a pod with the labels the policies allow, running the Prometheus Operator's
  configuration for the rendered ServiceMonitors) scrapes the model server and the drift
  monitor, and the drift monitor counts the rows KServe's logger agent sent it.

The TrainJob, its TrainingRuntime and the Katib Experiment are left out (the TrainJob runs in
test_node_trainjob.py; trials would train for minutes on two cores).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import support
from . import platform
from .alert_chain import (
    PROMETHEUS_NAMESPACE,
    VARIABLE,
    Processes,
    free_port,
    operator_output,
    prometheus_object,
)
from .controllers import BINARIES, running_controllers
from .kube import (
    CONTROL_PLANE,
    NODE_TOOLS,
    ROOT,
    TOOLS_BIN,
    Cluster,
    Manifest,
    apply,
    control_plane,
)
from .node import probe_pod, restricted_namespace, wait_running
from .test_alert_chain import _install_monitoring_crds as install_monitoring_crds
from .test_controllers import mode, render

pytestmark = pytest.mark.tools

LEFT_OUT = {"TrainJob", "TrainingRuntime", "Experiment"}
GATEWAY = ("istio-system", "gateway-probe")
"""A probe pod with the ingress gateway's namespace and labels: the model server admits it."""
READY_TIMEOUT = 600.0
"""TensorFlow imports slowly on a busy 2-core machine."""


@dataclass
class Platform:
    cluster: Cluster
    documents: list[Manifest]
    expected: dict[str, Any]
    row: list[float]
    prometheus_ip: str
    timings: dict[str, float]


def _pipeline_registry(work: Path) -> tuple[Path, dict[str, Any], list[float]]:
    """The local pipeline run of `make demo` into `work/registry`; the demo's prediction
    (mlp_serve.smoke) and its row (the production version's training means)."""
    registry = work / "registry"
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "mlp-pipeline"), "run", "--runs", str(work / "runs"),
         "--registry", str(registry), "--datasets", str(work / "datasets"),
         "--summary-json", str(work / "summary.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    expected = platform.local_prediction(registry, "production")
    from mlp_common.files import read_json
    from mlp_common.registry import ModelRegistry

    version = ModelRegistry(registry).get(expected["model"], "production")
    description = read_json(version.path / "features.json")
    return registry, expected, list(description["mean"])


def _prometheus_config(cluster: Cluster) -> dict[str, Any]:
    """The operator's configuration as its config-reloader hands it to Prometheus: `$(VAR)`
    expanded from the reloader's environment; rule files left out (not under test here)."""
    output = None

    def written() -> str | None:
        nonlocal output
        output = operator_output(cluster)
        return None if output is not None else "no configuration Secret yet"

    cluster.wait_for("the Prometheus Operator's configuration", written, timeout=120)
    assert output is not None
    text = yaml.safe_dump(output.config, sort_keys=False)
    for name, value in output.reloader_env.items():
        text = text.replace(f"$({name})", value)
    assert not VARIABLE.findall(text), text
    config: dict[str, Any] = yaml.safe_load(text)
    config.pop("rule_files", None)
    return config


def _wait_ready(cluster: Cluster, documents: list[Manifest]) -> None:
    """Every Deployment (rendered, and KServe's from the InferenceService) available with all
    its pods Ready, every Job complete."""

    def not_ready() -> str | None:
        waiting = []
        for doc in documents:
            kind, meta = doc["kind"], doc["metadata"]
            if kind == "InferenceService":
                kind, name = "Deployment", f"{meta['name']}-predictor"
            elif kind in ("Deployment", "Job"):
                name = meta["name"]
            else:
                continue
            live = cluster.kubectl(
                "get", kind.lower(), name, "-n", meta["namespace"], "-o", "json", check=False
            )
            if live.returncode != 0:
                waiting.append(f"{kind} {name}: absent")
                continue
            status = json.loads(live.stdout).get("status", {})
            if kind == "Deployment":
                want = json.loads(live.stdout)["spec"].get("replicas", 1)
                if status.get("readyReplicas", 0) < want or status.get("updatedReplicas", 0) < want:
                    waiting.append(f"{name}: {status.get('readyReplicas', 0)}/{want} ready")
            else:
                conditions = {c["type"]: c for c in status.get("conditions", [])}
                if "Failed" in conditions and conditions["Failed"]["status"] == "True":
                    raise AssertionError(f"Job {name} failed: {conditions['Failed']}")
                if conditions.get("Complete", {}).get("status") != "True":
                    waiting.append(f"Job {name}: {status.get('active', 0)} active")
        if waiting:
            return "; ".join(waiting) + "\n" + _pod_problems(cluster)
        return None

    cluster.wait_for("the platform's pods", not_ready, timeout=READY_TIMEOUT)


def _pod_problems(cluster: Cluster) -> str:
    lines = []
    for pod in cluster.get_json("pods", "-A")["items"]:
        for status in pod.get("status", {}).get("containerStatuses", []):
            waiting = status.get("state", {}).get("waiting")
            if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
                lines.append(
                    f"{pod['metadata']['namespace']}/{pod['metadata']['name']} "
                    f"{status['name']}: {waiting.get('reason')} {waiting.get('message', '')[:200]}"
                )
    return "\n".join(lines)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    support.require_tools(
        *CONTROL_PLANE, *NODE_TOOLS, *BINARIES, "kustomize", "kserve-agent", "registry",
        "prometheus", "prometheus-operator",
        install="make tools cluster-tools node-tools controllers-tools registry-tools "
        "prometheus-tools",
    )  # fmt: skip
    work = tmp_path_factory.mktemp("platform")
    records = [
        *platform.built_images(),
        platform.stand_ins_image(),
        platform.binary_image(TOOLS_BIN / "kserve-agent", platform.AGENT_IMAGE),
        platform.binary_image(TOOLS_BIN / "prometheus", platform.PROMETHEUS_IMAGE),
    ]
    registry, expected, row = _pipeline_registry(work)
    documents = [
        d
        for d in render(work / "repo", lambda spec: mode(spec, "Standard"))
        if d["kind"] not in LEFT_OUT
    ]
    used = set(re.findall(r"image: (\S+)", yaml.safe_dump_all(documents)))
    # The platform's images a pod here runs (the pipeline steps' run in KFP, not here), and the
    # stand-ins, the agent and Prometheus.
    records = [
        r
        for r in records
        if used & set(r["references"])
        or not any(ref.startswith("registry.example.com/") for ref in r["references"])
    ]
    stand_ins = platform.stand_in_objects(documents)
    processes = Processes(work / "logs")
    timings: dict[str, float] = {}
    with control_plane(work / "cluster", node=True) as cluster:
        node = cluster.node
        assert node is not None
        try:
            platform.serve_images(
                node.host_ip, node.registry_hosts, work / "registry-state", records
            )
            # The layers go into containerd from the archives (seconds): a pull (`Always`)
            # then resolves each name through the registry and fetches only what is missing.
            # (Layers of hundreds of MB fetched over the veth were cut short under load.)
            for record in records:
                node.ctr("images", "import", "--all-platforms", record["archive"])
            with running_controllers(cluster, work / "controllers"):
                yield from _bring_up(
                    cluster, documents, stand_ins, registry, expected, row, processes, timings
                )
        finally:
            processes.stop_all()
            platform.stop_registry(work / "registry-state")


def _bring_up(
    cluster: Cluster,
    documents: list[Manifest],
    stand_ins: list[Manifest],
    registry: Path,
    expected: dict[str, Any],
    row: list[float],
    processes: Processes,
    timings: dict[str, float],
) -> Iterator[Platform]:
    namespaces = [d for d in documents if d["kind"] == "Namespace"]
    apply(cluster, yaml.safe_dump_all([*namespaces, *stand_ins], sort_keys=False), applyset=None)
    wait_running(
        cluster,
        platform.STAND_IN_NAMESPACE,
        [p["metadata"]["name"] for p in cluster.get_json(
            "pods", "-n", platform.STAND_IN_NAMESPACE, "-l", "app in (minio,ml-pipeline)"
        )["items"]],
    )  # fmt: skip
    s3_ip = next(
        p["status"]["podIP"]
        for p in cluster.get_json("pods", "-n", platform.STAND_IN_NAMESPACE, "-l", "app=minio")[
            "items"
        ]
    )
    uploaded = platform.upload_registry(
        registry, f"http://{s3_ip}:{platform.S3_PORT}", "mlp-models/registry"
    )
    assert uploaded > 0
    # The Prometheus Operator (host process) turns the ServiceMonitors into configuration.
    prometheus = prometheus_object({"release": "kube-prometheus-stack"})
    prometheus["spec"]["replicas"] = 0  # its StatefulSet's images are not here: our pod runs it
    install_monitoring_crds(cluster, documents)  # the operator watches every kind of its own
    started = time.monotonic()
    warnings = apply(cluster, yaml.safe_dump_all(documents, sort_keys=False), applyset=None)
    assert not warnings, warnings
    pki = cluster.state / "pki"
    server = yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    processes.start(
        "prometheus-operator",
        [str(TOOLS_BIN / "prometheus-operator"), f"--apiserver={server}",
         f"--ca-file={pki / 'ca.crt'}", f"--cert-file={pki / 'admin.crt'}",
         f"--key-file={pki / 'admin.key'}", f"--web.listen-address=127.0.0.1:{free_port()}",
         "--log-level=info"],
    )  # fmt: skip
    cluster.kubectl("create", "namespace", PROMETHEUS_NAMESPACE, check=False)
    apply(cluster, yaml.safe_dump(prometheus, sort_keys=False), applyset=None)
    config = _prometheus_config(cluster)
    apply(
        cluster,
        yaml.safe_dump_all(
            platform.prometheus_pod_objects(config, PROMETHEUS_NAMESPACE), sort_keys=False
        ),
        applyset=None,
    )
    _wait_ready(cluster, documents)
    timings["platform_ready_seconds"] = round(time.monotonic() - started, 1)
    namespace, name = GATEWAY
    apply(
        cluster,
        yaml.safe_dump_all(
            [
                restricted_namespace(namespace),
                probe_pod(name, namespace, "exec sleep 86400", labels={"istio": "ingressgateway"}),
            ],
            sort_keys=False,
        ),
        applyset=None,
    )
    wait_running(cluster, namespace, [name])
    wait_running(cluster, PROMETHEUS_NAMESPACE, ["prometheus-e2e"])
    prometheus_ip = cluster.get_json("pod", "prometheus-e2e", "-n", PROMETHEUS_NAMESPACE)["status"][
        "podIP"
    ]
    yield Platform(cluster, documents, expected, row, prometheus_ip, timings)


def _isvc(documents: list[Manifest]) -> Manifest:
    (isvc,) = [d for d in documents if d["kind"] == "InferenceService"]
    return isvc


def predict(running: Platform) -> tuple[Any, Any]:
    """v1 and v2 for the demo's row, through KServe's Service (its ClusterIP, by DNS name)."""
    meta = _isvc(running.documents)["metadata"]
    model = running.expected["model"]
    base = f"http://{meta['name']}-predictor.{meta['namespace']}.svc.cluster.local"
    namespace, pod = GATEWAY
    v1 = platform.pod_exec_http(
        running.cluster, namespace, pod, f"{base}/v1/models/{model}:predict",
        {"instances": [running.row]},
    )  # fmt: skip
    tensor = {"name": "features", "shape": [1, len(running.row)], "datatype": "FP32",
              "data": running.row}  # fmt: skip
    v2 = platform.pod_exec_http(
        running.cluster, namespace, pod, f"{base}/v2/models/{model}/infer", {"inputs": [tensor]}
    )
    return v1, v2


def test_every_platform_pod_is_ready_under_restricted(running: Platform) -> None:
    cluster = running.cluster
    namespaces = sorted(
        {
            d["metadata"]["namespace"]
            for d in running.documents
            if d["kind"] in ("Deployment", "Job", "InferenceService")
        }
    )
    for namespace in namespaces:
        labels = cluster.get_json("namespace", namespace)["metadata"]["labels"]
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted", (namespace, labels)
        for pod in cluster.get_json("pods", "-n", namespace)["items"]:
            for container in pod["spec"]["containers"]:
                if container["name"] != "agent":
                    assert container["imagePullPolicy"] == "Always", container
            phase = pod["status"]["phase"]
            ready = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
            assert phase == "Succeeded" or ready.get("Ready") == "True", (
                pod["metadata"]["name"],
                pod["status"],
            )
    isvc = _isvc(running.documents)["metadata"]
    live = cluster.get_json("inferenceservice", isvc["name"], "-n", isvc["namespace"])
    conditions = {c["type"]: c["status"] for c in live["status"].get("conditions", [])}
    assert conditions.get("PredictorReady") == "True", live["status"]
    print(f"platform Ready after {running.timings['platform_ready_seconds']} s")


def test_the_model_server_answers_v1_and_v2_through_its_cluster_ip(running: Platform) -> None:
    v1, v2 = predict(running)
    label = next(o["data"][0] for o in v2["outputs"] if o["name"] == "label")
    assert v1["predictions"][0] == running.expected["v1_prediction"], (v1, running.expected)
    assert label == running.expected["v1_prediction"], (v2, running.expected)


def _query(running: Platform, expr: str) -> list[dict[str, Any]]:
    url = f"http://{running.prometheus_ip}:9090/api/v1/query?" + urllib.parse.urlencode(
        {"query": expr}
    )
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a test pod
        result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
    return result


def test_prometheus_scrapes_both_and_the_drift_monitor_sees_the_traffic(running: Platform) -> None:
    for _ in range(3):
        predict(running)

    def scraped() -> str | None:
        up = {r["metric"].get("service", "?"): r["value"][1] for r in _query(running, "up")}
        wanted = {"model-server", "drift-monitor"}
        missing = {s for s in wanted if up.get(s) != "1"}
        return f"up: {up}" if missing else None

    running.cluster.wait_for("Prometheus to scrape both", scraped, timeout=180)

    def counted() -> str | None:
        rows = _query(running, "sum(mlp_drift_current_samples)")
        return None if rows and float(rows[0]["value"][1]) >= 1 else f"rows: {rows}"

    running.cluster.wait_for("the drift monitor to count the rows", counted, timeout=180)
