"""The image digests the steps of a KFP run actually ran, read from their pods' status.

The PipelineVersion pins each step's image (a digest in prod, a tag in dev), but only the kubelet
knows what it pulled: ``status.containerStatuses[].imageID`` of the pod. The downward API does not
expose that field, and KFP v2 tells a step nothing about its image. It does give the executor
container its pod's name (``KFP_POD_NAME``, downward API ``metadata.name``), and the run's pods
run as the pipeline runner ServiceAccount with its Kubernetes API token mounted (Argo's executor
needs it). So the register step reads its own pod, takes its Argo workflow label, lists the pods
of that workflow, and maps each step's pinned reference (the PipelineVersion's ``images`` input)
to the ``imageID`` the kubelet reported for the executor container (``main``) of the pods that
ran it. That needs ``get`` and ``list`` on pods in the run's namespace (platformgen's
pipeline-runner Role, builders.tenant). A step with no pod in this run (a KFP cache hit) records
None; when the API cannot be read, the reason is recorded instead of digests. Outside a cluster
(kfp.local) there are no images: the record says ``local`` and the checkout's code version.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from mlp_common.provenance import on_cluster, recorded_code_version

log = logging.getLogger(__name__)

POD_NAME_ENV = "KFP_POD_NAME"
"""KFP v2's executor container gets its pod's name here (downward API ``metadata.name``)."""
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
EXECUTOR_CONTAINER = "main"
"""The container Argo names the step's (KFP's executor) container."""
WORKFLOW_LABEL = "workflows.argoproj.io/workflow"
"""Argo's label on every pod of a workflow (one KFP run)."""


class PodReader(Protocol):
    def get(self, path: str) -> Any:
        """The JSON document at ``path`` of the Kubernetes API."""
        ...


def digests_by_reference(pods: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Image reference in the executor container's spec -> the imageID the kubelet reported."""
    found: dict[str, str] = {}
    for pod in pods:
        specs = {c.get("name"): c.get("image") for c in pod.get("spec", {}).get("containers", [])}
        reference = specs.get(EXECUTOR_CONTAINER)
        for status in pod.get("status", {}).get("containerStatuses", []) or []:
            if status.get("name") == EXECUTOR_CONTAINER and status.get("imageID") and reference:
                found[str(reference)] = str(status["imageID"])
    return found


def used_digests(
    images: Mapping[str, str], pods: Iterable[Mapping[str, Any]]
) -> dict[str, str | None]:
    """Step -> the imageID its pod ran (None: no pod of this run ran it, e.g. a cache hit)."""
    found = digests_by_reference(pods)
    return {step: found.get(reference) for step, reference in sorted(images.items())}


class KubernetesApi:
    """GETs on the Kubernetes API with the pod's ServiceAccount token (read on every call: the
    kubelet rotates it) and the cluster CA."""

    def __init__(self, base_url: str, account_dir: Path = SERVICE_ACCOUNT_DIR) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_dir = account_dir

    @classmethod
    def in_cluster(cls) -> KubernetesApi:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        return cls(f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}")

    def get(self, path: str) -> Any:
        token = (self.account_dir / "token").read_text(encoding="utf-8").strip()
        request = urllib.request.Request(
            self.base_url + path,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        context = None
        if self.base_url.startswith("https:"):
            context = ssl.create_default_context(cafile=str(self.account_dir / "ca.crt"))
        with urllib.request.urlopen(request, timeout=30, context=context) as response:  # noqa: S310
            return json.load(response)


def run_image_digests(
    images: Mapping[str, str],
    api: PodReader | None = None,
    pod_name: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """What this run's steps ran, for the version's lineage (see the module docstring)."""
    if api is None and not on_cluster():
        return {"source": "local", "code_version": recorded_code_version()}
    pod_name = pod_name or os.environ.get(POD_NAME_ENV)
    if not pod_name:
        reason = f"${POD_NAME_ENV} is not set (not a KFP v2 step's pod)"
        log.warning("image digests of this run not recorded: %s", reason)
        return {"source": "unavailable", "reason": reason}
    try:
        if namespace is None:
            namespace = (SERVICE_ACCOUNT_DIR / "namespace").read_text(encoding="utf-8").strip()
        reader = api or KubernetesApi.in_cluster()
        where = f"/api/v1/namespaces/{urllib.parse.quote(namespace, safe='')}/pods"
        own = reader.get(f"{where}/{urllib.parse.quote(pod_name, safe='')}")
        workflow = own["metadata"]["labels"][WORKFLOW_LABEL]
        selector = urllib.parse.urlencode({"labelSelector": f"{WORKFLOW_LABEL}={workflow}"})
        pods = reader.get(f"{where}?{selector}")["items"]
    except (OSError, KeyError, TypeError, ValueError, urllib.error.URLError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        log.warning("image digests of this run not recorded: %s", reason)
        return {"source": "unavailable", "reason": reason}
    return {
        "source": "pod status",
        "namespace": namespace,
        "workflow": workflow,
        "digests": used_digests(images, pods),
    }
