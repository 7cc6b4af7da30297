"""The rendered dev platform brought up on a control plane with a real node, one context manager
for its three users: tests/e2e/test_node_platform.py, `make bench BENCH=node` (bench/node.py)
and `make demo-cluster` (scripts/demo_cluster.py).

`running_platform(work)`: the local pipeline run of `make demo` trains the model into a local
registry; the dev environment is rendered from a spec copy whose model server is in KServe's
`Standard` mode (the only change: no Knative here); a control plane with its own node starts
(tests/e2e/kube.py `control_plane(node=True)`); the images `make images` builds are served by a
registry on the node's veth and imported into its containerd (tests/e2e/node_images.py); the real
KServe controller runs with its webhooks (tests/e2e/controllers.py); moto's S3 server and the KFP
v2beta1 stand-in run as pods in `kubeflow`, the registry is uploaded to S3; the platform is
delivered, and the Prometheus Operator (a host process) turns the rendered ServiceMonitors into
configuration that a Prometheus pod runs. It yields once every Deployment and InferenceService pod
is Ready and every Job complete; leaving it tears everything down.

Two deliveries: `apply` (server-side apply of `kustomize build overlays/dev`; the bench's) or
`argocd`: a real Argo CD syncs the rendered dev ApplicationSet from the spec copy's Git
repository (tests/e2e/node_argocd.py), and the bring-up also waits until Argo CD reports every
Application Synced and each one's health what this cluster can give it (NOT_RECONCILED).

Each stage runs inside `phase(group, name)`, so a caller can print or time it (the demo prints a
line per stage, the bench times them); the default does nothing.

Every rendered object is delivered; only KServe's controller runs (NOT_RECONCILED says why the
others do not). The node has no volume provisioner: each claim gets a hostPath volume bound to it
beforehand, as a provisioner would make one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from platformgen.kinds import KINDS

import support
from . import node_images
from .alert_chain import (
    PROMETHEUS_NAMESPACE,
    VARIABLE,
    Processes,
    free_port,
    operator_output,
    prometheus_object,
)
from .argocd import ARGOCD_TOOLS, GitRepo, health_checks, render_spec
from .argocd import running as running_argocd
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
    kustomize_build,
    load_documents,
)
from .node import host_path_volume, restricted_namespace, wait_running
from .node_argocd import Delivery
from .test_alert_chain import _install_monitoring_crds as install_monitoring_crds
from .test_controllers import mode

ENVIRONMENT = "dev"
RECONCILED = {"InferenceService": "kserve"}
"""The kinds whose controller runs here (tests/e2e/controllers.py project): KServe's, which makes
the model server's Deployment and Service."""
NOT_RECONCILED = frozenset(
    kind for kind, t in KINDS.items() if t.pods_created_by and kind not in RECONCILED
)
"""Kinds whose pods only a controller creates (platformgen/kinds.py `pods_created_by`) and whose
controller does not run here, so their objects stay as delivered, with no status: Katib's
(Experiment: its trials would train for minutes each on two cores, and its suggestion service's
image is not here), Kubeflow Trainer's and JobSet's (TrainJob: two workers training for minutes;
tests/e2e/test_node_trainjob.py runs it on a node), the Spark Operator's (SparkApplication). Argo
CD reports them Progressing (tests/e2e/node_argocd.py)."""
DeliveryMode = Literal["apply", "argocd"]
"""`apply`: server-side apply; `argocd`: Argo CD syncs the ApplicationSet (module docstring)."""
GATEWAY = ("istio-system", "gateway-probe")
"""A client pod (Python) with the ingress gateway's namespace and labels: the model server
admits it."""
READY_TIMEOUT = 600.0
"""TensorFlow imports slowly on a busy 2-core machine."""
TOOLS = (*CONTROL_PLANE, *NODE_TOOLS, *BINARIES, "kustomize", "registry", "prometheus",
         "prometheus-operator")  # fmt: skip
INSTALL = "make tools cluster-tools node-tools controllers-tools registry-tools prometheus-tools"
SYNC_TIMEOUT = 300.0
"""From the ApplicationSet applied to every Application Synced (workloads are the last sync wave,
so this does not wait for pods)."""
HEALTH_TIMEOUT = 120.0
"""From every pod Ready to Argo CD reporting each object's health (it watches them)."""
Phase = Callable[[str, str], AbstractContextManager[Any]]


def no_phase(group: str, name: str) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


@dataclass
class Platform:
    cluster: Cluster
    documents: list[Manifest]
    expected: dict[str, Any]
    """The demo's prediction (mlp_serve.smoke on the local registry): model, v1_prediction."""
    row: list[float]
    prometheus_ip: str
    s3_url: str
    """moto's S3 server (the `minio` pod), reached from the host."""
    timings: dict[str, float] = field(default_factory=dict)
    delivery: Delivery | None = None
    """With `delivery="argocd"`: Argo CD and the Git repository it syncs from."""


def pipeline_registry(work: Path) -> tuple[Path, dict[str, Any], list[float]]:
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
    expected = node_images.local_prediction(registry, "production")
    from mlp_common.files import read_json
    from mlp_common.registry import ModelRegistry

    version = ModelRegistry(registry).get(expected["model"], "production")
    description = read_json(version.path / "features.json")
    return registry, expected, list(description["mean"])


def prometheus_config(cluster: Cluster) -> dict[str, Any]:
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


def not_ready(cluster: Cluster, documents: list[Manifest]) -> str | None:
    """What is not ready yet: a Deployment (rendered, and KServe's from the InferenceService)
    short of Ready pods, a Job not complete; None when all are. A failed Job fails."""
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
        return "; ".join(waiting) + "\n" + pod_problems(cluster)
    return None


def pod_problems(cluster: Cluster) -> str:
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


def _records(documents: list[Manifest]) -> list[dict[str, Any]]:
    """The images a pod here runs: the platform's (the pipeline steps' run in KFP, not here),
    the stand-ins, KServe's agent and Prometheus."""
    records = [
        *node_images.built_images(),
        node_images.stand_ins_image(),
        node_images.binary_image(TOOLS_BIN / "kserve-agent", node_images.AGENT_IMAGE),
        node_images.binary_image(TOOLS_BIN / "prometheus", node_images.PROMETHEUS_IMAGE),
    ]
    used = {
        container["image"]
        for doc in documents
        if doc["kind"] in ("Deployment", "Job", "InferenceService")
        for pod in [_pod_spec(doc)]
        for container in [*pod.get("initContainers", []), *pod["containers"]]
    }  # not the step images a Pipeline names: KFP runs those, not this node
    return [
        r
        for r in records
        if used & set(r["references"])
        or not any(ref.startswith("registry.example.com/") for ref in r["references"])
    ]


def _pod_spec(doc: Manifest) -> Manifest:
    if doc["kind"] == "InferenceService":
        predictor: Manifest = doc["spec"]["predictor"]
        return predictor
    spec: Manifest = doc["spec"]["template"]["spec"]
    return spec


def rendered_dev(repo: Path) -> list[Manifest]:
    """The dev overlay of a spec copy with the model server in `Standard` mode (the only
    change: no Knative here), rendered into `repo` with `gitops.repoURL` pointing at it."""
    spec = yaml.safe_load(mode((ROOT / "platform.yaml").read_text(encoding="utf-8"), "Standard"))
    spec["gitops"] = {**spec["gitops"], "repoURL": f"file://{repo}", "targetRevision": "HEAD"}
    repo.mkdir(parents=True, exist_ok=True)
    render_spec(repo, spec)
    return load_documents(kustomize_build(repo / "overlays" / ENVIRONMENT))


@contextlib.contextmanager
def running_platform(
    work: Path, phase: Phase = no_phase, delivery: DeliveryMode = "apply"
) -> Iterator[Platform]:
    argocd = delivery == "argocd"
    if argocd:
        support.require_tools(*TOOLS, *ARGOCD_TOOLS, install=f"{INSTALL} argocd-tools")
    else:
        support.require_tools(*TOOLS, install=INSTALL)
    with phase("ml", "pipeline"):
        registry, expected, row = pipeline_registry(work)
    repo = GitRepo(work / "repo")
    with phase("platform", "render"):
        documents = rendered_dev(repo.path)
        revision = ""
        if argocd:
            repo.init()
            revision = repo.commit("platform: dev, the model server in Standard mode")
    with phase("images", "build"):
        records = _records(documents)
    processes = Processes(work / "logs")
    with phase("cluster", "node"):
        stack = contextlib.ExitStack()
        cluster = stack.enter_context(control_plane(work / "cluster", node=True, store="platform"))
    with stack:
        node = cluster.node
        assert node is not None
        try:
            with phase("images", "load"):
                node_images.serve_images(
                    node.host_ip, node.registry_hosts, work / "registry-state", records
                )
                # The layers go into containerd from the archives (seconds): a pull (`Always`)
                # then resolves each name through the registry and fetches only what is
                # missing. (Layers of hundreds of MB fetched over the veth were cut short.)
                for record in records:
                    if not node.has_images(record["references"], record["digest"]):
                        node.ctr("images", "import", "--all-platforms", record["archive"])
            with phase("cluster", "controllers"):
                controllers = stack.enter_context(
                    running_controllers(
                        cluster, work / "controllers", tuple(sorted(set(RECONCILED.values())))
                    )
                )
            del controllers
            gitops = None
            if argocd:
                with phase("cluster", "argocd"):
                    instance = stack.enter_context(
                        running_argocd(
                            cluster,
                            work,
                            [health_checks(repo.path)],
                            persist_resource_health=True,
                        )
                    )
                    gitops = Delivery(instance, repo, revision, NOT_RECONCILED)
            yield _bring_up(
                cluster, documents, registry, expected, row, processes, phase, gitops, work
            )
        finally:
            with phase("cluster", "teardown"):
                processes.stop_all()
                node_images.stop_registry(work / "registry-state")
                stack.close()


def _bring_up(
    cluster: Cluster,
    documents: list[Manifest],
    registry: Path,
    expected: dict[str, Any],
    row: list[float],
    processes: Processes,
    phase: Phase,
    delivery: Delivery | None,
    work: Path,
) -> Platform:
    with phase("platform", "stand-ins"):
        s3_url = _stand_ins(cluster, documents, registry)
        _volumes(cluster, documents, work / "volumes")
    timings: dict[str, float] = {}
    with phase("platform", "apply" if delivery is None else "sync"):
        # The Prometheus Operator watches every kind of its own: its CRDs first.
        install_monitoring_crds(cluster, documents)
        started = time.monotonic()
        if delivery is None:
            warnings = apply(cluster, yaml.safe_dump_all(documents, sort_keys=False), applyset=None)
            assert not warnings, warnings
        else:
            delivery.start(ENVIRONMENT)
            # The operator's configuration is read once: the ServiceMonitors must exist.
            seconds = delivery.wait("every Application Synced", SYNC_TIMEOUT, health=False)
            timings["argocd_synced_seconds"] = round(seconds, 1)
        prometheus_ip = _prometheus(cluster, processes)
    with phase("platform", "ready"):
        cluster.wait_for(
            "the platform's pods", lambda: not_ready(cluster, documents), timeout=READY_TIMEOUT
        )
        timings["platform_ready_seconds"] = round(time.monotonic() - started, 1)
        namespace, name = GATEWAY
        gateway = [
            restricted_namespace(namespace),
            node_images.client_pod(name, namespace, {"istio": "ingressgateway"}),
        ]
        apply(cluster, yaml.safe_dump_all(gateway, sort_keys=False), applyset=None)
        wait_running(cluster, namespace, [name])
        wait_running(cluster, PROMETHEUS_NAMESPACE, ["prometheus-e2e"])
    if delivery is not None:
        with phase("argocd", "health"):
            delivery.wait("Argo CD's health of every Application", HEALTH_TIMEOUT)
            timings["argocd_healthy_seconds"] = round(time.monotonic() - started, 1)
    return Platform(cluster, documents, expected, row, prometheus_ip, s3_url, timings, delivery)


def _volumes(cluster: Cluster, documents: list[Manifest], root: Path) -> None:
    """A hostPath volume bound beforehand to each rendered claim (the node has no provisioner),
    with the claim's size, access modes and class."""
    volumes = []
    for claim in (d for d in documents if d["kind"] == "PersistentVolumeClaim"):
        path = root / claim["metadata"]["namespace"] / claim["metadata"]["name"]
        path.mkdir(parents=True, exist_ok=True)
        volumes.append(host_path_volume(claim, path))
    if volumes:
        apply(cluster, yaml.safe_dump_all(volumes, sort_keys=False), applyset=None)


def _stand_ins(cluster: Cluster, documents: list[Manifest], registry: Path) -> str:
    """The namespaces, the stand-ins (moto S3, KFP API) Running, the registry on S3; its URL."""
    namespaces = [d for d in documents if d["kind"] == "Namespace"]
    stand_ins = node_images.stand_in_objects(documents)
    apply(cluster, yaml.safe_dump_all([*namespaces, *stand_ins], sort_keys=False), applyset=None)
    namespace = node_images.STAND_IN_NAMESPACE
    # Ready, not just created: right after the apply a Deployment may have no pod yet.
    for deployment in ("minio", "ml-pipeline"):
        cluster.kubectl(
            "rollout", "status", "-n", namespace, f"deployment/{deployment}", "--timeout=300s"
        )
    (s3,) = cluster.get_json("pods", "-n", namespace, "-l", "app=minio")["items"]
    s3_url = f"http://{s3['status']['podIP']}:{node_images.S3_PORT}"
    assert node_images.upload_registry(registry, s3_url, "mlp-models/registry") > 0
    return s3_url


def _prometheus(cluster: Cluster, processes: Processes) -> str:
    """The Prometheus Operator (host process) turns the ServiceMonitors into configuration; a
    Prometheus pod runs it. The pod's IP."""
    prometheus = prometheus_object({"release": "kube-prometheus-stack"})
    prometheus["spec"]["replicas"] = 0  # its StatefulSet's images are not here: our pod runs it
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
    objects = node_images.prometheus_pod_objects(prometheus_config(cluster), PROMETHEUS_NAMESPACE)
    apply(cluster, yaml.safe_dump_all(objects, sort_keys=False), applyset=None)
    wait_running(cluster, PROMETHEUS_NAMESPACE, ["prometheus-e2e"])
    ip: str = cluster.get_json("pod", "prometheus-e2e", "-n", PROMETHEUS_NAMESPACE)["status"][
        "podIP"
    ]
    return ip


# --- what the platform answers ------------------------------------------------------------------


def isvc(documents: list[Manifest]) -> Manifest:
    (found,) = [d for d in documents if d["kind"] == "InferenceService"]
    return found


def predict(running: Platform, *, check: bool = True) -> tuple[Any, Any]:
    """v1 and v2 for the demo's row, through KServe's Service (its ClusterIP: kube-proxy picks
    the pod), from the gateway probe pod. `check=False`: (None, None) when a request fails."""
    meta = isvc(running.documents)["metadata"]
    model = running.expected["model"]
    service = running.cluster.get_json(
        "service", f"{meta['name']}-predictor", "-n", meta["namespace"]
    )
    base = f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"
    namespace, pod = GATEWAY
    tensor = {"name": "features", "shape": [1, len(running.row)], "datatype": "FP32",
              "data": running.row}  # fmt: skip
    answers = []
    for url, body in (
        (f"{base}/v1/models/{model}:predict", {"instances": [running.row]}),
        (f"{base}/v2/models/{model}/infer", {"inputs": [tensor]}),
    ):
        try:
            answers.append(node_images.pod_exec_http(running.cluster, namespace, pod, url, body))
        except AssertionError:
            if check:
                raise
            answers.append(None)
    return answers[0], answers[1]


def predictor_pods(running: Platform) -> list[dict[str, Any]]:
    """The model server's pods (KServe's Deployment's), those not being deleted."""
    meta = isvc(running.documents)["metadata"]
    pods: list[dict[str, Any]] = running.cluster.get_json(
        "pods", "-n", meta["namespace"], "-l", f"serving.kserve.io/inferenceservice={meta['name']}"
    )["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def start_to_ready(pod: dict[str, Any]) -> float | None:
    """Seconds from the pod's creation to its Ready condition, by the API server's clock (1 s
    resolution); None while it is not Ready."""
    ready = [
        c
        for c in pod.get("status", {}).get("conditions", [])
        if c["type"] == "Ready" and c["status"] == "True"
    ]
    if not ready:
        return None
    return _stamp(ready[0]["lastTransitionTime"]) - _stamp(pod["metadata"]["creationTimestamp"])


def label(v2: dict[str, Any]) -> Any:
    return next(o["data"][0] for o in v2["outputs"] if o["name"] == "label")


def query(running: Platform, expr: str) -> list[dict[str, Any]]:
    """A Prometheus instant query against the Prometheus pod."""
    url = f"http://{running.prometheus_ip}:9090/api/v1/query?" + urllib.parse.urlencode(
        {"query": expr}
    )
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a test pod
        result: list[dict[str, Any]] = json.loads(response.read())["data"]["result"]
    return result


def promote_copy(running: Platform) -> int:
    """A new version in the S3 registry (the production version's files, registered again)
    promoted to production, as the pipeline's register step does; its number. The model
    server follows the `production` pointer (it polls the registry)."""
    import os

    from mlp_common.registry import ModelRegistry

    model = running.expected["model"]
    keys = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(
        AWS_ENDPOINT_URL=running.s3_url, AWS_ACCESS_KEY_ID=node_images.ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=node_images.SECRET_KEY, AWS_DEFAULT_REGION="us-east-1",
    )  # fmt: skip
    try:
        registry = ModelRegistry("s3://mlp-models/registry")
        current = registry.get(model, "production")
        metadata = {k: v for k, v in current.metadata.items() if k not in ("artifacts",)}
        version = registry.register(
            model, current.path, metadata, promote=True, promote_reason="bench: a new version"
        )
        return int(version.version)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
