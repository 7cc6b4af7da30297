"""Invariants over every object the full fixture renders, in base and in every environment."""

from __future__ import annotations

from typing import Any

import pytest
from spark_pods import spark_pods

from platformgen.builders import build_platform
from platformgen.naming import Manifest
from platformgen.spec.load import load_spec
from platformgen.spec.model import Pipeline, PlatformSpec

from support import ROOT, SPECS

SPEC_FILES = {"full": SPECS / "full.yaml", "platform": ROOT / "platform.yaml"}
CASES = [
    (name, env)
    for name, path in SPEC_FILES.items()
    for env in [None, *sorted(load_spec(path).environments)]
]


KFP_RUN_POD_LABELS = Pipeline.model_fields["run_pod_labels"].default


def objects(case: str, env: str | None) -> tuple[PlatformSpec, list[Manifest]]:
    spec = load_spec(SPEC_FILES[case])
    return spec, [m for group in build_platform(spec, env).values() for m in group]


def pod(m: Manifest) -> tuple[dict[str, str], dict[str, Any]] | None:
    """(pod labels, pod spec) of a workload object, or None."""
    kind = m["kind"]
    if kind in {"Deployment", "Job"}:
        t = m["spec"]["template"]
        return t["metadata"]["labels"], t["spec"]
    if kind == "CronJob":
        t = m["spec"]["jobTemplate"]["spec"]["template"]
        return t["metadata"]["labels"], t["spec"]
    if kind == "Experiment":
        t = m["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]
        return t["metadata"]["labels"], t["spec"]
    if kind == "TrainingRuntime":
        job = m["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]
        t = job["spec"]["template"]
        return t["metadata"]["labels"], t["spec"]
    if kind == "SparkApplication":  # the driver's pod; the executors' differ in spark-role
        driver = spark_pods(m)[0]
        return driver["metadata"]["labels"], driver["spec"]
    if kind == "InferenceService":
        p = m["spec"]["predictor"]
        return p["labels"], p
    return None


def calls_kubernetes_api(items: list[Manifest], account: str, namespace: str) -> bool:
    """Whether a RoleBinding gives ServiceAccount `account` a Role on the Kubernetes API (the KFP
    API, pipelines.kubeflow.org, authenticates by its own projected token)."""
    roles = {
        m["metadata"]["name"]
        for m in by_kind(items, "RoleBinding")
        if {"kind": "ServiceAccount", "name": account, "namespace": namespace} in m["subjects"]
        and m["roleRef"]["kind"] == "Role"
    }
    return any(
        set(rule["apiGroups"]) - {"pipelines.kubeflow.org"}
        for m in by_kind(items, "Role")
        if m["metadata"]["name"] in roles
        for rule in m["rules"]
    )


def by_kind(items: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in items if m["kind"] == kind]


def find(items: list[Manifest], kind: str, namespace: str, name: str) -> Manifest | None:
    for m in by_kind(items, kind):
        if m["metadata"]["name"] == name and m["metadata"].get("namespace") == namespace:
            return m
    return None


def pods_of(items: list[Manifest], namespace: str) -> list[dict[str, str]]:
    return [
        labels
        for m in items
        if m["metadata"].get("namespace") == namespace and (p := pod(m)) is not None
        for labels in [p[0]]
    ]


def environment_pods(case: str, namespace: str) -> list[dict[str, str]]:
    spec = load_spec(SPEC_FILES[case])
    return [
        labels for env in spec.environments for labels in pods_of(objects(case, env)[1], namespace)
    ]


def subset(small: dict[str, str], big: dict[str, str]) -> bool:
    return small.items() <= big.items()


params = pytest.mark.parametrize(
    ("case", "env"), CASES, ids=[f"{c}-{e or 'base'}" for c, e in CASES]
)


@params
def test_selectors_are_subsets_of_pod_labels(case: str, env: str | None) -> None:
    _, items = objects(case, env)
    for m in items:
        ns, name = m["metadata"].get("namespace"), m["metadata"]["name"]
        if m["kind"] == "Deployment":
            assert subset(
                m["spec"]["selector"]["matchLabels"], m["spec"]["template"]["metadata"]["labels"]
            )
            assert "app.kubernetes.io/version" not in m["spec"]["selector"]["matchLabels"]
        selector = None
        if m["kind"] in {"Service"}:
            selector = m["spec"]["selector"]
        elif m["kind"] == "PodDisruptionBudget":
            selector = m["spec"]["selector"]["matchLabels"]
        elif m["kind"] == "NetworkPolicy" and m["spec"]["podSelector"]:
            selector = m["spec"]["podSelector"]["matchLabels"]
            if selector == KFP_RUN_POD_LABELS:
                continue  # a tenant's KFP run pods: KFP creates them, no manifest holds them
        if selector is not None:
            # Base has no content-named Job (environments render it whole): its pods count
            # as the ones base's selectors are for.
            pods = pods_of(items, ns) + (environment_pods(case, ns) if env is None else [])
            matched = [labels for labels in pods if subset(selector, labels)]
            assert matched, f"{m['kind']} {ns}/{name} selects no pod"


@params
def test_network_policy_ports_equal_service_ports(case: str, env: str | None) -> None:
    spec, items = objects(case, env)
    for name, c in spec.components.items():
        service = find(items, "Service", c.namespace, name)
        if service is None:
            continue
        hook = c.alert_webhook.port if c.alert_webhook is not None else None
        service_ports = {
            (p["port"], p["protocol"]) for p in service["spec"]["ports"] if p["name"] != hook
        }
        # Ingress into the component from each dependent uses exactly the Service ports (but
        # the alert webhook's, which only Alertmanager reaches).
        policy = find(items, "NetworkPolicy", c.namespace, name)
        assert policy is not None
        dependents = [o for o, oc in spec.components.items() if name in oc.depends_on]
        for rule in policy["spec"].get("ingress", []):
            peer = rule["from"][0].get("podSelector", {}).get("matchLabels", {})
            if peer.get("app.kubernetes.io/name") in dependents:
                assert {(p["port"], p["protocol"]) for p in rule["ports"]} == service_ports
        # Egress of each dependent towards it uses the same ports.
        for other in dependents:
            oc = spec.components[other]
            out = find(items, "NetworkPolicy", oc.namespace, other)
            assert out is not None
            rules = [
                r
                for r in out["spec"]["egress"]
                if r["to"][0]
                .get("podSelector", {})
                .get("matchLabels", {})
                .get("app.kubernetes.io/name")
                == name
            ]
            assert len(rules) == 1
            assert {(p["port"], p["protocol"]) for p in rules[0]["ports"]} == service_ports


@params
def test_service_monitor_ports_exist_on_the_service(case: str, env: str | None) -> None:
    _, items = objects(case, env)
    monitors = by_kind(items, "ServiceMonitor")
    assert monitors
    for sm in monitors:
        ns = sm["metadata"]["namespace"]
        services = [
            s
            for s in by_kind(items, "Service")
            if s["metadata"]["namespace"] == ns
            and subset(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert len(services) == 1
        names = {p["name"] for p in services[0]["spec"]["ports"]}
        for endpoint in sm["spec"]["endpoints"]:
            assert endpoint["port"] in names


@params
def test_prometheus_rules_match_the_rule_selector(case: str, env: str | None) -> None:
    spec, items = objects(case, env)
    rules = by_kind(items, "PrometheusRule")
    assert rules
    for rule in rules:
        assert subset(spec.monitoring.selector_labels, rule["metadata"]["labels"])
        for group in rule["spec"]["groups"]:
            for alert in group["rules"]:
                if "record" in alert:  # recording rules: level:metric:operations
                    assert alert["record"].count(":") == 2, alert["record"]
                    continue
                assert alert["labels"]["severity"] in {"warning", "critical"}
                assert {"summary", "description", "runbook_url"} <= set(alert["annotations"])


@params
def test_every_container_is_restricted_and_bounded(case: str, env: str | None) -> None:
    spec, items = objects(case, env)
    workloads = [m for m in items if pod(m) is not None]
    assert workloads
    for m in workloads:
        _, pod_spec = pod(m)  # type: ignore[misc]
        assert pod_spec["securityContext"]["runAsNonRoot"] is True
        assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        # The Kubernetes API token only for RBAC on the Kubernetes API.
        name = m["metadata"]["labels"]["app.kubernetes.io/name"]
        account = pod_spec.get("serviceAccountName", name)  # Spark: the SparkApplication's
        api = calls_kubernetes_api(items, account, m["metadata"]["namespace"])
        assert pod_spec["automountServiceAccountToken"] is api, name
        mounts = {v["name"] for v in pod_spec["volumes"]}
        for c in pod_spec["containers"]:
            ctx = c["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["capabilities"] == {"drop": ["ALL"]}
            assert ctx["runAsNonRoot"] is True
            assert ctx["runAsUser"] == spec.defaults.run_as_user >= 1000
            assert c["resources"]["requests"].keys() >= {"cpu", "memory"}
            assert "memory" in c["resources"]["limits"]
            assert "/tmp" in {v["mountPath"] for v in c["volumeMounts"]}
            assert {v["name"] for v in c["volumeMounts"]} <= mounts


@params
def test_every_namespace_is_restricted_and_default_deny(case: str, env: str | None) -> None:
    spec, items = objects(case, env)
    for ns in spec.namespaces:
        namespace = find(items, "Namespace", None, ns)  # type: ignore[arg-type]
        assert namespace is not None
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        deny = find(items, "NetworkPolicy", ns, "default-deny")
        assert deny is not None
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


@params
def test_standard_labels_everywhere(case: str, env: str | None) -> None:
    spec, items = objects(case, env)
    for m in items:
        labels = m["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "platformgen"
        assert labels["app.kubernetes.io/part-of"] == spec.platform.part_of
