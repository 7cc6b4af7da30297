"""The rendered platform on a cluster with a node (tests/e2e/test_node_platform.py): its images
in a registry the node pulls from, the stand-ins for what it depends on outside this
repository, and a Prometheus pod that runs the Prometheus Operator's configuration.

- **Images.** `make images` (scripts/build-images.sh) builds every image from its generated
  Dockerfile; `scripts/image_registry.py` serves them from a registry on the host's end of the
  node's network namespace (never a public interface), and its `hosts` files in the node's
  containerd `config_path` send `registry.example.com` (and Docker Hub, for KServe's agent) there.
  So the rendered pods pull with `imagePullPolicy: Always` under the names they use, unchanged.
- **Images of binaries** (`binary_image`): KServe's agent (`kserve/agent:latest` in KServe's own
  inferenceservice-config; `make controllers-tools` builds it from the module proxy) and the
  Prometheus server (`make prometheus-tools`), each a static Go binary alone in an image.
- **Stand-ins** (tests/e2e/stand_ins/): moto's S3 server where KFP's MinIO would be (pod labels
  `app: minio`, Service `minio` in `kubeflow`, as the spec's `object-store` endpoint says), and
  KFP's v2beta1 API stand-in (`app: ml-pipeline`, Service `ml-pipeline`), seeded with the
  rendered Pipeline and PipelineVersion; it runs nothing and reports each run SUCCEEDED.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import support
from .kube import ROOT, Cluster, Manifest

STAND_INS = Path(__file__).resolve().parent / "stand_ins"
STAND_INS_IMAGE = "localhost/mlp-e2e/stand-ins:e2e"
PROMETHEUS_IMAGE = "localhost/mlp-e2e/prometheus:e2e"
AGENT_IMAGE = "kserve/agent:latest"
"""KServe's logger agent, as inferenceservice-config (unmodified) names it."""
STAND_IN_NAMESPACE = "kubeflow"
STAND_IN_UID = 10001
S3_PORT = 9000
KFP_PORT = 8888
ACCESS_KEY, SECRET_KEY = "mlp-e2e", "mlp-e2e-secret"  # noqa: S105 - moto accepts any


def images_module() -> ModuleType:
    return support.load_script("images")


def registry_module() -> ModuleType:
    return support.load_script("image_registry")


def built_images() -> list[dict[str, Any]]:
    """Every image of builds.images (scripts/build-images.sh: built, or found in the cache)."""
    if os.geteuid() != 0:
        raise AssertionError("building images needs root (buildah --isolation chroot)")
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-images.sh")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"scripts/build-images.sh failed:\n{result.stderr[-4000:]}"
    records: list[dict[str, Any]] = images_module().manifest()["images"]
    return records


def _constraints() -> str:
    """The venv's packages (the versions uv.lock pins) as pip constraints."""
    names = {
        f"{d.metadata['Name'].lower()}=={d.version}" for d in importlib.metadata.distributions()
    }
    return "".join(f"{line}\n" for line in sorted(names))


def stand_ins_image() -> dict[str, Any]:
    """tests/e2e/stand_ins/Dockerfile built like every image (scripts/images.py: the local
    base, buildah, cached per content); its record."""
    images = images_module()
    constraints = STAND_INS / "constraints.txt"
    text = _constraints()
    if not constraints.is_file() or constraints.read_text(encoding="utf-8") != text:
        constraints.write_text(text, encoding="utf-8")
    image = images.Image(
        folder=str(STAND_INS.relative_to(ROOT)),
        repository=STAND_INS_IMAGE.rsplit(":", 1)[0],
        package="",
        tags=(STAND_INS_IMAGE.rsplit(":", 1)[1],),
    )
    log_dir = images.MANIFEST.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    base = images.manifest()["base"]
    with images._lock("base"):
        base_id = images.ensure_base(base, log_dir)
    record = images.build(image, base_id, base, log_dir, images.code_version())
    return {"archive": record.archive, "references": record.references, "digest": record.digest}


def binary_image(binary: Path, reference: str, *, uid: int = 65532) -> dict[str, Any]:
    """An OCI archive holding `binary` alone as `/<name>` (its entrypoint), run as `uid`,
    cached per binary content under the images cache; its record (archive, references,
    digest) for `image_registry.push`."""
    images = images_module()
    binary = binary.resolve()
    content = hashlib.sha256(binary.read_bytes()).hexdigest()
    key = hashlib.sha256(f"{content} {reference} {uid}".encode()).hexdigest()
    entry = images.CACHE / f"binary-{key}"
    archive, digest_file = entry / "image.oci.tar", entry / "digest"
    if not archive.is_file():
        entry.mkdir(parents=True, exist_ok=True)
        run = images.run
        container = run(["buildah", "from", "scratch"]).strip()
        try:
            run(["buildah", "copy", "--chmod", "0755", container, str(binary), f"/{binary.name}"])
            run(["buildah", "config", "--entrypoint", json.dumps([f"/{binary.name}"]),
                 "--user", f"{uid}:{uid}", "--label", f"{images.KEY_LABEL}={key}",
                 container])  # fmt: skip
            run(["buildah", "commit", "--quiet", container, f"{reference}-{key[:12]}"])
        finally:
            subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
        partial = entry / "image.oci.tar.partial"
        partial.unlink(missing_ok=True)
        run(["buildah", "push", "--quiet", "--digestfile", str(digest_file),
             f"{reference}-{key[:12]}", f"oci-archive:{partial}:{reference}"])  # fmt: skip
        partial.rename(archive)
    return {
        "archive": str(archive),
        "references": [reference],
        "digest": digest_file.read_text(encoding="utf-8").strip(),
    }


def serve_images(
    node_host_ip: str, hosts_dir: Path, state: Path, records: list[dict[str, Any]]
) -> str:
    """A registry on the host's end of the node's veth (`node_host_ip`, a free port) holding
    every record's archive, and containerd hosts files sending each registry host there."""
    registry = registry_module()
    import socket

    with socket.socket() as sock:
        sock.bind((node_host_ip, 0))
        port = int(sock.getsockname()[1])
    address: str = registry.registry_up(state, port, host=node_host_ip)
    registry.push(records, address)
    references = [r for record in records for r in record["references"]]
    registry.write_hosts(hosts_dir, references, address)
    return address


def stop_registry(state: Path) -> None:
    registry_module().registry_down(state)


# --- the stand-ins' objects ---------------------------------------------------------------------


def _restricted_container(name: str, image: str, command: list[str], port: int) -> Manifest:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _deployment(
    name: str, labels: dict[str, str], container: Manifest, volumes: list[Manifest]
) -> Manifest:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": STAND_IN_NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": STAND_IN_UID,
                        "runAsGroup": STAND_IN_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}, *volumes],
                },
            },
        },
    }


def _service(name: str, labels: dict[str, str], ports: dict[str, int]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": STAND_IN_NAMESPACE},
        "spec": {
            "selector": labels,
            "ports": [{"name": n, "port": p, "targetPort": p} for n, p in ports.items()],
        },
    }


def stand_in_objects(documents: list[Manifest]) -> list[Manifest]:
    """moto's S3 server as `minio` and the KFP API stand-in as `ml-pipeline` in `kubeflow`
    (labels and ports from the spec's `object-store` and `kfp-api` endpoints), the KFP seed
    from the rendered Pipelines and PipelineVersions, and the object-store Secrets the
    platform's pods read (an installer creates them; never in git)."""
    seed: dict[str, dict[str, Any]] = {}
    for doc in documents:
        if doc["kind"] == "Pipeline":
            meta = doc["metadata"]
            seed.setdefault(meta["name"], {"namespace": meta["namespace"], "versions": []})
    for doc in documents:
        if doc["kind"] == "PipelineVersion":
            pipeline = doc["spec"]["pipelineName"]
            seed[pipeline]["versions"].append(doc["metadata"]["name"])
    pipelines = [{"name": name, **value} for name, value in sorted(seed.items())]
    s3 = {"app": "minio"}
    kfp = {"app": "ml-pipeline"}
    moto = _restricted_container(
        "s3", STAND_INS_IMAGE, ["moto_server", "-H", "0.0.0.0", "-p", str(S3_PORT)], S3_PORT
    )
    api = _restricted_container(
        "kfp-api",
        STAND_INS_IMAGE,
        ["python", "/app/kfp_api.py", f"--port={KFP_PORT}", "--seed=/etc/kfp/seed.json"],
        KFP_PORT,
    )
    api["volumeMounts"].append({"name": "seed", "mountPath": "/etc/kfp", "readOnly": True})
    objects: list[Manifest] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": STAND_IN_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kfp-api-seed", "namespace": STAND_IN_NAMESPACE},
            "data": {"seed.json": json.dumps({"pipelines": pipelines}, indent=2)},
        },
        _deployment("minio", s3, moto, []),
        _service("minio", s3, {"s3": S3_PORT}),
        _deployment(
            "ml-pipeline", kfp, api, [{"name": "seed", "configMap": {"name": "kfp-api-seed"}}]
        ),
        _service("ml-pipeline", kfp, {"http": KFP_PORT, "grpc": 8887}),
    ]
    secrets = {
        (ref["name"], doc["metadata"]["namespace"])
        for doc in documents
        for ref in _secret_refs(doc)
    }
    for name, namespace in sorted(secrets):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "stringData": {"accesskey": ACCESS_KEY, "secretkey": SECRET_KEY},
            }
        )
    return objects


def _secret_refs(doc: Manifest) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                found.append(node["secretKeyRef"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    if doc["kind"] in ("Deployment", "Job", "InferenceService"):
        walk(doc["spec"])
    return found


def upload_registry(local: Path, s3_url: str, bucket_path: str) -> int:
    """Copy a local model registry directory to `s3://<bucket_path>` on moto (`s3_url`, the
    stand-in pod reached from the host); the number of files."""
    import boto3

    bucket, _, prefix = bucket_path.partition("/")
    client = boto3.client(
        "s3",
        endpoint_url=s3_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    count = 0
    for path in sorted(local.rglob("*")):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(local).as_posix()}"
            client.upload_file(str(path), bucket, key)
            count += 1
    return count


# --- Prometheus as a pod -------------------------------------------------------------------------


def prometheus_pod_objects(config: dict[str, Any], namespace: str) -> list[Manifest]:
    """The Prometheus server as a pod in `namespace` with the labels the rendered
    NetworkPolicies allow to scrape (`monitoring.prometheusPodLabels`), running `config` (the
    operator's, as its config-reloader would hand it over), discovering targets through the
    apiserver with its service account, as the operator's StatefulSet would."""
    labels = {"app.kubernetes.io/name": "prometheus"}
    name = "prometheus-e2e"
    rules = [
        {
            "apiGroups": [""],
            "resources": ["services", "endpoints", "pods"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    container = _restricted_container(
        "prometheus",
        PROMETHEUS_IMAGE,
        [
            "/prometheus",
            "--config.file=/etc/prometheus/prometheus.yaml",
            "--storage.tsdb.path=/tmp/data",
            "--web.listen-address=:9090",
        ],  # fmt: skip
        9090,
    )
    container["volumeMounts"].append({"name": "config", "mountPath": "/etc/prometheus"})
    pod: Manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "serviceAccountName": name,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "fsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": [
                {"name": "tmp", "emptyDir": {}},
                {"name": "config", "configMap": {"name": name}},
            ],
        },
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        },  # fmt: skip
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": rules,
        },  # fmt: skip
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },  # fmt: skip
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"prometheus.yaml": json.dumps(config, indent=1)},
        },
        pod,
    ]


HTTP_CLIENT = """
import json, sys, urllib.error, urllib.request
url, body = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
request = urllib.request.Request(url, data=None if body is None else body.encode(),
                                 headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=20) as response:
        sys.stdout.write(response.read().decode())
except urllib.error.HTTPError as error:
    sys.exit(f"HTTP {error.code}: {error.read().decode()[:300]}")
except OSError as error:
    sys.exit(f"no answer: {error}")
"""
"""Python's urllib inside a pod of the stand-ins image (the probe image's busybox-static `wget`
crashes, and a static binary cannot resolve names through glibc's NSS)."""


def client_pod(name: str, namespace: str, labels: dict[str, str]) -> Manifest:
    """A pod of the stand-ins image (Python) that idles, under Pod Security `restricted`, with
    `labels` (a NetworkPolicy peer's), for `pod_exec_http`."""
    container = _restricted_container("client", STAND_INS_IMAGE, ["sleep", "86400"], 1)
    del container["ports"], container["readinessProbe"]
    pod = _deployment(name, labels, container, [])["spec"]["template"]
    pod["spec"]["terminationGracePeriodSeconds"] = 0
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": pod["spec"],
    }


def pod_exec_http(
    cluster: Cluster, namespace: str, pod: str, url: str, body: Any | None = None
) -> Any:
    """An HTTP request from inside a `client_pod`: GET, or POST `body` as JSON; the JSON answer
    of a 2xx response, else an AssertionError naming the status or the connection error."""
    argv = [url] if body is None else [url, json.dumps(body)]
    result = cluster.kubectl(
        "exec", "-n", namespace, pod, "--", "python", "-c", HTTP_CLIENT, *argv, check=False
    )
    assert result.returncode == 0, f"{url} from {namespace}/{pod}: {result.stderr[-500:]}"
    return json.loads(result.stdout)


def local_prediction(registry: Path, version: str) -> dict[str, Any]:
    """`python -m mlp_serve.smoke` on the local registry, as `make demo` ends: the demo's
    prediction for the typical row, and that row."""
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", "mlp_serve.smoke",
         "--registry", str(registry), "--version", version],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary
