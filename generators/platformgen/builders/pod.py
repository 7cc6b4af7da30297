"""Pod and container sub-structures shared by every workload kind: the secure defaults live here."""

from __future__ import annotations

from typing import Any

from platformgen.naming import standard_labels, volume_name
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
        "imagePullPolicy": "IfNotPresent",
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
