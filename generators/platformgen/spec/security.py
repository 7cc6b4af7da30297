"""Security rules over the whole spec: what a spec may not do to the cluster it deploys to.

Each rule is a general class, not a list of examples; each problem is `(spec path, message)`:

- **Reserved namespaces.** No platform namespace, pipeline or RBAC namespace and no tenant is a
  namespace the cluster's infrastructure owns: `default`, `kube-*`, the GitOps namespace, the
  namespace of every in-cluster endpoint, Prometheus' namespace and the install namespace of
  every controller the platform integrates with (kinds.CONTROLLERS), whether or not an
  endpoint names it. One set, `reserved_namespaces(spec)`, used by every check. Argo CD's and
  Prometheus' own namespaces are never Kubernetes', each other's or another controller's.
- **RBAC that cannot escalate.** A component's `rbac` rule may not grant what Kubernetes' RBAC
  good practices list as privilege escalation (`ESCALATIONS`), nor any wildcard, unless the rule
  carries a written `exception` (rendered as an annotation on the Role). Writing an object a
  controller turns into pods (kinds.CONTROLLERS' `pod_resources`) is writing pods. API groups,
  resources and verbs must be in canonical form: RBAC matches them exactly and
  case-sensitively, so `Secrets` or ` create` grants nothing and hides what the rule means.
  Tenant subjects in Kubernetes' reserved `system:` namespace of users and groups are refused.
- **Strings safe in every output.** Every spec string is checked once, by walking the model:
  control characters (Unicode Cc) and invisible or bidirectional format characters (Cf, such
  as U+202E or U+200B) are refused everywhere; line breaks everywhere except the values that
  are file or program text (`MULTI_LINE`); `{{`/`}}` where a controller evaluates the field as
  a template (`TEMPLATED`: Prometheus alert annotations, Argo CD ApplicationSet goTemplate,
  Argo Workflows for pipeline parameter defaults); whitespace in URLs and revisions. Helm
  templates escape every literal `{{` (emit.helm), so the other fields keep their braces
  verbatim.
- **Writable paths.** An emptyDir is never mounted over the root, the system's programs,
  libraries, configuration or runtime state, or the kernel's filesystems (`SYSTEM_PATHS`), and
  every path is absolute and normalised.
- **Meaningful alert numbers.** Non-finite numbers are refused by the model for every field
  (`allow_inf_nan=False`), durations are bounded by the model (spec.durations), and thresholds
  that can never fire or always fire are refused (spec.alert_thresholds).
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from platformgen.kinds import CONTROLLERS
from platformgen.spec.alert_thresholds import check_alert_thresholds
from platformgen.spec.model import PlatformSpec
from platformgen.spec.rbac import check_rbac

Problem = tuple[str, str]

KUBERNETES_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
KUBERNETES_PREFIX = "kube-"
ARGO_CD = "Argo CD"
PROMETHEUS_OPERATOR = "the Prometheus Operator"
"""Rows of kinds.CONTROLLERS that own the GitOps and the Prometheus namespace's role."""


def reserved_namespaces(spec: PlatformSpec) -> dict[str, str]:
    """Namespace -> who owns it, for every namespace the platform must not take over (plus
    every `kube-*` name, see `reserved_reason`). What the spec names comes first: it says
    more than an install default."""
    reserved = {name: "by Kubernetes" for name in KUBERNETES_NAMESPACES}
    if spec.gitops is not None:
        reserved.setdefault(spec.gitops.namespace, f"for {ARGO_CD} (gitops.namespace)")
    reserved.setdefault(
        spec.monitoring.prometheus_namespace, "for Prometheus (monitoring.prometheusNamespace)"
    )
    for name, endpoint in sorted(spec.endpoints.items()):
        if endpoint.namespace is not None:
            reserved.setdefault(
                endpoint.namespace, f"for endpoint {name!r} (endpoints.{name}.namespace)"
            )
    for controller, row in CONTROLLERS.items():
        for namespace in row.namespaces:
            reserved.setdefault(namespace, f"for {controller}")
    return reserved


def reserved_reason(spec: PlatformSpec, namespace: str) -> str | None:
    """Why `namespace` may not be a platform or tenant namespace, or None."""
    if namespace.startswith(KUBERNETES_PREFIX):
        return "by Kubernetes"
    return reserved_namespaces(spec).get(namespace)


def _own_namespaces(spec: PlatformSpec) -> Iterator[Problem]:
    """Argo CD's and Prometheus' namespaces are theirs alone: not Kubernetes' (the AppProject
    would go into kube-system; NetworkPolicies would admit "Prometheus" from `default`), not
    another controller's, not each other's."""
    prometheus = spec.monitoring.prometheus_namespace
    gitops = spec.gitops.namespace if spec.gitops is not None else None
    roles = [
        ("monitoring.prometheusNamespace", "Prometheus", prometheus, PROMETHEUS_OPERATOR, gitops),
    ]
    if gitops is not None:
        roles.insert(0, ("gitops.namespace", ARGO_CD, gitops, ARGO_CD, prometheus))
    for path, who, namespace, own, other in roles:
        why: str | None = None
        if namespace in KUBERNETES_NAMESPACES or namespace.startswith(KUBERNETES_PREFIX):
            why = "by Kubernetes"
        elif namespace == other:
            why = (
                "for Prometheus (monitoring.prometheusNamespace)"
                if who == ARGO_CD
                else f"for {ARGO_CD} (gitops.namespace)"
            )
        else:
            owners = [c for c, row in CONTROLLERS.items() if namespace in row.namespaces]
            if owners and own not in owners:
                why = f"for {owners[0]}"
        if why is not None:
            yield (path, f"{namespace!r} is reserved {why}: {who} runs in a namespace of its own")


def _namespaces(spec: PlatformSpec) -> Iterator[Problem]:
    def check(path: str, what: str, namespace: str) -> Iterator[Problem]:
        why = reserved_reason(spec, namespace)
        if why is not None:
            yield (path, f"{what} {namespace!r} is reserved {why}")

    for name in spec.namespaces:
        yield from check(f"namespaces.{name}", "namespace", name)
    for name, c in spec.components.items():
        if c.namespace not in spec.namespaces:  # reported by references
            yield from check(f"components.{name}.namespace", "namespace", c.namespace)
        for i, rule in enumerate(c.rbac):
            if rule.namespace not in spec.namespaces:
                where = f"components.{name}.rbac[{i}].namespace"
                yield from check(where, "namespace", rule.namespace)
    for name in spec.tenancy.tenants:
        path = f"tenancy.tenants.{name}"
        if name in spec.namespaces:
            yield (path, f"tenant namespace {name!r} is already a platform namespace")
        else:
            yield from check(path, "tenant namespace", name)


SYSTEM_SUBJECT = "system:"
"""Kubernetes reserves user and group names starting with this (system:authenticated,
system:serviceaccounts, system:anonymous, system:masters, system:node:...)."""


def _subjects(spec: PlatformSpec) -> Iterator[Problem]:
    for name, t in spec.tenancy.tenants.items():
        for role in ("owners", "members"):
            subjects = getattr(t, role)
            for kind in ("users", "groups"):
                for i, subject in enumerate(getattr(subjects, kind)):
                    if subject.strip().lower().startswith(SYSTEM_SUBJECT):
                        yield (
                            f"tenancy.tenants.{name}.{role}.{kind}[{i}]",
                            f"{subject!r}: names in Kubernetes' reserved {SYSTEM_SUBJECT} "
                            "namespace stand for the cluster's own identities or whole "
                            "populations; name people and groups",
                        )


Parts = tuple[str | int, ...]
"""A spec path as its keys and list indexes, e.g. ("components", "api", "args", 0)."""
ANY = "*"
MULTI_LINE: tuple[Parts, ...] = (
    ("components", ANY, "config", ANY),
    ("components", ANY, "env", ANY),
    ("components", ANY, "args", ANY),
    ("components", ANY, "command", ANY),
    ("environments", ANY, "components", ANY, "env", ANY),
    ("pipelines", ANY, "configMaps", ANY, ANY),
    ("builds", "images", ANY, "args", ANY),
)
"""Values that are file or program text (ConfigMap data, env values, arguments): they may span
lines; the serializers quote them. Every other string is one line."""
TEMPLATED: tuple[tuple[Parts, str], ...] = (
    (("monitoring", "runbookBaseUrl"), "Prometheus expands it in alert annotations"),
    (("gitops",), "Argo CD's ApplicationSet controller expands it (goTemplate)"),
    (
        ("pipelines", ANY, "promotion"),
        "Argo Workflows expands it: KFP hands pipeline parameter defaults to every run's Workflow",
    ),
)
"""Fields (and everything under them) that a controller evaluates as a Go template, where
`{{`/`}}` cannot be escaped for every place the value goes."""
NO_WHITESPACE: tuple[Parts, ...] = (
    ("monitoring", "runbookBaseUrl"),
    ("gitops", "repoURL"),
    ("gitops", "targetRevision"),
    ("gitops", "clusters", ANY, "server"),
    ("tenancy", "artifactRoot"),
    ("tenancy", "tenants", ANY, "pipelineRoot"),
)
"""URLs, URIs and revisions: a space would make them mean something else, or nothing."""
LINE_BREAK = re.compile(r"[\n\r]")
LINE_CHARACTERS = "\t\n\r"
"""Control characters the line rules below judge (tabs and line breaks in multi-line text)."""


def _has_category(value: str, category: str, allowed: str = "") -> bool:
    return any(unicodedata.category(ch) == category and ch not in allowed for ch in value)


def _control(value: str) -> bool:
    """Unicode Cc (C0 and C1, so terminal escapes too) and the line and paragraph separators."""
    return any(_has_category(value, category, LINE_CHARACTERS) for category in ("Cc", "Zl", "Zp"))


def _matches(parts: Parts, pattern: Parts, prefix: bool = False) -> bool:
    if len(parts) < len(pattern) or (not prefix and len(parts) != len(pattern)):
        return False
    return all(want == ANY or want == got for want, got in zip(pattern, parts, strict=False))


def _format(parts: Parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _string_problems(parts: Parts, value: str, is_key: bool) -> Iterator[Problem]:
    path = _format(parts)
    multi_line = not is_key and any(_matches(parts, p) for p in MULTI_LINE)
    if _control(value) or ("\t" in value and not multi_line):
        yield (path, f"{value!r}: control characters are not allowed")
    elif LINE_BREAK.search(value) and not multi_line:
        yield (path, f"{value!r}: must be one line")
    if _has_category(value, "Cs"):
        yield (path, f"{value!r}: surrogate characters are not text (not writable as UTF-8)")
    if _has_category(value, "Cf"):
        yield (
            path,
            f"{value!r}: format characters are not allowed (Unicode Cf: invisible or "
            "bidirectional, they make the text read differently from what it is)",
        )
    if is_key:
        return
    for pattern, why in TEMPLATED:
        if _matches(parts, pattern, prefix=True) and ("{{" in value or "}}" in value):
            yield (path, f"{value!r}: '{{{{' and '}}}}' are not allowed here ({why})")
    if any(_matches(parts, p) for p in NO_WHITESPACE) and re.search(r"\s", value):
        yield (path, f"{value!r}: must not contain whitespace")


def _strings(value: Any, parts: Parts) -> Iterator[Problem]:
    if isinstance(value, dict):
        for key, item in value.items():
            child = (*parts, str(key))
            if isinstance(key, str):
                yield from _string_problems(child, key, is_key=True)
            yield from _strings(item, child)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings(item, (*parts, i))
    elif isinstance(value, str):
        yield from _string_problems(parts, value, is_key=False)


def _urls_and_numbers(spec: PlatformSpec) -> Iterator[Problem]:
    base = spec.monitoring.runbook_base_url
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        yield (
            "monitoring.runbookBaseUrl",
            f"{base!r}: must be an absolute http(s) URL without query or fragment (alerts link "
            "to <runbookBaseUrl>/<alert>)",
        )
    yield from check_alert_thresholds(spec)


SYSTEM_PATHS = {
    "/bin": "programs",
    "/sbin": "programs",
    "/usr": "programs and libraries",
    "/lib": "libraries",
    "/lib32": "libraries",
    "/lib64": "libraries",
    "/libx32": "libraries",
    "/etc": "configuration (users, DNS, certificates)",
    "/boot": "kernel",
    "/proc": "kernel filesystems",
    "/sys": "kernel filesystems",
    "/dev": "devices (and the termination log)",
    "/run": "runtime state",
    "/var/run": "runtime state (the service account and KFP tokens)",
}
"""Folders, with everything under them and above them (`/`, `/var`), that an emptyDir must not
replace: the image's system, the kernel's filesystems and what the kubelet mounts."""


def _system_path(path: str) -> str | None:
    for system, what in SYSTEM_PATHS.items():
        if path == "/" or path == system or path.startswith(f"{system}/"):
            return what if path != "/" else "root filesystem"
        if system.startswith(f"{path}/"):
            return what
    return None


def _writable_paths(spec: PlatformSpec) -> Iterator[Problem]:
    for name, c in spec.components.items():
        for i, path in enumerate(c.writable_paths):
            where = f"components.{name}.writablePaths[{i}]"
            normal = posixpath.normpath(path)
            what = _system_path(normal)
            if normal != path or path.startswith("//"):
                yield (where, f"{path!r}: must be an absolute, normalised path ({normal!r})")
            elif what is not None:
                yield (
                    where,
                    f"{path!r}: a writable volume here hides the system's {what} (an emptyDir "
                    "replaces what the image has there): use a folder of the application's own, "
                    "such as /tmp or /var/cache/<name>",
                )


def _kubernetes_api(spec: PlatformSpec) -> Iterator[Problem]:
    marked = [name for name, e in spec.endpoints.items() if e.kubernetes_api]
    for name in marked[1:]:
        yield (
            f"endpoints.{name}.kubernetesApi",
            f"only one endpoint is the Kubernetes API server (already {marked[0]!r})",
        )
    for name in marked:
        e = spec.endpoints[name]
        if e.cidr is None or not e.ports:
            yield (
                f"endpoints.{name}",
                "the Kubernetes API server is reached by address: set cidr and ports (it is "
                "not a pod a namespace and labels could select)",
            )


def _segments(uri: str) -> tuple[str, ...]:
    return tuple(part for part in uri.split("/") if part)


def _tenant_roots(spec: PlatformSpec) -> Iterator[Problem]:
    """Each tenant's pipeline root is its own: no root lies inside another tenant's."""
    tenancy = spec.tenancy
    roots = {name: _segments(tenancy.pipeline_root(name)) for name in tenancy.tenants}
    for name, root in roots.items():
        for other, theirs in roots.items():
            if other != name and root[: len(theirs)] == theirs:
                yield (
                    f"tenancy.tenants.{name}.pipelineRoot",
                    f"{'/'.join(root)!r} lies inside the pipeline root of tenant {other!r}: each "
                    "tenant's artifacts need a prefix of their own",
                )


def _internal_receivers(spec: PlatformSpec) -> Iterator[Problem]:
    """Endpoints that change what the platform does (an alert webhook starts retraining; a
    payload-logger sink counts drift) are reachable only by the peers meant to call them."""
    sinks = {
        c.payload_logger.sink: name
        for name, c in spec.components.items()
        if c.payload_logger is not None
    }
    for name, c in spec.components.items():
        hook = c.alert_webhook
        if hook is None:
            continue
        shared = {p for p in (c.metrics.port if c.metrics else None,) if p}
        shared |= {p.port for p in (c.probes.liveness, c.probes.readiness, c.probes.startup) if p}
        if c.ports:
            shared.add(c.ports[0].name)  # what payload loggers and other clients reach
        if hook.port in shared:
            yield (
                f"components.{name}.alertWebhook.port",
                f"{hook.port!r} is also the metrics, a probe or the first (client) port: give "
                "the webhook a port of its own, so that only Alertmanager reaches it",
            )
    for tenant, t in spec.tenancy.tenants.items():
        for i, target in enumerate(t.uses):
            used = spec.components.get(target)
            if used is not None and (used.alert_webhook is not None or target in sinks):
                yield (
                    f"tenancy.tenants.{tenant}.uses[{i}]",
                    f"{target!r} receives the platform's alert webhooks or payload logs: "
                    "tenants may not reach it",
                )


def check_security(spec: PlatformSpec) -> list[Problem]:
    """Every security problem of `spec`, each once."""
    problems = [
        *_strings(spec.model_dump(by_alias=True), ()),
        *_namespaces(spec),
        *_own_namespaces(spec),
        *check_rbac(spec),
        *_subjects(spec),
        *_urls_and_numbers(spec),
        *_writable_paths(spec),
        *_kubernetes_api(spec),
        *_tenant_roots(spec),
        *_internal_receivers(spec),
    ]
    return list(dict.fromkeys(problems))
