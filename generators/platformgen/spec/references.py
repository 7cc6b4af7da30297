"""Rules that span several fields of the spec. Each problem is `(spec path, message)`."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterator

from mlp_common import contracts

from platformgen.kinds import KINDS, kinds_with, tunables
from platformgen.quantity import parse_quantity
from platformgen.spec.admission import check_admission
from platformgen.spec.builds import check_builds
from platformgen.spec.credentials import check_credentials
from platformgen.spec.distributed import check_distributed
from platformgen.spec.model import (
    RESERVED_NAMES,
    Component,
    ComponentOverride,
    Endpoint,
    PlatformSpec,
    ResourceList,
    Tenant,
)
from platformgen.spec.security import check_security
from platformgen.spec.spark import check_spark

Problem = tuple[str, str]

LONG_RUNNING = frozenset(kind for kind, t in KINDS.items() if t.long_running)


def check_references(spec: PlatformSpec) -> list[Problem]:
    """Every cross-field problem in `spec`, in document order."""
    references = _check_references(spec)
    if references:
        # Admission rules resolve references (environments, components); report those first.
        return references
    return [*check_admission(spec), *check_credentials(spec), *check_security(spec)]


def _check_references(spec: PlatformSpec) -> list[Problem]:
    return [
        *_check_names(spec),
        *(p for name, c in spec.components.items() for p in _check_component(spec, name, c)),
        *(p for name, e in spec.endpoints.items() for p in _check_endpoint(name, e)),
        *_check_environments(spec),
        *check_builds(spec),
        *(p for name, t in spec.tenancy.tenants.items() for p in _check_tenant(spec, name, t)),
        *_check_artifact_root("tenancy.artifactRoot", spec.tenancy.artifact_root),
        *(
            (f"gitops.clusters.{name}", f"unknown environment {name!r} (not in environments)")
            for name in (spec.gitops.clusters if spec.gitops else {})
            if name not in spec.environments
        ),
        *(
            (
                f"pipelines.{name}.namespace",
                f"unknown namespace {p.namespace!r} (not in namespaces)",
            )
            for name, p in spec.pipelines.items()
            if p.namespace not in spec.namespaces
        ),
        *(
            (f"pipelines.{name}.dependsOn[{i}]", f"unknown endpoint {target!r}")
            for name, p in spec.pipelines.items()
            for i, target in enumerate(p.depends_on)
            if target not in spec.endpoints
        ),
        *(
            (f"pipelines.{name}", f"name {name!r} is also a component")
            for name in spec.pipelines
            if name in spec.components
        ),
    ]


def _check_names(spec: PlatformSpec) -> Iterator[Problem]:
    for name in spec.components:
        if name in spec.endpoints:
            yield (
                f"endpoints.{name}",
                f"name {name!r} is also a component; dependsOn would be ambiguous",
            )
        if name in RESERVED_NAMES:
            yield (
                f"components.{name}",
                f"name {name!r} is reserved for platform-wide objects",
            )
    if not spec.environments:
        yield ("environments", "must declare at least one environment")


SCHEDULED = frozenset(kinds_with("schedule"))
"""Kinds that run on a cron `schedule`."""
RUNS_PIPELINES = frozenset(kinds_with("pipeline"))
"""Kinds that may name a `pipeline` to run."""


def _check_component(spec: PlatformSpec, name: str, c: Component) -> Iterator[Problem]:
    path = f"components.{name}"
    if c.namespace not in spec.namespaces:
        yield (f"{path}.namespace", f"unknown namespace {c.namespace!r} (not in namespaces)")
    yield from _duplicates(f"{path}.ports", [p.name for p in c.ports], "name")
    yield from _duplicates(f"{path}.ports", [p.port for p in c.ports], "port")
    names = {p.name for p in c.ports}
    for kind, probe in (
        ("liveness", c.probes.liveness),
        ("readiness", c.probes.readiness),
        ("startup", c.probes.startup),
    ):
        if probe is not None and probe.port not in names:
            yield (f"{path}.probes.{kind}.port", f"no port named {probe.port!r} on {name}")
    if c.metrics is not None and c.metrics.port not in names:
        yield (f"{path}.metrics.port", f"no port named {c.metrics.port!r} on {name}")
    if c.kind in SCHEDULED and c.schedule is None:
        yield (f"{path}.schedule", f"is required for kind {c.kind}")
    if c.kind not in SCHEDULED and c.schedule is not None:
        yield (f"{path}.schedule", f"only applies to kinds CronJob and RecurringRun, not {c.kind}")
    if c.kind == "RecurringRun" and c.pipeline is None:
        yield (f"{path}.pipeline", "is required for kind RecurringRun")
    if c.pipeline is not None:
        if c.kind not in RUNS_PIPELINES:
            kinds = ", ".join(sorted(RUNS_PIPELINES))
            yield (f"{path}.pipeline", f"only applies to kinds {kinds}, not {c.kind}")
        elif c.pipeline not in spec.pipelines:
            known = ", ".join(sorted(spec.pipelines)) or "none"
            yield (f"{path}.pipeline", f"unknown pipeline {c.pipeline!r} (pipelines: {known})")
        for where, settings in (("env", c.env), ("config", c.config)):
            for key in contracts.PIPELINE_SETTINGS:
                if c.kind == "Deployment" and key in settings:
                    yield (f"{path}.{where}.{key}", f"rendered from {path}.pipeline; remove it")
    if c.kind not in LONG_RUNNING and c.probes.readiness is not None:
        yield (f"{path}.probes.readiness", f"does not apply to kind {c.kind}")
    if (c.kind == "Experiment") != (c.tuning is not None):
        yield (f"{path}.tuning", "is required for kind Experiment and only allowed there")
    if c.tuning is not None:
        yield from _check_tuning(name, c)
    if (c.kind == "TrainJob") != (c.distributed is not None):
        yield (f"{path}.distributed", "is required for kind TrainJob and only allowed there")
    if c.distributed is not None:
        yield from check_distributed(name, c)
    if (c.kind == "SparkApplication") != (c.spark is not None):
        yield (f"{path}.spark", "is required for kind SparkApplication and only allowed there")
    if c.spark is not None and c.kind == "SparkApplication":
        yield from check_spark(spec, name, c)
    if c.payload_logger is not None:
        sink = c.payload_logger.sink
        if c.kind != "InferenceService":
            yield (f"{path}.payloadLogger", f"does not apply to kind {c.kind}")
        elif sink not in spec.components or sink not in c.depends_on:
            yield (
                f"{path}.payloadLogger.sink",
                f"{sink!r} must be a component listed in dependsOn (so traffic to it is allowed)",
            )
    if c.kind == "InferenceService" and len(c.ports) != 1:
        yield (f"{path}.ports", "an InferenceService predictor serves exactly one port")
    if c.alerts is not None:
        needs_metrics = (
            c.alerts.error_ratio,
            c.alerts.latency_p99_seconds,
            c.alerts.model_age_hours,
            c.alerts.drift_psi,
        )
        if any(v is not None for v in needs_metrics) and c.metrics is None:
            yield (f"{path}.alerts", "metric-based alerts need `metrics` on the component")
        drift_fields = {"drift_window": "driftWindow", "drift_min_samples": "driftMinSamples"}
        for field, alias in drift_fields.items():
            if field in c.alerts.model_fields_set and c.alerts.drift_psi is None:
                yield (f"{path}.alerts.{alias}", "only applies with alerts.driftPsi")
    if c.alert_webhook is not None:
        yield from _check_alert_webhook(spec, path, c)
    for i, target in enumerate(c.depends_on):
        where = f"{path}.dependsOn[{i}]"
        if target == name:
            yield (where, "a component cannot depend on itself")
        else:
            yield from _check_peer(spec, where, target)
    yield from _duplicates(f"{path}.dependsOn", list(c.depends_on), "entry")
    for i, source in enumerate(c.exposed_to):
        if source not in spec.endpoints:
            yield (f"{path}.exposedTo[{i}]", f"unknown endpoint {source!r}")
    if c.exposed_to and not c.ports:
        yield (f"{path}.exposedTo", f"{name} has no ports to expose")
    for i, rule in enumerate(c.rbac):
        if rule.namespace not in spec.namespaces:
            yield (
                f"{path}.rbac[{i}].namespace",
                f"unknown namespace {rule.namespace!r} (not in namespaces)",
            )


WEBHOOK_ALERT_THRESHOLDS = {"FeatureDrift": "driftPsi"}
"""Alert suffix an alertWebhook may route -> the alerts threshold that renders that alert."""


def _check_alert_webhook(spec: PlatformSpec, path: str, c: Component) -> Iterator[Problem]:
    hook = c.alert_webhook
    assert hook is not None
    where = f"{path}.alertWebhook"
    if c.kind != "Deployment":
        yield (where, f"does not apply to kind {c.kind} (a Deployment receives webhooks)")
    if hook.port not in {p.name for p in c.ports}:
        yield (f"{where}.port", f"no port named {hook.port!r} on the component")
    for i, alert in enumerate(hook.alerts):
        threshold = WEBHOOK_ALERT_THRESHOLDS[alert]
        alerts = c.alerts.model_dump(by_alias=True) if c.alerts is not None else {}
        if alerts.get(threshold) is None:
            yield (f"{where}.alerts[{i}]", f"{alert} is not rendered: set alerts.{threshold}")
    yield from _duplicates(f"{where}.alerts", list(hook.alerts), "alert")
    endpoint = spec.endpoints.get(hook.alertmanager)
    if endpoint is None or endpoint.namespace is None:
        yield (
            f"{where}.alertmanager",
            f"{hook.alertmanager!r} must be an in-cluster endpoint (namespace and podLabels)",
        )
    elif hook.alertmanager not in c.exposed_to:
        yield (
            f"{where}.alertmanager",
            f"{hook.alertmanager!r} must be listed in exposedTo (so Alertmanager may connect)",
        )


def _check_tuning(name: str, c: Component) -> Iterator[Problem]:
    assert c.tuning is not None
    t, path = c.tuning, f"components.{name}.tuning"
    if len(name) > 40:
        yield (f"components.{name}", "a Katib Experiment name has at most 40 characters")
    if t.parallel_trials > t.max_trials:
        yield (f"{path}.parallelTrials", "must not exceed maxTrials")
    if t.max_failed_trials > t.max_trials:
        yield (f"{path}.maxFailedTrials", "must not exceed maxTrials")
    yield from _duplicates(f"{path}.parameters", [p.name for p in t.parameters], "name")
    for i, p in enumerate(t.parameters):
        where = f"{path}.parameters[{i}]"
        if p.type == "categorical":
            if not p.values or p.min is not None or p.max is not None:
                yield (where, "a categorical parameter has values and no min/max")
        elif p.min is None or p.max is None or p.values:
            yield (where, f"a {p.type} parameter has min and max and no values")
        elif p.min >= p.max:
            yield (where, "min must be below max")
        elif p.type == "int" and (p.min != int(p.min) or p.max != int(p.max)):
            yield (where, "an int parameter has whole-number bounds")
        elif p.distribution == "logUniform" and p.min <= 0:
            yield (f"{where}.min", f"{p.min:g}: logUniform sampling needs min above 0")
        if p.type == "categorical" and p.distribution is not None:
            yield (f"{where}.distribution", "applies to double and int parameters only")
    if t.db_manager not in c.depends_on:
        yield (
            f"{path}.dbManager",
            f"{t.db_manager!r} must be an endpoint listed in dependsOn: Katib's metrics "
            "collector in every trial pod reports to it",
        )
    if t.algorithm == "grid" and any(p.type == "double" for p in t.parameters):
        yield (f"{path}.algorithm", "grid search needs int or categorical parameters only")


def _check_endpoint(name: str, e: Endpoint) -> Iterator[Problem]:
    path = f"endpoints.{name}"
    if (e.namespace is None) == (e.cidr is None):
        yield (path, "set exactly one of namespace (in-cluster) or cidr (external)")
    if e.pod_labels and e.namespace is None:
        yield (f"{path}.podLabels", "only applies with namespace")
    if e.except_ and e.cidr is None:
        yield (f"{path}.except", "only applies with cidr")
    for key, block in [("cidr", e.cidr), *((f"except[{i}]", b) for i, b in enumerate(e.except_))]:
        if block is None:
            continue
        try:
            ipaddress.ip_network(block)
        except ValueError:
            yield (f"{path}.{key}", f"{block!r} is not a CIDR block")
    yield from _duplicates(f"{path}.ports", [p.name for p in e.ports], "name")


def _check_environments(spec: PlatformSpec) -> Iterator[Problem]:
    for env_name, env in spec.environments.items():
        path = f"environments.{env_name}"
        for name in env.images:
            if name not in spec.components:
                yield (f"{path}.images.{name}", f"unknown component {name!r}")
        for name, override in env.components.items():
            where = f"{path}.components.{name}"
            if name not in spec.components:
                yield (where, f"unknown component {name!r}")
                continue
            yield from _check_override(where, spec.components[name], override)


def _check_override(path: str, c: Component, o: ComponentOverride) -> Iterator[Problem]:
    kind_only = {  # which kinds take each is kinds.tunables
        "autoscaling": o.autoscaling,
        "topologySpread": o.topology_spread,
        "disruptionBudget": o.disruption_budget,
        "model": o.model,
        "canary": o.canary,
        "suspend": o.suspend,
        "replicas": o.replicas,
    }
    for key, value in kind_only.items():
        if value is not None and key not in tunables(c.kind):
            yield (f"{path}.{key}", f"does not apply to kind {c.kind}")
    if o.autoscaling is not None and o.autoscaling.min_replicas > o.autoscaling.max_replicas:
        yield (f"{path}.autoscaling", "minReplicas must not exceed maxReplicas")
    if o.autoscaling is not None and o.replicas is not None:
        yield (f"{path}.replicas", "set either replicas or autoscaling, not both")
    budget = o.disruption_budget
    if budget is not None and (budget.min_available is None) == (budget.max_unavailable is None):
        yield (f"{path}.disruptionBudget", "set exactly one of minAvailable or maxUnavailable")


def _duplicates(path: str, values: list[object], what: str) -> Iterator[Problem]:
    for value, count in Counter(values).items():
        if count > 1:
            yield (path, f"duplicate {what} {value!r}")


ARTIFACT_SCHEMES = ("s3://", "minio://", "gs://")


def _check_tenant(spec: PlatformSpec, name: str, t: Tenant) -> Iterator[Problem]:
    path = f"tenancy.tenants.{name}"  # reserved namespaces: spec.security
    if not t.owners.users and not t.owners.groups:
        yield (f"{path}.owners", "name at least one user or group")
    for role in ("owners", "members"):
        subjects = getattr(t, role)
        yield from _duplicates(f"{path}.{role}.users", list(subjects.users), "user")
        yield from _duplicates(f"{path}.{role}.groups", list(subjects.groups), "group")
    yield from _duplicates(f"{path}.uses", list(t.uses), "entry")
    for i, target in enumerate(t.uses):
        yield from _check_peer(spec, f"{path}.uses[{i}]", target)
    if t.pipeline_root is not None:
        yield from _check_artifact_root(f"{path}.pipelineRoot", t.pipeline_root)
    yield from _check_limits(path, t)


def _check_artifact_root(where: str, root: str) -> Iterator[Problem]:
    if not (root.startswith(ARTIFACT_SCHEMES) and "/" in root[6:]):
        yield (where, f"{root!r}: must be an object-store URI ({', '.join(ARTIFACT_SCHEMES)})")


def _check_peer(spec: PlatformSpec, where: str, target: str) -> Iterator[Problem]:
    """`target` names a component or an endpoint that has ports to connect to."""
    if target in spec.components:
        if not spec.components[target].ports:
            yield (where, f"{target!r} has no ports to connect to")
    elif target in spec.endpoints:
        if not spec.endpoints[target].ports:
            yield (where, f"endpoint {target!r} has no ports to connect to")
    else:
        yield (where, f"unknown component or endpoint {target!r}")


def _check_limits(path: str, t: Tenant) -> Iterator[Problem]:
    """The apiserver rejects a LimitRange whose min > defaultRequest > default > max; and a
    default that does not fit the quota would make every pod that relies on it unschedulable."""
    order = ("min", "default_request", "default", "max")
    yaml_key = {
        "min": "min",
        "default_request": "defaultRequest",
        "default": "default",
        "max": "max",
    }
    for resource in ("cpu", "memory", "ephemeral_storage"):
        values = [
            (key, getattr(getattr(t.limits, key), resource))
            for key in order
            if getattr(getattr(t.limits, key), resource) is not None
        ]
        for (low_key, low), (high_key, high) in zip(values, values[1:], strict=False):
            if parse_quantity(str(low)) > parse_quantity(str(high)):
                field = ResourceList.model_fields[resource].alias or resource
                yield (
                    f"{path}.limits.{yaml_key[high_key]}.{field}",
                    f"{high} is below {yaml_key[low_key]} {low}",
                )
    quota = t.quota
    fits = (
        ("defaultRequest", "cpu", t.limits.default_request.cpu, "cpu", quota.cpu),
        ("defaultRequest", "memory", t.limits.default_request.memory, "memory", quota.memory),
        ("default", "cpu", t.limits.default.cpu, "limitsCpu", quota.limits_cpu),
        ("default", "memory", t.limits.default.memory, "limitsMemory", quota.limits_memory),
    )
    for key, resource, value, quota_key, budget in fits:
        if value is not None and parse_quantity(str(value)) > parse_quantity(str(budget)):
            yield (
                f"{path}.limits.{key}.{resource}",
                f"{value} does not fit the quota's {quota_key} {budget}",
            )
