"""Tenants: one namespace per team, with its quota, limits, RBAC, pipeline service account,
network isolation and KFP launcher configuration (Kubeflow's profiles, declared in the spec)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import yaml

from platformgen.builders.namespace import RETENTION_ANNOTATIONS, pod_security_labels
from platformgen.builders.network_policy import (
    _endpoint_peer,
    _namespace_peer,
    _pod_peer,
    _ports,
    build_allow_dns,
    build_default_deny,
    kubernetes_api_rule,
    serving_port_list,
)
from platformgen.builders.pod import SELECTOR_CHECKS, exception_annotations, resource_list
from platformgen.naming import Manifest, selector_labels, standard_labels
from platformgen.quantity import canonical_bytes, canonical_cpu
from platformgen.spec.model import Pipeline, PlatformSpec, Subjects, Tenant

ROLE = "tenant"
"""app.kubernetes.io/component of every tenant object; app.kubernetes.io/name is the tenant."""
PIPELINE_RUNNER = "pipeline-runner"
"""Service account (and Role) that the tenant's KFP runs use, as in KFP's own manifests."""
LAUNCHER_CONFIG = "kfp-launcher"
"""The ConfigMap KFP v2's launcher reads defaultPipelineRoot from, in the run's namespace."""
RBAC_GROUP = "rbac.authorization.k8s.io"
RUN_POD_LABELS: dict[str, str] = Pipeline.model_fields["run_pod_labels"].default
"""Labels KFP puts on the pods of a v2 run, in a tenant as in a pipeline namespace."""

PIPELINE_RUNNER_RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    # Argo's emissary executor watches and annotates its own pod; the register step gets its
    # own pod and lists its run's pods for the image digests they ran (mlp_common.run_images).
    (("",), ("pods",), ("get", "list", "patch", "watch")),
    (("",), ("pods/log",), ("get",)),
    # The KFP v2 launcher reads kfp-launcher and the object-store ConfigMaps.
    (("",), ("configmaps",), ("get", "list", "watch")),
    # kfp-kubernetes CreatePvc/DeletePvc steps.
    (("",), ("persistentvolumeclaims",), ("create", "delete", "get")),
    # Argo Workflows (3.4+) records step outputs as WorkflowTaskResults.
    (("argoproj.io",), ("workflowtaskresults",), ("create", "patch")),
)
"""What a KFP v2 run's pods need in their namespace, and nothing more."""


READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete", "deletecollection")
KFP_VERBS: tuple[str, ...] = (
    *("archive", "disable", "enable", "readArtifact"),
    *("reportMetrics", "retry", "terminate", "unarchive"),
)
"""Verbs the KFP API server asks the apiserver about (SubjectAccessReview), besides CRUD."""
KFP_RESOURCES = ("experiments", "jobs", "pipelines", "pipelineversions", "recurringruns", "runs")
"""What the KFP API server authorizes (`jobs` are recurring runs in KFP v1 terms)."""
Rule = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
"""(apiGroups, resources, verbs)."""

TENANT_RULES: dict[str, tuple[Rule, ...]] = {
    "view": (
        (
            ("",),
            (
                "configmaps",
                "endpoints",
                "events",
                "limitranges",
                "persistentvolumeclaims",
                "pods",
                "pods/log",
                "resourcequotas",
                "serviceaccounts",
                "services",
            ),
            READ,
        ),
        (("apps",), ("deployments", "replicasets", "statefulsets"), READ),
        (("autoscaling",), ("horizontalpodautoscalers",), READ),
        (("batch",), ("cronjobs", "jobs"), READ),
        (("events.k8s.io",), ("events",), READ),
        (("networking.k8s.io",), ("networkpolicies",), READ),
        (("policy",), ("poddisruptionbudgets",), READ),
        (("rbac.authorization.k8s.io",), ("rolebindings", "roles"), READ),
        (("argoproj.io",), ("workflows",), READ),
        (("kubeflow.org",), ("experiments", "suggestions", "trials"), READ),
        (("pipelines.kubeflow.org",), KFP_RESOURCES, (*READ, "readArtifact")),
        (("serving.kserve.io",), ("inferenceservices",), READ),
        (("trainer.kubeflow.org",), ("trainjobs",), READ),
    ),
    "edit": (
        (("",), ("configmaps", "persistentvolumeclaims", "pods", "services"), WRITE),
        (("apps",), ("deployments", "statefulsets"), WRITE),
        (("autoscaling",), ("horizontalpodautoscalers",), WRITE),
        (("batch",), ("cronjobs", "jobs"), WRITE),
        (("policy",), ("poddisruptionbudgets",), WRITE),
        (("kubeflow.org",), ("experiments",), WRITE),
        (("pipelines.kubeflow.org",), KFP_RESOURCES, (*WRITE, *KFP_VERBS)),
        (("serving.kserve.io",), ("inferenceservices",), WRITE),
        (("trainer.kubeflow.org",), ("trainjobs",), WRITE),
    ),
    "admin": (
        # Who else gets access: the apiserver lets an owner bind only roles whose permissions
        # the owner holds (RBAC escalation prevention), so never more than admin.
        (("rbac.authorization.k8s.io",), ("rolebindings",), WRITE),
        # The tenant's credentials (its object-store Secret): create only. get, update,
        # patch and delete all return the stored Secret, so none of them is granted.
        (("",), ("secrets",), ("create",)),
    ),
}
"""What each platform tenant role adds to the one below it (view < edit < admin). No role
reads Secrets, writes NetworkPolicies, ResourceQuotas, LimitRanges, ServiceAccounts or Roles,
or reaches pods/exec, attach, portforward or serviceaccounts/token: tenants cannot undo the
isolation the platform draws, nor act as its service accounts."""
TENANT_ROLE_LEVELS = ("view", "edit", "admin")
AGGREGATE_LABEL = "platformgen.io/aggregate-to-tenant-"
"""+ role: the label (value: the platform's name) that aggregates a ClusterRole's rules into
that tenant role, as Kubeflow's `aggregate-to-kubeflow-edit`: another component can extend
a tenant role by labelling its own ClusterRole."""


def tenant_role_name(spec: PlatformSpec, role: str) -> str:
    """The ClusterRole of platform tenant role `role` (admin, edit, view)."""
    return f"{spec.platform.name}-tenant-{role}"


def build_tenant_roles(spec: PlatformSpec) -> list[Manifest]:
    """The platform's tenant roles: per level an aggregated ClusterRole, filled by the
    controller-manager from every ClusterRole labelled for that level or a lower one, and
    one ClusterRole (`-rules`) holding the level's own rules. Empty without tenants."""
    if not spec.tenancy.tenants:
        return []
    out: list[Manifest] = []
    for i, role in enumerate(TENANT_ROLE_LEVELS):
        name = tenant_role_name(spec, role)
        labels = standard_labels(spec, name, ROLE)
        out.append(
            {
                "aggregationRule": {
                    "clusterRoleSelectors": [
                        {"matchLabels": {f"{AGGREGATE_LABEL}{level}": spec.platform.name}}
                        for level in TENANT_ROLE_LEVELS[: i + 1]
                    ]
                },
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "ClusterRole",
                "metadata": {"labels": labels, "name": name},
            }
        )
        out.append(
            {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "ClusterRole",
                "metadata": {
                    "labels": {
                        **standard_labels(spec, f"{name}-rules", ROLE),
                        f"{AGGREGATE_LABEL}{role}": spec.platform.name,
                    },
                    "name": f"{name}-rules",
                },
                "rules": [
                    {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
                    for groups, resources, verbs in TENANT_RULES[role]
                ],
            }
        )
    return out


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
    return spec.tenancy.pipeline_root(tenant)


PROVIDERS = {"s3://": "s3", "minio://": "minio"}
"""Pipeline-root schemes whose credentials the KFP launcher takes from `providers`."""


def launcher_config(spec: PlatformSpec, tenant: str) -> dict[str, str]:
    """kfp-launcher's data: the tenant's pipeline root and, for an S3-compatible root, the
    provider config that makes its runs use the tenant's own Secret (KFP's launcher otherwise
    falls back to the platform's `mlpipeline-minio-artifact` credentials)."""
    root = pipeline_root(spec, tenant)
    data = {"defaultPipelineRoot": root}
    provider = next((p for scheme, p in PROVIDERS.items() if root.startswith(scheme)), None)
    if provider is None:
        return data
    endpoint = urlsplit(spec.tenancy.object_store_endpoint)
    credentials = spec.tenancy.tenants[tenant].object_store
    config = {
        provider: {
            "default": {
                "credentials": {
                    "fromEnv": False,
                    "secretRef": {
                        "accessKeyKey": credentials.access_key_key,
                        "secretKeyKey": credentials.secret_key_key,
                        "secretName": credentials.secret,
                    },
                },
                "disableSSL": endpoint.scheme == "http",
                "endpoint": endpoint.netloc,
                "region": "us-east-1",
            }
        }
    }
    data["providers"] = yaml.safe_dump(config, sort_keys=True)
    return data


TENANT_PODS = (
    "the tenant's own workloads, which its members create after install, are what this selects"
)


RUN_PODS = "Kubeflow Pipelines creates the tenant's run pods this policy selects"


def _policy_metadata(
    spec: PlatformSpec, tenant: str, name: str, reason: str = TENANT_PODS
) -> Manifest:
    """A tenant NetworkPolicy's metadata: it selects pods no rendered manifest holds."""
    meta = _metadata(spec, tenant, name)
    meta["annotations"] = exception_annotations(
        [(tool, check, reason) for tool, check in SELECTOR_CHECKS["NetworkPolicy"]]
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
            egress.append({"ports": serving_port_list(component), "to": [peer]})
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
    api = kubernetes_api_rule(spec)
    if api is not None:  # the tenant's KFP run pods (pipeline-runner) call the API server
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _policy_metadata(
                    spec, tenant, "allow-pipeline-runs-kubernetes-api", RUN_PODS
                ),
                "spec": {
                    "egress": [api],
                    "podSelector": {"matchLabels": dict(RUN_POD_LABELS)},
                    "policyTypes": ["Egress"],
                },
            }
        )
    return policies


def build_tenant(spec: PlatformSpec, tenant: str) -> list[Manifest]:
    """Every object of one tenant, all in its own namespace (except the Namespace itself)."""
    t = spec.tenancy.tenants[tenant]
    namespace_meta = _metadata(spec, tenant, tenant, namespaced=False)
    namespace_meta["labels"] = {**namespace_meta["labels"], **pod_security_labels()}
    namespace_meta["annotations"] = dict(RETENTION_ANNOTATIONS)
    if t.description:
        namespace_meta["annotations"]["description"] = t.description
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
            spec,
            tenant,
            "tenant-owners",
            "ClusterRole",
            tenant_role_name(spec, t.owner_role),
            _subjects(t.owners),
        ),
    ]
    if t.members.users or t.members.groups:
        objects.append(
            _role_binding(
                spec,
                tenant,
                "tenant-members",
                "ClusterRole",
                tenant_role_name(spec, t.member_role),
                _subjects(t.members),
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
                *(
                    {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
                    for groups, resources, verbs in PIPELINE_RUNNER_RULES
                ),
                # The launcher reads the tenant's own object-store credentials, and only those.
                {
                    "apiGroups": [""],
                    "resourceNames": [t.object_store.secret],
                    "resources": ["secrets"],
                    "verbs": ["get"],
                },
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
            "data": launcher_config(spec, tenant),
        },
        *_network_policies(spec, tenant, t),
    ]
    return objects
