"""KServe InferenceService (serving.kserve.io/v1beta1) with a custom predictor container."""

from __future__ import annotations

from typing import Any

from platformgen.builders.pod import (
    container,
    pod_annotations,
    pod_labels,
    pod_security_context,
    volumes,
    workload_metadata,
)
from platformgen.naming import Manifest
from platformgen.resolve import ComponentView
from platformgen.spec.model import Component

DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
"""KServe's per-InferenceService choice of Knative or Standard (its v0.15+ names); set from the
spec, never left to the cluster-wide default in inferenceservice-config."""
QUEUE_PROXY_PORT = 8012
"""Knative mode: Knative's queue-proxy sidecar receives the traffic on this port and forwards it
to the predictor container's port inside the pod."""
AGENT_PORT = 9081
"""Standard mode with a payload logger: KServe adds its agent sidecar, and its Service sends the
traffic to the agent's port (KServe's InferenceServiceDefaultAgentPort), which logs each request
and forwards it to the predictor container's port inside the pod (found on a real node)."""
KNATIVE_ACTIVATOR = ("knative-serving", {"app": "activator"})
"""Knative mode: Knative's activator proxies requests to the pods while they scale from zero or
under a burst, so it connects to the queue-proxy port too (namespace, pod labels)."""
QUEUE_PROXY_RESOURCES = {
    "cpu-resource-request": "25m",
    "cpu-resource-limit": "500m",
    "memory-resource-request": "64Mi",
    "memory-resource-limit": "256Mi",
    "ephemeral-storage-resource-request": "64Mi",
    "ephemeral-storage-resource-limit": "256Mi",
}
"""Knative mode: requests and limits of the queue-proxy sidecar Knative adds to every pod, set
through Knative's per-revision annotations so the sidecar is bounded like our containers."""
QUEUE_PROXY_ANNOTATION = "queue.sidecar.serving.knative.dev/"
QUEUE_PROXY_PROBES = (
    "checkov",
    "CKV_K8S_8",
    "Knative's queue-proxy sidecar in Knative-mode pods has a readiness probe only (Knative's "
    "choice); the predictor container has its liveness probe",
)
KSERVE_CONTAINER = "kserve-container"
"""KServe requires this name for the predictor's main container."""
STABLE_MODEL_ANNOTATION = "platformgen.io/stable-model"
"""InferenceService annotation: the registry version the environment pins for the stable share
(`environments.<env>.components.<name>.model.version`)."""
CANARY_MODEL_ANNOTATION = "platformgen.io/canary-model"
"""InferenceService annotation: the registry version the canary serves, and its share."""


def serving_ports(c: Component) -> list[tuple[int, str]]:
    """(port, protocol) on which clients reach the component's pods: for a Knative
    InferenceService that is the queue-proxy port, which forwards to the container's port
    inside the pod; for a Standard one with a payload logger, KServe's agent port; otherwise
    the component's own ports."""
    if c.kind == "InferenceService" and c.deployment_mode == "Knative":
        return [(QUEUE_PROXY_PORT, "TCP")]
    if c.kind == "InferenceService" and c.payload_logger is not None:
        return [(AGENT_PORT, "TCP")]
    return [(p.port, p.protocol) for p in c.ports]


def has_own_service_name(c: Component) -> bool:
    """False where KServe creates a Service with the component's name (Knative)."""
    return not (c.kind == "InferenceService" and c.deployment_mode == "Knative")


def model_annotations(view: ComponentView) -> dict[str, str]:
    """What `kubectl get isvc -o yaml` and Argo CD show of the rollout. The predictor itself
    pins the version the newest revision serves (MLP_MODEL_VERSION: the canary's while a canary
    is set); with `canaryTrafficPercent`, KServe keeps the previously rolled-out revision, which
    serves the stable version, for the rest of the traffic."""
    model = view.component.model
    if model is None:
        return {}
    out = {}
    if view.override.model is not None:
        out[STABLE_MODEL_ANNOTATION] = f"{model.name} version {view.override.model.version}"
    canary = view.override.canary
    if canary is not None and canary.version is not None:
        out[CANARY_MODEL_ANNOTATION] = (
            f"{model.name} version {canary.version} takes {canary.traffic_percent}% of requests"
        )
    return out


def build_inference_service(view: ComponentView) -> Manifest | None:
    c = view.component
    if c.kind != "InferenceService":
        return None
    predictor: dict[str, Any] = {
        "automountServiceAccountToken": bool(c.rbac),
        "containers": [container(view, name=KSERVE_CONTAINER)],
        "labels": pod_labels(view),
        "minReplicas": view.replicas,
        "securityContext": pod_security_context(view),
        "serviceAccountName": view.name,
        "volumes": volumes(view),
    }
    logger = c.payload_logger
    if logger is not None:
        sink = view.spec.components[logger.sink]
        host = f"{logger.sink}.{sink.namespace}.svc.cluster.local"
        predictor["logger"] = {
            "mode": logger.mode,
            "url": f"http://{host}:{sink.ports[0].port}{logger.path}",
        }
    if view.override.canary is not None:
        predictor["canaryTrafficPercent"] = view.override.canary.traffic_percent
    annotations = pod_annotations(view)
    if c.deployment_mode == "Knative":
        annotations.update(
            {f"{QUEUE_PROXY_ANNOTATION}{k}": v for k, v in QUEUE_PROXY_RESOURCES.items()}
        )
    if annotations:
        predictor["annotations"] = annotations
    implied = [QUEUE_PROXY_PROBES] if c.deployment_mode == "Knative" else []
    metadata = workload_metadata(view, extra_exceptions=implied)
    metadata.setdefault("annotations", {})[DEPLOYMENT_MODE] = c.deployment_mode
    metadata["annotations"].update(model_annotations(view))
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }
