"""The workloads controllers derive from our custom resources, as the end-to-end and policy
checks need them where no such controller runs: a KServe predictor's Deployment (with Knative's
queue-proxy in Knative mode), a Katib trial's Job (with its metrics collector), the Indexed Job
JobSet runs for a Kubeflow Trainer TrainingRuntime. Pod Security judges every template."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

Manifest = dict[str, Any]


# InferenceService predictor fields that are KServe's, not the Pod's.
KSERVE_COMPONENT_FIELDS = frozenset(
    {
        "annotations",
        "autoScaling",
        "batcher",
        "canaryTrafficPercent",
        "containerConcurrency",
        "deploymentStrategy",
        "labels",
        "logger",
        "maxReplicas",
        "minReplicas",
        "scaleMetric",
        "scaleMetricType",
        "scaleTarget",
        "timeout",
    }
)
DERIVED_LABEL = "e2e.platformgen/derived-from"


QUEUE_PROXY_ANNOTATION = "queue.sidecar.serving.knative.dev/"
QUEUE_PROXY_IMAGE = "knative-serving-queue-from-config-deployment@sha256:" + "0" * 64
"""Placeholder: the real reference is Knative's `queue-sidecar-image` (config-deployment,
pinned by digest in Knative's release manifests); only its shape matters to the gates."""


def queue_proxy(annotations: dict[str, str]) -> Manifest:
    """The sidecar Knative adds to every Knative pod (knative.dev/serving
    pkg/reconciler/revision/resources/queue.go): its ports, its restricted security context,
    and the requests/limits our `queue.sidecar.serving.knative.dev/*` annotations set."""
    resources: dict[str, dict[str, str]] = {"limits": {}, "requests": {}}
    for key, value in annotations.items():
        if key.startswith(QUEUE_PROXY_ANNOTATION) and key.endswith(("-request", "-limit")):
            resource, _, kind = key.removeprefix(QUEUE_PROXY_ANNOTATION).rpartition("-resource-")
            resources["requests" if kind == "request" else "limits"][resource] = value
    return {
        "name": "queue-proxy",
        "image": QUEUE_PROXY_IMAGE,
        "imagePullPolicy": "Always",
        "ports": [
            {"containerPort": 8022, "name": "http-queueadm", "protocol": "TCP"},
            {"containerPort": 9090, "name": "http-autometric", "protocol": "TCP"},
            {"containerPort": 9091, "name": "http-usermetric", "protocol": "TCP"},
            {"containerPort": 8012, "name": "queue-port", "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {
                "path": "/",
                "port": 8012,
                "httpHeaders": [{"name": "K-Network-Probe", "value": "queue"}],
            },
            "periodSeconds": 10,
        },
        "resources": resources,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


KATIB_COLLECTOR_IMAGE = "katib-file-metrics-collector-from-katib-config@sha256:" + "0" * 64
"""Placeholder: the real reference is katib-config's metricsCollectors image."""


def katib_metrics_collector(primary: Manifest) -> Manifest:
    """The sidecar Katib's pod webhook injects into each trial pod (katib v0.19.0
    pkg/webhook/v1beta1/pod/inject_webhook.go): katib-config's default resources
    (apis/config/v1beta1/defaults.go), katib-config's `imagePullPolicy` (which we require to
    be Always) and, with katib-config `injectSecurityContext: true` (which a `restricted`
    namespace requires), a copy of the primary container's securityContext."""
    return {
        "name": "metrics-logger-and-collector",
        "image": KATIB_COLLECTOR_IMAGE,
        "imagePullPolicy": "Always",
        "resources": {
            "limits": {"cpu": "500m", "ephemeral-storage": "5Gi", "memory": "100Mi"},
            "requests": {"cpu": "50m", "ephemeral-storage": "500Mi", "memory": "10Mi"},
        },
        "securityContext": copy.deepcopy(primary.get("securityContext", {})),
    }


def derived_workloads(doc: Manifest) -> list[Manifest]:
    """The workload a controller would create from a custom resource's pod template, derived
    from the rendered object: for a KServe predictor a Deployment (Standard:
    `<name>-predictor`; Knative: Knative's `<name>-predictor-00001-deployment`, with the
    queue-proxy sidecar Knative adds), a Job for a Katib trial, the
    Indexed Job of a Kubeflow Trainer TrainingRuntime's `node` replicated job."""
    meta = doc["metadata"]
    name, namespace = meta["name"], meta.get("namespace", "")
    if doc["kind"] == "InferenceService":
        predictor = doc["spec"]["predictor"]
        pod_spec = {k: v for k, v in predictor.items() if k not in KSERVE_COMPONENT_FIELDS}
        labels = {**predictor.get("labels", {}), DERIVED_LABEL: name}
        mode = meta.get("annotations", {}).get("serving.kserve.io/deploymentMode")
        deployment = f"{name}-predictor"
        if mode == "Knative":
            deployment = f"{name}-predictor-00001-deployment"
            pod_spec = copy.deepcopy(pod_spec)
            pod_spec["containers"].append(queue_proxy(predictor.get("annotations", {})))
        return [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": deployment, "namespace": namespace},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {DERIVED_LABEL: name}},
                    "template": {"metadata": {"labels": labels}, "spec": pod_spec},
                },
            }
        ]
    if doc["kind"] == "Experiment":
        trial = doc["spec"]["trialTemplate"]["trialSpec"]
        assert trial["kind"] == "Job", f"Experiment {name}: trials of kind {trial['kind']}"
        # Substitute every ${trialParameters.x} as Katib would, with a placeholder value.
        text = re.sub(r"\$\{trialParameters\.[A-Za-z0-9_]+\}", "1", json.dumps(trial))
        job = json.loads(text)
        job["metadata"] = {"name": f"{name}-trial", "namespace": namespace}
        collector = doc["spec"].get("metricsCollectorSpec", {}).get("collector", {}).get("kind")
        if collector in ("StdOut", "File", "TfEvent", "PrometheusMetric"):
            pod = job["spec"]["template"]["spec"]
            pod["containers"].append(katib_metrics_collector(pod["containers"][0]))
        return [job]
    if doc["kind"] == "TrainingRuntime":
        # JobSet (for Kubeflow Trainer) runs replicated job `node` as the Indexed Job
        # <trainjob>-node-0 with numNodes pods.
        nodes = doc["spec"]["mlPolicy"]["numNodes"]
        replicated = doc["spec"]["template"]["spec"]["replicatedJobs"][0]
        job_spec = {
            **replicated["template"]["spec"],
            "completionMode": "Indexed",
            "completions": nodes,
            "parallelism": nodes,
        }
        meta = {"name": f"{name}-{replicated['name']}-0", "namespace": namespace}
        return [{"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": job_spec}]
    return []
