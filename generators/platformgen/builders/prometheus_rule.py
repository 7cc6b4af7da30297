"""PrometheusRule with the alerts a component's kind and thresholds call for.

Every alert has a severity, summary, description and runbook_url. Metric names are those the
components export (components/serve, components/drift) and kube-state-metrics.
"""

from __future__ import annotations

from typing import Any

from platformgen.naming import Manifest, camel, metadata
from platformgen.resolve import ComponentView

REQUESTS_TOTAL = "mlp_requests_total"
"""Counter of requests served, labelled by HTTP status `code` (components/serve)."""
REQUEST_DURATION = "mlp_request_duration_seconds"
"""Histogram of request latency (components/serve)."""
MODEL_CREATED = "mlp_model_created_timestamp_seconds"
"""Gauge: creation time of the model version being served (components/serve)."""
INFERENCE_ENDPOINTS = 'endpoint=~"v1_predict|v2_infer"'
"""Only inference traffic counts towards error ratio and latency, not probes or scrapes."""
DRIFT_PSI = "mlp_feature_drift_psi"
"""Gauge per `feature`: population stability index against training (components/drift)."""


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


def _rules(view: ComponentView) -> list[dict[str, Any]]:
    c, ns, name = view.component, view.namespace, view.name
    scope = f'namespace="{ns}", service="{name}"'
    inference = f"{scope}, {INFERENCE_ENDPOINTS}"
    pods = f'namespace="{ns}", pod=~"{name}-.*"'
    rules: list[dict[str, Any]] = []
    if c.kind in {"Deployment", "InferenceService"}:
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
    if c.kind in {"Job", "CronJob"}:
        rules.append(
            _alert(
                view,
                "JobFailed",
                f'kube_job_status_failed{{namespace="{ns}", job_name=~"{name}(-[0-9]+)?"}} > 0',
                "warning",
                f"{name} job failed",
                f"Job {{{{ $labels.job_name }}}} in {ns} failed; training or batch data is stale.",
                for_="0m",
            )
        )
    a = c.alerts
    if a is None:
        return rules
    if a.error_ratio is not None:
        rules.append(
            _alert(
                view,
                "HighErrorRatio",
                f'sum(rate({REQUESTS_TOTAL}{{{inference}, code=~"5.."}}[5m]))\n'
                f"  / sum(rate({REQUESTS_TOTAL}{{{inference}}}[5m])) > {a.error_ratio}",
                "critical",
                f"{name} is failing requests",
                f"More than {a.error_ratio:.0%} of {name} requests returned 5xx over 5 minutes.",
            )
        )
    if a.latency_p99_seconds is not None:
        rules.append(
            _alert(
                view,
                "HighLatency",
                f"histogram_quantile(0.99,\n  sum by (le) (rate({REQUEST_DURATION}_bucket"
                f"{{{inference}}}[5m]))\n) > {a.latency_p99_seconds}",
                "warning",
                f"{name} p99 latency is high",
                f"p99 latency of {name} is above {a.latency_p99_seconds}s.",
            )
        )
    if a.model_age_hours is not None:
        rules.append(
            _alert(
                view,
                "ModelStale",
                f"time() - max({MODEL_CREATED}{{{scope}}}) > {int(a.model_age_hours * 3600)}",
                "warning",
                f"{name} serves a stale model",
                f"The model served by {name} is older than {a.model_age_hours:g} hours; "
                "scheduled retraining may be failing.",
            )
        )
    if a.drift_psi is not None:
        rules.append(
            _alert(
                view,
                "FeatureDrift",
                f"max by (feature) ({DRIFT_PSI}{{{scope}}}) > {a.drift_psi}",
                "warning",
                "Feature {{ $labels.feature }} has drifted",
                f"Population stability index above {a.drift_psi} against the training data; "
                "consider retraining.",
            )
        )
    return rules


def build_prometheus_rule(view: ComponentView) -> Manifest | None:
    if view.component.metrics is None and view.component.kind not in {"Job", "CronJob"}:
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
        "spec": {"groups": [{"name": view.name, "rules": rules}]},
    }
