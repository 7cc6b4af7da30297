"""Role and RoleBinding, one pair per namespace a component declares API access in."""

from __future__ import annotations

from itertools import groupby

from platformgen.builders.job import KFP_PERMISSIONS
from platformgen.builders.pod import KFP_API_GROUP
from platformgen.naming import Manifest, metadata
from platformgen.resolve import ComponentView
from platformgen.spec.model import RbacRule


def kfp_rules(view: ComponentView) -> list[RbacRule]:
    """The KFP API permissions of a component that runs a pipeline (builders.job)."""
    c = view.component
    if c.pipeline is None or c.kind not in KFP_PERMISSIONS:
        return []
    namespace = view.spec.pipelines[c.pipeline].namespace
    return [
        RbacRule(namespace=namespace, api_groups=(KFP_API_GROUP,), resources=(r,), verbs=verbs)
        for r, verbs in sorted(KFP_PERMISSIONS[c.kind].items())
    ]


RBAC_EXCEPTION = "platformgen.io/rbac-exception-"
"""Annotation prefix (+ the rule's index in the Role) carrying a rule's written `exception`:
why it grants what spec.security otherwise refuses as privilege escalation."""


def _rule(r: RbacRule) -> Manifest:
    rule: Manifest = {
        "apiGroups": list(r.api_groups),
        "resources": list(r.resources),
        "verbs": list(r.verbs),
    }
    if r.resource_names:
        rule["resourceNames"] = list(r.resource_names)
    return rule


def build_roles(view: ComponentView) -> list[Manifest]:
    c = view.component
    out: list[Manifest] = []
    by_namespace = sorted([*c.rbac, *kfp_rules(view)], key=lambda r: r.namespace)
    for namespace, group in groupby(by_namespace, key=lambda r: r.namespace):
        rules = list(group)
        exceptions = {
            f"{RBAC_EXCEPTION}{i}": r.exception
            for i, r in enumerate(rules)
            if r.exception is not None
        }
        meta = metadata(view.spec, view.name, c.role, namespace, annotations=exceptions or None)
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": meta,
                "rules": [_rule(r) for r in rules],
            }
        )
        out.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": metadata(view.spec, view.name, c.role, namespace),
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": view.name,
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": view.name, "namespace": view.namespace}
                ],
            }
        )
    return out
