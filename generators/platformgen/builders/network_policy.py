"""NetworkPolicies: default-deny per namespace, DNS egress, and allows derived from dependsOn.

Ports are never written here: they come from the target's Service ports (components) or the
endpoint's declared ports, and the metrics port from `metrics.port`.
"""

from __future__ import annotations

from typing import Any

from platformgen.builders.inference_service import (
    KNATIVE_ACTIVATOR,
    has_own_service_name,
    serving_ports,
)
from platformgen.builders.pod import SELECTOR_CHECKS, exception_annotations, selector_metadata
from platformgen.builders.train_job import worker_rule
from platformgen.naming import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAMESPACE_NAME,
    PART_OF,
    Manifest,
    metadata,
    selector_labels,
)
from platformgen.resolve import ComponentView
from platformgen.spec.model import Component, Endpoint, PlatformSpec, ServicePort


def tenants_using(spec: PlatformSpec, target: str) -> list[str]:
    """Tenants that declared `target` in `uses`, sorted."""
    return sorted(name for name, t in spec.tenancy.tenants.items() if target in t.uses)


DNS_NAMESPACE = "kube-system"
DNS_POD_LABELS = {"k8s-app": "kube-dns"}
DNS_PORT = 53


def _platform_metadata(spec: PlatformSpec, name: str, namespace: str) -> dict[str, Any]:
    return {
        "labels": {MANAGED_BY_LABEL: MANAGED_BY, PART_OF: spec.platform.part_of},
        "name": name,
        "namespace": namespace,
    }


def build_default_deny(spec: PlatformSpec, namespace: str) -> Manifest:
    """Deny all ingress and egress in `namespace`; everything allowed is allowed explicitly."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _platform_metadata(spec, "default-deny", namespace),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def build_allow_dns(spec: PlatformSpec, namespace: str) -> Manifest:
    """Let every pod in `namespace` resolve names through the cluster DNS."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _platform_metadata(spec, "allow-dns", namespace),
        "spec": {
            "egress": [
                {
                    "ports": [
                        {"port": DNS_PORT, "protocol": "UDP"},
                        {"port": DNS_PORT, "protocol": "TCP"},
                    ],
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {NAMESPACE_NAME: DNS_NAMESPACE}},
                            "podSelector": {"matchLabels": DNS_POD_LABELS},
                        }
                    ],
                }
            ],
            "podSelector": {},
            "policyTypes": ["Egress"],
        },
    }


def _ports(ports: tuple[ServicePort, ...]) -> list[dict[str, Any]]:
    return [{"port": p.port, "protocol": p.protocol} for p in ports]


def webhook_port(c: Component) -> ServicePort | None:
    """The port that receives `alertWebhook` notifications: Alertmanager's alone."""
    hook = c.alert_webhook
    return next((p for p in c.ports if p.name == hook.port), None) if hook else None


def serving_port_list(c: Component) -> list[dict[str, Any]]:
    """NetworkPolicy ports on which every client (component, tenant, endpoint) reaches `c`:
    its serving ports, except the alert webhook port (only Alertmanager reaches that)."""
    hook = webhook_port(c)
    return [
        {"port": port, "protocol": protocol}
        for port, protocol in serving_ports(c)
        if hook is None or (port, protocol) != (hook.port, hook.protocol)
    ]


def _pod_peer(namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME: namespace}},
        "podSelector": {"matchLabels": dict(labels)},
    }


def _namespace_peer(namespace: str) -> dict[str, Any]:
    """Every pod of `namespace` (a tenant)."""
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME: namespace}}}


def _endpoint_peer(endpoint: Endpoint) -> dict[str, Any]:
    if endpoint.cidr is not None:
        block: dict[str, Any] = {"cidr": endpoint.cidr}
        if endpoint.except_:
            block["except"] = list(endpoint.except_)
        return {"ipBlock": block}
    assert endpoint.namespace is not None  # guaranteed by spec.references
    return _pod_peer(endpoint.namespace, endpoint.pod_labels)


def build_network_policy(view: ComponentView) -> Manifest | None:
    """Ingress from dependents, exposedTo endpoints and Prometheus; egress to dependencies."""
    spec, c = view.spec, view.component
    ingress: list[dict[str, Any]] = []
    for name in view.dependents:
        other = spec.components[name]
        ingress.append(
            {
                "from": [_pod_peer(other.namespace, selector_labels(spec, name))],
                "ports": serving_port_list(c),
            }
        )
    for tenant in tenants_using(spec, view.name):
        ingress.append({"from": [_namespace_peer(tenant)], "ports": serving_port_list(c)})
    for source in c.exposed_to:
        ingress.append(
            {"from": [_endpoint_peer(spec.endpoints[source])], "ports": serving_port_list(c)}
        )
    hook = webhook_port(c)
    if hook is not None and c.alert_webhook is not None:
        alertmanager = spec.endpoints[c.alert_webhook.alertmanager]
        ingress.append({"from": [_endpoint_peer(alertmanager)], "ports": _ports((hook,))})
    if not has_own_service_name(c):
        namespace, labels = KNATIVE_ACTIVATOR
        ingress.append({"from": [_pod_peer(namespace, labels)], "ports": serving_port_list(c)})
    if c.metrics is not None:
        metrics_port = next(p for p in c.ports if p.name == c.metrics.port)
        mon = spec.monitoring
        ingress.append(
            {
                "from": [_pod_peer(mon.prometheus_namespace, mon.prometheus_pod_labels)],
                "ports": _ports((metrics_port,)),
            }
        )
    egress: list[dict[str, Any]] = []
    for target in c.depends_on:
        if target in spec.components:
            dep = spec.components[target]
            egress.append(
                {
                    "ports": serving_port_list(dep),
                    "to": [_pod_peer(dep.namespace, selector_labels(spec, target))],
                }
            )
        else:
            endpoint = spec.endpoints[target]
            egress.append({"ports": _ports(endpoint.ports), "to": [_endpoint_peer(endpoint)]})
    if c.distributed is not None:  # TrainJob workers reach each other on their port only
        ingress.append(worker_rule(view, "from"))
        egress.append(worker_rule(view, "to"))
    if not ingress and not egress:
        return None
    policy_spec: dict[str, Any] = {
        "podSelector": {"matchLabels": selector_labels(spec, view.name)},
        "policyTypes": ["Ingress", "Egress"],
    }
    if ingress:
        policy_spec["ingress"] = ingress
    if egress:
        policy_spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": selector_metadata(view, "NetworkPolicy"),
        "spec": policy_spec,
    }


def kubernetes_api_rule(spec: PlatformSpec) -> dict[str, Any] | None:
    """Egress to the endpoint marked `kubernetesApi` (None when the spec has none)."""
    for endpoint in spec.endpoints.values():
        if endpoint.kubernetes_api:
            return {"ports": _ports(endpoint.ports), "to": [_endpoint_peer(endpoint)]}
    return None


def build_pipeline_runs_policy(spec: PlatformSpec, name: str) -> Manifest | None:
    """Egress for the pods of a pipeline's runs (KFP creates them; default-deny covers them):
    the pipeline's `dependsOn` and the Kubernetes API, which every run pod's launcher calls."""
    pipeline = spec.pipelines[name]
    api = kubernetes_api_rule(spec)
    targets = [t for t in pipeline.depends_on if not spec.endpoints[t].kubernetes_api]
    if not targets and api is None:
        return None
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(
            spec,
            f"{name}-runs",
            "pipeline",
            pipeline.namespace,
            annotations=exception_annotations(
                [
                    (tool, check, "Kubeflow Pipelines creates the run pods this policy selects")
                    for tool, check in SELECTOR_CHECKS["NetworkPolicy"]
                ]
            ),
        ),
        "spec": {
            "egress": [
                *(
                    {
                        "ports": _ports(spec.endpoints[target].ports),
                        "to": [_endpoint_peer(spec.endpoints[target])],
                    }
                    for target in targets
                ),
                *([api] if api is not None else []),
            ],
            "podSelector": {"matchLabels": dict(pipeline.run_pod_labels)},
            "policyTypes": ["Egress"],
        },
    }
