"""Pod and container sub-structures shared by every workload kind: the secure defaults live here."""

from __future__ import annotations

from typing import Any

from platformgen.naming import metadata, standard_labels, volume_name
from platformgen.quantity import canonical_bytes, canonical_cpu
from platformgen.resolve import ComponentView
from platformgen.spec.model import Probe, ResourceList


def container_security_context(view: ComponentView) -> dict[str, Any]:
    """Restricted Pod Security Standard, plus a read-only root filesystem."""
    uid = view.spec.defaults.run_as_user
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsGroup": uid,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security_context(view: ComponentView) -> dict[str, Any]:
    uid = view.spec.defaults.run_as_user
    return {
        "fsGroup": uid,
        "runAsGroup": uid,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resource_list(resources: ResourceList) -> dict[str, str]:
    out = {}
    if resources.cpu is not None:
        out["cpu"] = canonical_cpu(str(resources.cpu))
    if resources.memory is not None:
        out["memory"] = canonical_bytes(str(resources.memory))
    if resources.ephemeral_storage is not None:
        out["ephemeral-storage"] = canonical_bytes(str(resources.ephemeral_storage))
    return out


def resources(view: ComponentView) -> dict[str, Any]:
    merged = view.resources
    return {"limits": resource_list(merged.limits), "requests": resource_list(merged.requests)}


def probe(p: Probe) -> dict[str, Any]:
    action: dict[str, Any] = (
        {"httpGet": {"path": p.path, "port": p.port}}
        if p.path is not None
        else {"tcpSocket": {"port": p.port}}
    )
    out = {
        **action,
        "failureThreshold": p.failure_threshold,
        "periodSeconds": p.period_seconds,
        "timeoutSeconds": p.timeout_seconds,
    }
    if p.initial_delay_seconds:
        out["initialDelaySeconds"] = p.initial_delay_seconds
    return out


def container(view: ComponentView, name: str | None = None) -> dict[str, Any]:
    c = view.component
    out: dict[str, Any] = {
        "name": name or view.name,
        "image": view.image,
        "imagePullPolicy": "Always",
        "env": [{"name": k, "value": v} for k, v in sorted(view.env.items())],
        "resources": resources(view),
        "securityContext": container_security_context(view),
        "volumeMounts": [
            {"mountPath": path, "name": volume_name(path)} for path in sorted(c.writable_paths)
        ],
    }
    if c.command:
        out["command"] = list(c.command)
    if c.args:
        out["args"] = list(c.args)
    if c.ports:
        out["ports"] = [
            {"containerPort": p.port, "name": p.name, "protocol": p.protocol} for p in c.ports
        ]
    if c.config:
        out["envFrom"] = [{"configMapRef": {"name": view.name}}]
    for kind, p in (
        ("livenessProbe", c.probes.liveness),
        ("readinessProbe", c.probes.readiness),
        ("startupProbe", c.probes.startup),
    ):
        if p is not None:
            out[kind] = probe(p)
    return out


SCRATCH_SIZE_LIMIT = "1Gi"
"""Bound on each emptyDir behind a writable path, so a runaway writer cannot fill the node."""


def volumes(view: ComponentView) -> list[dict[str, Any]]:
    return [
        {"emptyDir": {"sizeLimit": SCRATCH_SIZE_LIMIT}, "name": volume_name(path)}
        for path in sorted(view.component.writable_paths)
    ]


def pod_labels(view: ComponentView) -> dict[str, str]:
    return standard_labels(view.spec, view.name, view.component.role)


def pod_spec(view: ComponentView, restart_policy: str | None = None) -> dict[str, Any]:
    """Pod spec with the secure defaults; the token is mounted only when RBAC is declared."""
    out: dict[str, Any] = {
        "automountServiceAccountToken": bool(view.component.rbac),
        "containers": [container(view)],
        "securityContext": pod_security_context(view),
        "serviceAccountName": view.name,
        "terminationGracePeriodSeconds": view.spec.defaults.termination_grace_period_seconds,
        "volumes": volumes(view),
    }
    if restart_policy is not None:
        out["restartPolicy"] = restart_policy
    return out


def pod_template(view: ComponentView, restart_policy: str | None = None) -> dict[str, Any]:
    return {
        "metadata": {"labels": pod_labels(view)},
        "spec": pod_spec(view, restart_policy),
    }


KUBE_LINTER_IGNORE = "ignore-check.kube-linter.io/"
CHECKOV_SKIP = "checkov.io/skip"
KUBE_SCORE_IGNORE = "kube-score/ignore"
KUBE_SCORE_REASON = "kube-score.platformgen.io/"
"""kube-score's ignore annotation takes bare ids; each id's reason goes in its own annotation."""


def exception_annotations(exceptions: list[tuple[str, str, str]]) -> dict[str, str]:
    """Annotations that waive policy checks, each with its written reason."""
    out: dict[str, str] = {}
    checkov = [(check, reason) for tool, check, reason in exceptions if tool == "checkov"]
    for i, (check, reason) in enumerate(checkov, start=1):
        out[f"{CHECKOV_SKIP}{i}"] = f"{check}={reason}"
    for tool, check, reason in exceptions:
        if tool == "kube-linter":
            out[f"{KUBE_LINTER_IGNORE}{check}"] = reason
    score = [(check, reason) for tool, check, reason in exceptions if tool == "kube-score"]
    if score:
        out[KUBE_SCORE_IGNORE] = ",".join(check for check, _ in score)
        out.update({f"{KUBE_SCORE_REASON}{check}": reason for check, reason in score})
    return out


def workload_metadata(view: ComponentView) -> dict[str, Any]:
    """Metadata of the pod-owning object, carrying the component's declared policy exceptions."""
    return metadata(
        view.spec,
        view.name,
        view.component.role,
        view.namespace,
        annotations=exception_annotations(view.policy_exceptions),
    )


CONTROLLER_MANAGED_PODS = {
    "InferenceService": "KServe creates these pods from the InferenceService",
    "Experiment": "Katib creates these pods for each trial of the Experiment",
    "TrainJob": "Kubeflow Trainer creates these pods (through a JobSet) from the TrainJob",
}
"""Kinds whose pods a controller creates, out of sight of static checks of the manifests."""


SELECTOR_CHECKS = {
    "Service": (("kube-linter", "dangling-service"), ("kube-score", "service-targets-pod")),
    "NetworkPolicy": (
        ("kube-linter", "dangling-networkpolicy"),
        ("kube-score", "networkpolicy-targets-pod"),
    ),
}
"""Per selecting kind, the checks that look for the selected pods among the manifests."""


def selector_metadata(view: ComponentView, kind: str) -> dict[str, Any]:
    """Metadata of an object selecting the component's pods (Service, NetworkPolicy): where a
    controller creates those pods, static checks cannot see them; say so, with why."""
    reason = CONTROLLER_MANAGED_PODS.get(view.component.kind)
    annotations = (
        exception_annotations([(tool, check, reason) for tool, check in SELECTOR_CHECKS[kind]])
        if reason
        else None
    )
    return metadata(
        view.spec, view.name, view.component.role, view.namespace, annotations=annotations
    )
