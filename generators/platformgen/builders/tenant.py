"""Tenants: one namespace per team, with its quota, limits, RBAC, pipeline service account,
network isolation and KFP launcher configuration (Kubeflow's profiles, declared in the spec)."""

from __future__ import annotations

from typing import Any

from platformgen.builders.namespace import pod_security_labels
from platformgen.builders.network_policy import (
    _endpoint_peer,
    _namespace_peer,
    _pod_peer,
    _ports,
    build_allow_dns,
    build_default_deny,
)
from platformgen.builders.pod import SELECTOR_CHECKS, exception_annotations, resource_list
from platformgen.naming import Manifest, selector_labels, standard_labels
from platformgen.quantity import canonical_bytes, canonical_cpu
from platformgen.spec.model import PlatformSpec, Subjects, Tenant

ROLE = "tenant"
"""app.kubernetes.io/component of every tenant object; app.kubernetes.io/name is the tenant."""
PIPELINE_RUNNER = "pipeline-runner"
"""Service account (and Role) that the tenant's KFP runs use, as in KFP's own manifests."""
LAUNCHER_CONFIG = "kfp-launcher"
"""The ConfigMap KFP v2's launcher reads defaultPipelineRoot from, in the run's namespace."""
RBAC_GROUP = "rbac.authorization.k8s.io"

PIPELINE_RUNNER_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    # Argo's emissary executor watches and annotates its own pod; the register step gets its
    # own pod and lists its run's pods for the image digests they ran (mlp_common.run_images).
    (("",), ("pods",), ("get", "list", "patch", "watch")),
    (("",), ("pods/log",), ("get",)),
    # The KFP v2 launcher reads kfp-launcher and the object-store ConfigMaps.
    (("",), ("configmaps",), ("get", "list", "watch")),
    # Object-store credentials, referenced by name in the run's pod spec.
    (("",), ("secrets",), ("get",)),
    # kfp-kubernetes CreatePvc/DeletePvc steps.
    (("",), ("persistentvolumeclaims",), ("create", "delete", "get")),
    # Argo Workflows (3.4+) records step outputs as WorkflowTaskResults.
    (("argoproj.io",), ("workflowtaskresults",), ("create", "patch")),
)
"""What a KFP v2 run's pods need in their namespace, and nothing more."""


def _metadata(spec: PlatformSpec, tenant: str, name: str, namespaced: bool = True) -> Manifest:
    meta: Manifest = {"labels": standard_labels(spec, tenant, ROLE), "name": name}
    if namespaced:
        meta["namespace"] = tenant
    return meta


def _quota(t: Tenant) -> dict[str, str]:
    q = t.quota
    return {
        "configmaps": str(q.config_maps),
        "limits.cpu": canonical_cpu(str(q.limits_cpu)),
        "limits.memory": canonical_bytes(str(q.limits_memory)),
        "persistentvolumeclaims": str(q.persistent_volume_claims),
        "pods": str(q.pods),
        "requests.cpu": canonical_cpu(str(q.cpu)),
        "requests.memory": canonical_bytes(str(q.memory)),
        "requests.nvidia.com/gpu": str(q.gpu),
        "requests.storage": canonical_bytes(str(q.storage)),
        "secrets": str(q.secrets),
        "services": str(q.services),
    }


def _subjects(subjects: Subjects) -> list[dict[str, str]]:
    return [
        *({"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in sorted(subjects.groups)),
        *({"apiGroup": RBAC_GROUP, "kind": "User", "name": u} for u in sorted(subjects.users)),
    ]


def _role_binding(
    spec: PlatformSpec, tenant: str, name: str, role_kind: str, role: str, subjects: list[Any]
) -> Manifest:
    return {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(spec, tenant, name),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role},
        "subjects": subjects,
    }


def pipeline_root(spec: PlatformSpec, tenant: str) -> str:
    """Where the tenant's pipeline artifacts go (KFP defaultPipelineRoot)."""
    declared = spec.tenancy.tenants[tenant].pipeline_root
    return declared or f"{spec.tenancy.artifact_root.rstrip('/')}/{tenant}/v2/artifacts"


TENANT_PODS = (
    "the tenant's own workloads, which its members create after install, are what this selects"
)


def _policy_metadata(spec: PlatformSpec, tenant: str, name: str) -> Manifest:
    """A tenant NetworkPolicy's metadata: it selects pods no rendered manifest holds."""
    meta = _metadata(spec, tenant, name)
    meta["annotations"] = exception_annotations(
        [(tool, check, TENANT_PODS) for tool, check in SELECTOR_CHECKS["NetworkPolicy"]]
    )
    return meta


def _network_policies(spec: PlatformSpec, tenant: str, t: Tenant) -> list[Manifest]:
    """Default deny, DNS, traffic inside the namespace, and egress to the declared services.
    Ingress from other namespaces stays denied: another tenant can never reach this one."""
    own = _namespace_peer(tenant)  # every pod of the tenant's own namespace
    policies = [
        {
            **build_default_deny(spec, tenant),
            "metadata": _policy_metadata(spec, tenant, "default-deny"),
        },
        {**build_allow_dns(spec, tenant), "metadata": _policy_metadata(spec, tenant, "allow-dns")},
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _policy_metadata(spec, tenant, "allow-same-namespace"),
            "spec": {
                "egress": [{"to": [own]}],
                "ingress": [{"from": [own]}],
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
            },
        },
    ]
    egress = []
    for target in t.uses:
        if target in spec.components:
            component = spec.components[target]
            peer = _pod_peer(component.namespace, selector_labels(spec, target))
            egress.append({"ports": _ports(component.ports), "to": [peer]})
        else:
            endpoint = spec.endpoints[target]
            egress.append({"ports": _ports(endpoint.ports), "to": [_endpoint_peer(endpoint)]})
    if egress:
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _policy_metadata(spec, tenant, "allow-platform-services"),
                "spec": {"egress": egress, "podSelector": {}, "policyTypes": ["Egress"]},
            }
        )
    return policies


def build_tenant(spec: PlatformSpec, tenant: str) -> list[Manifest]:
    """Every object of one tenant, all in its own namespace (except the Namespace itself)."""
    t = spec.tenancy.tenants[tenant]
    namespace_meta = _metadata(spec, tenant, tenant, namespaced=False)
    namespace_meta["labels"] = {**namespace_meta["labels"], **pod_security_labels()}
    if t.description:
        namespace_meta["annotations"] = {"description": t.description}
    limits = t.limits
    limit: dict[str, Any] = {"type": "Container"}
    for key, value in (
        ("default", limits.default),
        ("defaultRequest", limits.default_request),
        ("max", limits.max),
        ("min", limits.min),
    ):
        if resource_list(value):
            limit[key] = resource_list(value)
    objects: list[Manifest] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": namespace_meta},
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _metadata(spec, tenant, "tenant-quota"),
            "spec": {"hard": _quota(t)},
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _metadata(spec, tenant, "tenant-limits"),
            "spec": {"limits": [limit]},
        },
        _role_binding(
            spec, tenant, "tenant-owners", "ClusterRole", t.owner_role, _subjects(t.owners)
        ),
    ]
    if t.members.users or t.members.groups:
        objects.append(
            _role_binding(
                spec, tenant, "tenant-members", "ClusterRole", t.member_role, _subjects(t.members)
            )
        )
    objects += [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _metadata(spec, tenant, PIPELINE_RUNNER),
        },
        {
            "apiVersion": f"{RBAC_GROUP}/v1",
            "kind": "Role",
            "metadata": _metadata(spec, tenant, PIPELINE_RUNNER),
            "rules": [
                {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
                for groups, resources, verbs in PIPELINE_RUNNER_RULES
            ],
        },
        _role_binding(
            spec,
            tenant,
            PIPELINE_RUNNER,
            "Role",
            PIPELINE_RUNNER,
            [{"kind": "ServiceAccount", "name": PIPELINE_RUNNER, "namespace": tenant}],
        ),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _metadata(spec, tenant, LAUNCHER_CONFIG),
            "data": {"defaultPipelineRoot": pipeline_root(spec, tenant)},
        },
        *_network_policies(spec, tenant, t),
    ]
    return objects
