"""PrometheusRule with the recording rules and alerts a component's kind and thresholds call for.

Every alert has a severity, summary, description and runbook_url. Metric names are those the
components export (components/serve, components/drift) and kube-state-metrics.

Expressions select series by the labels Prometheus *stores*, after the Prometheus Operator's
relabelling of our ServiceMonitors (`service_monitor.stored_label`): the model server's
`endpoint` label is stored as `exported_endpoint`, because the operator sets `endpoint` to the
ServiceMonitor's port name. kube-state-metrics series keep their own `namespace`, `pod`,
`deployment` and `job_name` (kube-prometheus-stack scrapes it with `honorLabels: true`).

Recording rules (`level:metric:operations`, as in kube-prometheus) carry the serving signals
that both alerts and dashboards read, so each is computed once per evaluation:

- `namespace_service_exported_endpoint_code:mlp_requests:rate<window>`: request rate per
  endpoint and status code;
- `namespace_service:mlp_requests_errors:ratio_rate<window>`: 5xx share of inference requests
  (0, not absent, when there were no errors);
- `namespace_service:mlp_request_duration_seconds:p99_rate<window>`: p99 inference latency.

Drift (components/drift/README.md) is computed here, not in the drift monitor, so it does not
depend on which replica got which request: each replica counts served values per bin of the
reference (`mlp_drift_feature_observations_total{feature, bin, reference_version}`) and exports
the reference's share of each bin (`mlp_drift_reference_ratio`). Over `driftWindow`:

- `..._bin:mlp_drift_observations:increase<w>`: the counts of every replica, summed;
- `namespace_service_feature:mlp_drift_observations:increase<w>`: rows per feature;
- `..._bin:mlp_drift_current:ratio_increase<w>` and `..._bin:mlp_drift_reference:ratio`: the
  proportions p (served) and q (reference) per bin;
- `namespace_service_feature:mlp_drift_psi:increase<w>`: PSI = sum over bins of
  (p - q) * ln(p / q), both floored at `PSI_EPSILON` (mlp_drift.core computes the same).

Every drift series keeps `reference_version`: after production moves, the old version's counts
age out of the window on their own series instead of being compared with the new bins.
"""

from __future__ import annotations

from typing import Any

from platformgen.builders.service import service_name
from platformgen.builders.service_monitor import stored_label
from platformgen.kinds import KINDS, traits
from platformgen.naming import Manifest, camel, metadata
from platformgen.resolve import ComponentView

REQUESTS_TOTAL = "mlp_requests_total"
"""Counter of requests served, labelled by `endpoint` and HTTP status `code` (components/serve)."""
REQUEST_DURATION = "mlp_request_duration_seconds"
"""Histogram of request latency, labelled by `endpoint` (components/serve)."""
MODEL_CREATED = "mlp_model_created_timestamp_seconds"
"""Gauge: creation time of the model version being served (components/serve)."""
INFERENCE_ENDPOINTS = "v1_predict|v2_infer"
"""Only inference traffic counts towards error ratio and latency, not probes or scrapes."""
DRIFT_OBSERVATIONS = "mlp_drift_feature_observations_total"
"""Counter per `feature`, `bin`, `reference_version`: served values in each reference bin."""
DRIFT_REFERENCE_RATIO = "mlp_drift_reference_ratio"
"""Gauge per `feature`, `bin`, `reference_version`: the reference's share of each bin."""
PSI_EPSILON = 1e-4
"""Floor of both proportions before the PSI logarithm (mlp_drift.core.PSI_EPSILON)."""
JOB_FAILED_FOR = "15m"
"""kube-prometheus' KubeJobFailed waits this long: a failed Job is a state, not an event."""


def _alert(
    view: ComponentView,
    suffix: str,
    expr: str,
    severity: str,
    summary: str,
    description: str,
    for_: str | None = None,
) -> dict[str, Any]:
    name = f"{camel(view.name)}{suffix}"
    base_url = view.spec.monitoring.runbook_base_url.rstrip("/")
    return {
        "alert": name,
        "annotations": {
            "description": description,
            "runbook_url": f"{base_url}/{name.lower()}",
            "summary": summary,
        },
        "expr": expr,
        "for": for_ or (view.component.alerts.for_ if view.component.alerts else "10m"),
        "labels": {"severity": severity},
    }


def recorded_names(window: str) -> tuple[str, str, str]:
    """(request rate, error ratio, p99 latency) recording rule names for a rate window."""
    return (
        f"namespace_service_{stored_label('endpoint')}_code:mlp_requests:rate{window}",
        f"namespace_service:mlp_requests_errors:ratio_rate{window}",
        f"namespace_service:{REQUEST_DURATION}:p99_rate{window}",
    )


def drift_recorded_names(window: str) -> dict[str, str]:
    """Drift recording rule names for a `driftWindow` (see the module docstring)."""
    return {
        "counts": f"namespace_service_feature_bin:mlp_drift_observations:increase{window}",
        "rows": f"namespace_service_feature:mlp_drift_observations:increase{window}",
        "current": f"namespace_service_feature_bin:mlp_drift_current:ratio_increase{window}",
        "reference": "namespace_service_feature_bin:mlp_drift_reference:ratio",
        "psi": f"namespace_service_feature:mlp_drift_psi:increase{window}",
    }


DRIFT_BY = "namespace, service, feature, reference_version"


def _drift_recording_rules(view: ComponentView) -> list[dict[str, Any]]:
    a = view.component.alerts
    if a is None or a.drift_psi is None:
        return []
    scope = f'namespace="{view.namespace}", service="{service_name(view)}"'
    names = drift_recorded_names(a.drift_window)
    by_bin = f"{DRIFT_BY}, bin"
    current, reference = (
        f"clamp_min({names[k]}, {PSI_EPSILON:g})" for k in ("current", "reference")
    )
    return [
        {
            "record": names["counts"],
            "expr": f"sum by ({by_bin}) (increase({DRIFT_OBSERVATIONS}{{{scope}}}"
            f"[{a.drift_window}]))",
        },
        {"record": names["rows"], "expr": f"sum by ({DRIFT_BY}) ({names['counts']})"},
        {
            "record": names["current"],
            "expr": f"{names['counts']}\n  / ignoring (bin) group_left () ({names['rows']} > 0)",
        },
        {
            "record": names["reference"],
            "expr": f"max by ({by_bin}) ({DRIFT_REFERENCE_RATIO}{{{scope}}})",
        },
        {
            "record": names["psi"],
            "expr": f"sum by ({DRIFT_BY}) (\n  ({current} - {reference})\n"
            f"  * ln({current} / {reference})\n)",
        },
    ]


def _recording_rules(view: ComponentView) -> list[dict[str, Any]]:
    a = view.component.alerts
    if a is None or (a.error_ratio is None and a.latency_p99_seconds is None):
        return []
    scope = f'namespace="{view.namespace}", service="{service_name(view)}"'
    endpoint = stored_label("endpoint")
    inference = f'{scope}, {endpoint}=~"{INFERENCE_ENDPOINTS}"'
    rate, ratio, p99 = recorded_names(a.window)
    by = "namespace, service"
    return [
        {
            "record": rate,
            "expr": f"sum by ({by}, {endpoint}, code) (rate({REQUESTS_TOTAL}{{{scope}}}"
            f"[{a.window}]))",
        },
        {
            "record": ratio,
            "expr": f'(sum by ({by}) ({rate}{{{inference}, code=~"5.."}})\n'
            f"  or sum by ({by}) ({rate}{{{inference}}}) * 0)\n"
            f"/ sum by ({by}) ({rate}{{{inference}}})",
        },
        {
            "record": p99,
            "expr": f"histogram_quantile(0.99,\n  sum by ({by}, le) (rate({REQUEST_DURATION}_bucket"
            f"{{{inference}}}[{a.window}]))\n)",
        },
    ]


BATCH_KINDS = frozenset(kind for kind, t in KINDS.items() if t.batch)
"""Kinds whose pods run as batch/v1 Jobs named `<component>(-[0-9]+)?` (a content hash, or the
CronJob's scheduled minute): one alert set, JobFailed, for all of them."""


def _rules(view: ComponentView) -> list[dict[str, Any]]:
    c, ns, name = view.component, view.namespace, view.name
    scope = f'namespace="{ns}", service="{service_name(view)}"'
    pods = f'namespace="{ns}", pod=~"{name}-.*"'
    rules: list[dict[str, Any]] = _recording_rules(view) + _drift_recording_rules(view)
    if traits(c.kind).long_running:
        rules.append(
            _alert(
                view,
                "PodRestarting",
                f"increase(kube_pod_container_status_restarts_total{{{pods}}}[15m]) > 2",
                "warning",
                f"{name} containers are restarting",
                f"Pod {{{{ $labels.pod }}}} in {ns} restarted more than twice in 15 minutes.",
            )
        )
    if c.kind == "Deployment":
        rules.append(
            _alert(
                view,
                "ReplicasUnavailable",
                f'kube_deployment_status_replicas_available{{namespace="{ns}", '
                f'deployment="{name}"}}\n  < kube_deployment_spec_replicas{{namespace="{ns}", '
                f'deployment="{name}"}}',
                "warning",
                f"{name} has unavailable replicas",
                f"Deployment {ns}/{name} has had fewer available replicas than desired.",
            )
        )
    if c.kind in BATCH_KINDS:
        # kube_job_failed{condition="true"} is the Job's Failed condition (backoffLimit or
        # activeDeadlineSeconds exhausted), not a count of failed pods: a pod that failed and
        # was retried successfully does not page anyone.
        rules.append(
            _alert(
                view,
                "JobFailed",
                f'kube_job_failed{{namespace="{ns}", job_name=~"{name}(-[0-9]+)?", '
                f'condition="true"}} > 0',
                "warning",
                f"{name} job failed",
                f"Job {{{{ $labels.job_name }}}} in {ns} failed; training or batch data is stale. "
                "The alert resolves when the failed Job is deleted.",
                for_=JOB_FAILED_FOR,
            )
        )
    a = c.alerts
    if a is None:
        return rules
    _, ratio, p99 = recorded_names(a.window)
    if a.error_ratio is not None:
        rules.append(
            _alert(
                view,
                "HighErrorRatio",
                f"{ratio}{{{scope}}} > {a.error_ratio}",
                "critical",
                f"{name} is failing requests",
                f"More than {a.error_ratio:.0%} of {name} inference requests returned 5xx "
                f"over {a.window}.",
            )
        )
    if a.latency_p99_seconds is not None:
        rules.append(
            _alert(
                view,
                "HighLatency",
                f"{p99}{{{scope}}} > {a.latency_p99_seconds}",
                "warning",
                f"{name} p99 latency is high",
                f"p99 inference latency of {name} is above {a.latency_p99_seconds}s "
                f"over {a.window}.",
            )
        )
    if a.model_age_hours is not None:
        rules.append(
            _alert(
                view,
                "ModelStale",
                f"time() - max by (namespace, service) ({MODEL_CREATED}{{{scope}}})\n"
                f"  > {int(a.model_age_hours * 3600)}",
                "warning",
                f"{name} serves a stale model",
                f"The model served by {name} is older than {a.model_age_hours:g} hours; "
                "scheduled retraining may be failing.",
            )
        )
    if a.drift_psi is not None:
        names = drift_recorded_names(a.drift_window)
        rules.append(
            _alert(
                view,
                "FeatureDrift",
                f"(\n  {names['psi']}{{{scope}}}\n  unless on ({DRIFT_BY})\n"
                f"  {names['rows']}{{{scope}}} < {a.drift_min_samples}\n) > {a.drift_psi}",
                "warning",
                "Feature {{ $labels.feature }} has drifted",
                f"Population stability index above {a.drift_psi} over {a.drift_window} "
                "(all replicas, at least "
                f"{a.drift_min_samples} rows) against the training data of model version "
                "{{ $labels.reference_version }}; consider retraining.",
            )
        )
    return rules


def _group(view: ComponentView, rules: list[dict[str, Any]]) -> dict[str, Any]:
    group: dict[str, Any] = {"name": view.name, "rules": rules}
    if view.spec.monitoring.evaluation_interval is not None:
        group["interval"] = view.spec.monitoring.evaluation_interval
    return group


def build_prometheus_rule(view: ComponentView) -> Manifest | None:
    if view.component.metrics is None and view.component.kind not in BATCH_KINDS:
        return None
    rules = _rules(view)
    if not rules:
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(
            view.spec,
            view.name,
            view.component.role,
            view.namespace,
            extra_labels=view.spec.monitoring.selector_labels,
        ),
        "spec": {"groups": [_group(view, rules)]},
    }
