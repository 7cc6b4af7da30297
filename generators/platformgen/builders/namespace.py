"""Namespaces, enforcing the Pod Security Standard `restricted`."""

from __future__ import annotations

from platformgen.naming import MANAGED_BY, MANAGED_BY_LABEL, PART_OF, Manifest
from platformgen.spec.model import PlatformSpec

POD_SECURITY_LEVEL = "restricted"
KATIB_INJECTION = "katib.kubeflow.org/metrics-collector-injection"
"""Katib injects its metrics collector into trial pods only in namespaces with this label."""


RETENTION_ANNOTATIONS = {
    # Argo CD: prune only after a person confirms, never delete with the Application.
    "argocd.argoproj.io/sync-options": "Prune=confirm,Delete=false",
    # Helm: `helm uninstall` and an upgrade that drops it leave it in place.
    "helm.sh/resource-policy": "keep",
}
"""On every Namespace: deleting one deletes everything in it (a tenant's Secrets, volumes and
runs), so no tool deletes it as a side effect of a spec edit or an uninstall; removing a
namespace for good is a deliberate `kubectl delete namespace`."""


def pod_security_labels() -> dict[str, str]:
    """Pod Security admission enforces, audits and warns at `restricted`."""
    return {
        "pod-security.kubernetes.io/audit": POD_SECURITY_LEVEL,
        "pod-security.kubernetes.io/enforce": POD_SECURITY_LEVEL,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": POD_SECURITY_LEVEL,
    }


def build_namespace(spec: PlatformSpec, name: str) -> Manifest:
    labels = {
        **spec.namespaces[name],
        MANAGED_BY_LABEL: MANAGED_BY,
        PART_OF: spec.platform.part_of,
        **pod_security_labels(),
    }
    if any(c.kind == "Experiment" and c.namespace == name for c in spec.components.values()):
        labels[KATIB_INJECTION] = "enabled"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"annotations": dict(RETENTION_ANNOTATIONS), "labels": labels, "name": name},
    }
