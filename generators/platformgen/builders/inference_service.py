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

DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
"""KServe's per-InferenceService choice of Serverless (Knative) or RawDeployment; set from the
spec, never left to the cluster-wide default in inferenceservice-config."""
QUEUE_PROXY_PORT = 8012
"""Serverless: Knative's queue-proxy sidecar receives the traffic on this port and forwards it
to the predictor container's port inside the pod."""
KSERVE_CONTAINER = "kserve-container"
"""KServe requires this name for the predictor's main container."""


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
    if annotations:
        predictor["annotations"] = annotations
    metadata = workload_metadata(view)
    metadata.setdefault("annotations", {})[DEPLOYMENT_MODE] = c.deployment_mode
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }
