"""Component RBAC that cannot escalate (spec.security calls `check_rbac`).

A rule may not grant what Kubernetes' RBAC good practices list as privilege escalation
(`ESCALATIONS`), nor any wildcard, unless it carries a written `exception` (an annotation on the
Role, builders.role). Writing an object that a controller turns into pods running as a service
account the object names (kinds.CONTROLLERS' `pod_resources`: an Argo Workflow, an
InferenceService, a TrainJob, a KFP run, ...) is writing pods, and is refused the same way.

Every API group, resource and verb must be in canonical form (`RBAC_TOKENS`): Kubernetes matches
them exactly and case-sensitively, so `Secrets`, `PODS/EXEC`, `Escalate` or ` create` grant
nothing, and accepting them would hide what the rule was meant to do. Each problem is
`(spec path, message)`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from platformgen.kinds import CONTROLLERS
from platformgen.spec.model import PlatformSpec, RbacRule

Problem = tuple[str, str]

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
POD_WRITERS = tuple(
    (
        frozenset({group}),
        frozenset(resources),
        WRITE_VERBS,
        f"makes {controller} create pods that run as any service account of the namespace and "
        "mount any Secret",
    )
    for controller, row in CONTROLLERS.items()
    for group, resources in row.pod_resources.items()
)
"""Objects a controller turns into pods (kinds.CONTROLLERS): writing one is writing pods."""
ANY_VERB = frozenset({"*"})
"""A table row that applies whatever the verbs (any grant of the resource)."""
ESCALATIONS: tuple[tuple[frozenset[str], frozenset[str], frozenset[str], str], ...] = (
    # (API groups, resources, verbs that escalate or ANY_VERB, why)
    (
        frozenset({""}),
        frozenset({"pods/exec", "pods/attach", "pods/portforward", "pods/proxy"}),
        ANY_VERB,
        "runs commands in, or connects to, other workloads' containers",
    ),
    (
        frozenset({""}),
        frozenset({"pods/ephemeralcontainers"}),
        ANY_VERB,
        "adds a container (a shell) to a running pod",
    ),
    (frozenset({""}), frozenset({"services/proxy"}), ANY_VERB, "reaches any Service port"),
    (frozenset({""}), frozenset({"nodes/proxy"}), ANY_VERB, "reaches the kubelet API"),
    (
        frozenset({""}),
        frozenset({"serviceaccounts/token"}),
        ANY_VERB,
        "mints tokens of other service accounts",
    ),
    (
        frozenset({""}),
        frozenset({"pods", "replicationcontrollers", "podtemplates"}),
        WRITE_VERBS,
        "creates pods that run as any service account of the namespace and mount any Secret",
    ),
    (
        frozenset({"apps"}),
        frozenset({"deployments", "replicasets", "statefulsets", "daemonsets"}),
        WRITE_VERBS,
        "creates pods that run as any service account of the namespace and mount any Secret",
    ),
    (
        frozenset({"batch"}),
        frozenset({"jobs", "cronjobs"}),
        WRITE_VERBS,
        "creates pods that run as any service account of the namespace and mount any Secret",
    ),
    (
        frozenset({""}),
        frozenset({"persistentvolumes"}),
        WRITE_VERBS,
        "creates hostPath volumes on the nodes",
    ),
    (
        frozenset({""}),
        frozenset({"namespaces"}),
        WRITE_VERBS,
        "changes Pod Security labels or deletes namespaces",
    ),
    (
        frozenset({"networking.k8s.io"}),
        frozenset({"networkpolicies"}),
        WRITE_VERBS,
        "removes the network isolation (default-deny) the platform draws",
    ),
    (
        frozenset({""}),
        frozenset({"resourcequotas", "limitranges", "serviceaccounts"}),
        WRITE_VERBS,
        "removes the quota, limits or identities the platform sets",
    ),
    (
        frozenset({"rbac.authorization.k8s.io"}),
        frozenset({"roles", "rolebindings", "clusterroles", "clusterrolebindings"}),
        WRITE_VERBS,
        "grants permissions to other subjects",
    ),
    (
        frozenset({"admissionregistration.k8s.io"}),
        frozenset(
            {
                "mutatingwebhookconfigurations",
                "validatingwebhookconfigurations",
                "validatingadmissionpolicies",
                "validatingadmissionpolicybindings",
                "mutatingadmissionpolicies",
                "mutatingadmissionpolicybindings",
            }
        ),
        WRITE_VERBS,
        "intercepts or rewrites every object admitted",
    ),
    (
        frozenset({"certificates.k8s.io"}),
        frozenset({"certificatesigningrequests", "certificatesigningrequests/approval"}),
        WRITE_VERBS | {"approve", "sign"},
        "issues client certificates for any identity",
    ),
    *POD_WRITERS,
)
"""What Kubernetes' RBAC good practices (kubernetes.io/docs/concepts/security/rbac-good-practices)
list as privilege escalation, by API group and resource."""
ESCALATING_VERBS = frozenset({"escalate", "bind", "impersonate"})
SECRETS = ("", "secrets")
KUBERNETES_VERBS = frozenset(
    {"get", "list", "watch", "proxy", "use", "approve", "sign", "attest"}
    | WRITE_VERBS
    | ESCALATING_VERBS
)
"""The verbs Kubernetes' own APIs check, all lowercase. Aggregated APIs may check verbs of
their own (Kubeflow Pipelines' `readArtifact`): those are taken as written."""
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
RBAC_TOKENS: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("apiGroups", "an API group", re.compile(rf"^(\*|{_LABEL}(\.{_LABEL})*)?$")),
    ("resources", "a resource", re.compile(rf"^(\*|{_LABEL})(/(\*|{_LABEL}))?$")),
    ("verbs", "a verb", re.compile(r"^(\*|[a-z][A-Za-z]*)$")),
)
"""Canonical API groups (DNS subdomains or ""), resources (lowercase plurals, an optional
/subresource) and verbs (a letter word starting lowercase)."""


def _malformed(field: str, value: str) -> bool:
    pattern = next(p for f, _, p in RBAC_TOKENS if f == field)
    if not pattern.match(value):
        return True
    return field == "verbs" and value != value.lower() and value.lower() in KUBERNETES_VERBS


def rule_escalations(rule: RbacRule) -> list[tuple[str, str]]:
    """`(field, why)` for each grant of `rule` that escalates or reaches credentials."""
    found: list[tuple[str, str]] = []
    for field, values in (
        ("apiGroups", rule.api_groups),
        ("resources", rule.resources),
        ("verbs", rule.verbs),
    ):
        if any("*" in value for value in values):
            found.append((field, "a wildcard grants everything, present and future"))
    for verb in sorted(ESCALATING_VERBS & set(rule.verbs)):
        found.append(("verbs", f"{verb!r} lets the holder exceed its own permissions"))
    verbs = set(rule.verbs)
    for groups, resources, escalating, why in ESCALATIONS:
        granted_verbs = verbs if escalating is ANY_VERB else verbs & escalating
        for resource in sorted(resources & set(rule.resources)):
            if groups & set(rule.api_groups) and granted_verbs:
                found.append(("resources", f"{' '.join(sorted(granted_verbs))} {resource}: {why}"))
    if SECRETS[0] in rule.api_groups and SECRETS[1] in rule.resources:
        if verbs - {"get"} or not rule.resource_names:
            found.append(
                (
                    "resources",
                    "secrets: only `get` of named Secrets (resourceNames) is allowed; anything "
                    "more reads every credential of the namespace",
                )
            )
    return found


def check_rbac(spec: PlatformSpec) -> Iterator[Problem]:
    """Every component `rbac` rule that is malformed, or escalates without an `exception`."""
    for name, c in spec.components.items():
        for i, rule in enumerate(c.rbac):
            for field, what, _ in RBAC_TOKENS:
                values = getattr(rule, {"apiGroups": "api_groups"}.get(field, field))
                for j, value in enumerate(values):
                    if _malformed(field, value):
                        yield (
                            f"components.{name}.rbac[{i}].{field}[{j}]",
                            f"{value!r} is not {what} in canonical form: RBAC matches it exactly "
                            "and case-sensitively, so it grants nothing and hides what the rule "
                            f"means (write {value.strip().lower()!r})",
                        )
            if rule.exception is not None:
                continue
            for field, why in rule_escalations(rule):
                yield (
                    f"components.{name}.rbac[{i}].{field}",
                    f"{why}; state why it is needed in rbac[{i}].exception, or drop it",
                )
