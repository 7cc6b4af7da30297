"""Pod and container sub-structures shared by every workload kind: the secure defaults live here."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from platformgen.kinds import traits
from platformgen.naming import metadata, standard_labels, volume_name
from platformgen.quantity import canonical_bytes, canonical_cpu
from platformgen.resolve import ComponentView
from platformgen.spec.model import Probe, ResourceList
from platformgen.waivers import Waiver
from platformgen.waivers import exception_annotations as exception_annotations  # for builders

_canonical_cpu = lru_cache(maxsize=1024)(canonical_cpu)
_canonical_bytes = lru_cache(maxsize=1024)(canonical_bytes)
"""The same few quantities recur in every component: each is canonicalised once."""


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
        out["cpu"] = _canonical_cpu(str(resources.cpu))
    if resources.memory is not None:
        out["memory"] = _canonical_bytes(str(resources.memory))
    if resources.ephemeral_storage is not None:
        out["ephemeral-storage"] = _canonical_bytes(str(resources.ephemeral_storage))
    return out


def resources(view: ComponentView) -> dict[str, Any]:
    merged = view.resources
    return {"limits": resource_list(merged.limits), "requests": resource_list(merged.requests)}


def probe(p: Probe, ports: dict[str, int]) -> dict[str, Any]:
    """The probe on the port's number, not its name: KServe's agent (Standard mode with a
    logger) and Knative's queue-proxy rewrite the probe as a URL and cannot resolve a name
    (seen on the real node: `invalid port ":http"`, the pod never Ready)."""
    port = ports[p.port]
    action: dict[str, Any] = (
        {"httpGet": {"path": p.path, "port": port}}
        if p.path is not None
        else {"tcpSocket": {"port": port}}
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


def env(view: ComponentView) -> list[dict[str, Any]]:
    """Plain values, and credentials from existing Secrets by name and key, sorted by name."""
    plain: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in view.env.items()]
    secret = [
        {"name": k, "valueFrom": {"secretKeyRef": {"key": ref.key, "name": ref.secret}}}
        for k, ref in view.component.secret_env.items()
    ]
    return sorted(plain + secret, key=lambda e: str(e["name"]))


CONFIG_HASH = "platformgen.io/config-hash"
"""Pod template annotation: sha256 of the component's config, so a config change rolls pods."""


def pod_annotations(view: ComponentView) -> dict[str, str]:
    """Annotations of the component's pods: the hash of its ConfigMap's data, if any."""
    config = view.component.config
    if not config:
        return {}
    canonical = json.dumps(dict(sorted(config.items())), separators=(",", ":"))
    return {CONFIG_HASH: hashlib.sha256(canonical.encode()).hexdigest()}


def container(view: ComponentView, name: str | None = None) -> dict[str, Any]:
    c = view.component
    out: dict[str, Any] = {
        "name": name or view.name,
        "image": view.image,
        "imagePullPolicy": "Always",
        "env": env(view),
        "resources": resources(view),
        "securityContext": container_security_context(view),
        "volumeMounts": [
            {"mountPath": path, "name": volume_name(path)} for path in sorted(c.writable_paths)
        ],
    }
    if calls_kfp_api(view):
        out["volumeMounts"].append(
            {"mountPath": KFP_TOKEN_DIR, "name": KFP_TOKEN_VOLUME, "readOnly": True}
        )
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
            out[kind] = probe(p, {port.name: port.port for port in c.ports})
    return out


SCRATCH_SIZE_LIMIT = "1Gi"
"""Bound on each emptyDir behind a writable path, so a runaway writer cannot fill the node."""


KFP_API_GROUP = "pipelines.kubeflow.org"
"""The KFP API's RBAC group, and the audience its authenticator accepts tokens for."""
KFP_TOKEN_DIR = "/var/run/secrets/kubeflow/pipelines"
KFP_TOKEN_FILE = "token"
"""Where kfp.Client (and the drift monitor) read the KFP API token: the default of
KF_PIPELINES_SA_TOKEN_PATH is <dir>/<file>."""
KFP_TOKEN_PATH_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
"""Where kfp.Client reads the token's path from (kfp.client.KF_PIPELINES_SA_TOKEN_ENV)."""
KFP_TOKEN_VOLUME = "kfp-token"
KFP_TOKEN_SECONDS = 7200
"""Lifetime of the projected token; the kubelet refreshes it at 80% and kfp.Client re-reads the
file per call."""


def calls_kfp_api(view: ComponentView) -> bool:
    """A component that acts on a pipeline (`pipeline`, Jobs and RecurringRuns) or has RBAC on
    pipelines.kubeflow.org calls the KFP API, which authenticates it by a projected
    ServiceAccount token with the audience `pipelines.kubeflow.org`."""
    c = view.component
    return c.pipeline is not None or any(KFP_API_GROUP in rule.api_groups for rule in c.rbac)


def calls_kubernetes_api(view: ComponentView) -> bool:
    """RBAC on anything but the KFP API needs the Kubernetes API token; the KFP API has its own
    projected token (`calls_kfp_api`), so a pod that only talks to KFP mounts no other."""
    return any(set(rule.api_groups) - {KFP_API_GROUP} for rule in view.component.rbac)


def volumes(view: ComponentView) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"emptyDir": {"sizeLimit": SCRATCH_SIZE_LIMIT}, "name": volume_name(path)}
        for path in sorted(view.component.writable_paths)
    ]
    if calls_kfp_api(view):
        token = {
            "audience": KFP_API_GROUP,
            "expirationSeconds": KFP_TOKEN_SECONDS,
            "path": KFP_TOKEN_FILE,
        }
        out.append(
            {"name": KFP_TOKEN_VOLUME, "projected": {"sources": [{"serviceAccountToken": token}]}}
        )
    return out


def pod_labels(view: ComponentView) -> dict[str, str]:
    return standard_labels(view.spec, view.name, view.component.role)


def pod_spec(view: ComponentView, restart_policy: str | None = None) -> dict[str, Any]:
    """Pod spec with the secure defaults; the token is mounted only when RBAC is declared."""
    out: dict[str, Any] = {
        "automountServiceAccountToken": calls_kubernetes_api(view),
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
    meta: dict[str, Any] = {"labels": pod_labels(view)}
    annotations = pod_annotations(view)
    if annotations:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": pod_spec(view, restart_policy)}


WaiverRecord = list[tuple[dict[str, Any], list[Waiver]]]
"""(an object's metadata, the component's waivers written on it), as `workload_metadata` made
them."""

_RECORD: ContextVar[WaiverRecord | None] = ContextVar("platformgen_waivers", default=None)


@contextmanager
def recording_waivers() -> Iterator[WaiverRecord]:
    """Within: every `workload_metadata` is recorded with its waivers, so whoever runs the
    builders learns which objects carry the component's waivers, and which, from the builders
    themselves (never by reading the annotations back)."""
    record: WaiverRecord = []
    token = _RECORD.set(record)
    try:
        yield record
    finally:
        _RECORD.reset(token)


def workload_metadata(
    view: ComponentView, extra_exceptions: list[tuple[str, str, str]] | None = None
) -> dict[str, Any]:
    """Metadata of the pod-owning object, carrying the component's declared policy exceptions
    (and those its kind implies, `extra_exceptions`, unless the spec already declares them)."""
    found = {(tool, check): reason for tool, check, reason in view.policy_exceptions}
    for tool, check, reason in extra_exceptions or []:
        found.setdefault((tool, check), reason)
    exceptions = sorted((tool, check, reason) for (tool, check), reason in found.items())
    meta = metadata(
        view.spec,
        view.name,
        view.component.role,
        view.namespace,
        annotations=exception_annotations(exceptions),
    )
    record = _RECORD.get()
    if record is not None:
        record.append((meta, exceptions))
    return meta


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
    reason = traits(view.component.kind).pods_created_by
    annotations = (
        exception_annotations([(tool, check, reason) for tool, check in SELECTOR_CHECKS[kind]])
        if reason
        else None
    )
    return metadata(
        view.spec, view.name, view.component.role, view.namespace, annotations=annotations
    )
