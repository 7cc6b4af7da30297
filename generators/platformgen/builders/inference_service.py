"""KServe InferenceService (serving.kserve.io/v1beta1) with a custom predictor container."""

from __future__ import annotations

from typing import Any

from platformgen.builders.pod import (
    container,
    pod_labels,
    pod_security_context,
    volumes,
    workload_metadata,
)
from platformgen.naming import Manifest
from platformgen.resolve import ComponentView

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
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": workload_metadata(view),
        "spec": {"predictor": predictor},
    }
