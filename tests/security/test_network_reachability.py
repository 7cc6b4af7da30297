"""Network reachability: what the rendered NetworkPolicies allow == what platform.yaml declares.

`netpolicy list` (np-guard netpol-analyzer) computes every allowed connection between the
rendered workloads and a set of probe Pods standing in for everything outside the platform:
each endpoint of the spec, Prometheus, kube-dns, an unlabelled stranger in every platform
namespace and an outsider in a foreign namespace; IP blocks stand for the internet.

The intent is computed from the spec alone, independently of the NetworkPolicy builder:
  - a component reaches each `dependsOn` peer on that peer's ports;
  - each `exposedTo` endpoint reaches the component on the component's ports;
  - except for a Knative InferenceService: its clients (components and tenants alike, one
    function) reach Knative's queue-proxy in the pod, on 8012 (a fact of KServe's Knative
    mode, which forwards to the container port), and so does Knative's activator;
  - the port of an `alertWebhook` is no client's: only that Alertmanager reaches it;
  - Prometheus reaches the metrics port of every component with `metrics`;
  - every pod of a platform namespace resolves names through kube-dns (UDP and TCP 53);
  - each tenant (two probe pods in its namespace) resolves names, talks within its own
    namespace, and reaches each service in its `uses` on that service's ports;
  - the pods of KFP runs (one probe per pipeline, in its namespace, and one per tenant, with
    KFP's run labels) also reach the Kubernetes API server, the endpoint marked
    `kubernetesApi` (an IP block): the launcher patches its pod, reads kfp-launcher and
    records Argo task results. So does the driver of a SparkApplication (it creates its
    executors). No other pod reaches it;
  - a SparkApplication's pods (its driver and executor, as spark-submit makes them) reach each
    other on `spark.driverPort` and `spark.blockManagerPort`, and each reaches its `dependsOn`.
Everything else, ingress and egress, must be denied: in particular one tenant never reaches
another, and nothing outside a tenant reaches into it. On a mismatch the test prints both
matrices and the difference.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from spark_pods import spark_pods

from platformgen.spec.load import load_spec
from platformgen.spec.model import Pipeline, PlatformSpec

from ..e2e.derived import derived_workloads
from ..e2e.kube import (
    ROOT,
    TOOLS_BIN,
    Manifest,
    load_documents,
    require_tools,
)

pytestmark = pytest.mark.tools

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
DNS = ("kube-system", {"k8s-app": "kube-dns"})
ACTIVATOR = ("knative-serving", {"app": "activator"})
"""Knative's activator: it proxies requests to a Knative InferenceService's queue-proxy."""
OUTSIDE_NAMESPACE = "outside"
RUN_POD_LABELS = Pipeline.model_fields["run_pod_labels"].default
"""Labels of a KFP v2 run's pods, in tenants as in pipeline namespaces (KFP's, not ours)."""
BROKEN = ROOT / "tests" / "fixtures" / "broken"

Connection = tuple[str, str, str]  # (src, dst, "TCP 8080" | "All Connections")


@dataclass(frozen=True)
class ReachedPort:
    port: int
    protocol: str = "TCP"


def reached_on(component: Any) -> list[Any]:
    """The ports a component's clients connect to (see the module docstring)."""
    if component.kind == "InferenceService" and component.deployment_mode == "Knative":
        return [ReachedPort(8012)]
    if component.kind == "InferenceService" and component.payload_logger is not None:
        return [ReachedPort(9081)]  # Standard mode: KServe's agent sidecar logs the requests
    hook = component.alert_webhook
    return [p for p in component.ports if hook is None or p.name != hook.port]


def webhook_ports(component: Any) -> list[Any]:
    """The port Alertmanager posts the component's alerts to (`alertWebhook`), its alone."""
    hook = component.alert_webhook
    return [p for p in component.ports if hook is not None and p.name == hook.port]


@dataclass(frozen=True)
class Peer:
    """A probe Pod standing in for something outside the rendered output."""

    namespace: str
    name: str
    labels: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}[Pod]"

    def manifest(self) -> Manifest:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
            "spec": {"containers": [{"name": "main", "image": "probe"}]},
        }


def workload_id(doc: Manifest) -> str:
    return f"{doc['metadata']['namespace']}/{doc['metadata']['name']}[{doc['kind']}]"


def component_peers(
    spec: PlatformSpec, documents: list[Manifest]
) -> tuple[dict[str, str], list[Manifest], dict[str, list[str]]]:
    """Component name -> peer id, plus the workloads controllers would derive from custom
    resources (a KServe predictor Deployment, a Katib trial Job, Spark's driver and executor
    Pods), which netpolicy cannot read, and component name -> its pods' ids where it has
    several kinds of pod (a SparkApplication)."""
    ids: dict[str, str] = {}
    derived: list[Manifest] = []
    pods: dict[str, list[str]] = {}
    for doc in documents:
        # By the component's name label: a content-named Job is `<component>-<digits>`.
        name = doc["metadata"].get("labels", {}).get("app.kubernetes.io/name")
        if name not in spec.components:
            continue
        if doc["kind"] in WORKLOAD_KINDS:
            ids[name] = workload_id(doc)
        for workload in derived_workloads(doc):
            derived.append(workload)
            ids[name] = workload_id(workload)
        if doc["kind"] == "SparkApplication":  # the pods spark-submit makes (tests/spark_pods.py)
            for pod in spark_pods(doc):
                derived.append(pod)
                ids[name] = workload_id(pod)
                pods.setdefault(name, []).append(workload_id(pod))
    missing = sorted(set(spec.components) - set(ids))
    assert not missing, f"no rendered workload for components {missing}"
    return ids, derived, pods


def ip_ranges(cidr: str, excluded: Iterable[str]) -> list[str]:
    """netpolicy's notation for an IP block: 'first-last' ranges of the allowed addresses."""
    networks = [ipaddress.ip_network(cidr)]
    for block in excluded:
        cut = ipaddress.ip_network(block)
        networks = [
            part
            for net in networks
            for part in (net.address_exclude(cut) if cut.subnet_of(net) else [net])
        ]
    ranges: list[list[Any]] = []
    for net in sorted(ipaddress.collapse_addresses(networks)):
        first, last = net.network_address, net.broadcast_address
        if ranges and int(ranges[-1][1]) + 1 == int(first):
            ranges[-1][1] = last
        else:
            ranges.append([first, last])
    return [f"{first}-{last}" for first, last in ranges]


def model(
    spec: PlatformSpec, documents: list[Manifest]
) -> tuple[set[Connection], list[Manifest], set[str]]:
    """(intended connections, probe manifests, ids of every pod in a platform namespace)."""
    ids, derived, pods = component_peers(spec, documents)
    probes: list[Peer] = []
    endpoint_peers: dict[str, Peer] = {}
    for name, endpoint in spec.endpoints.items():
        if endpoint.namespace is not None:
            endpoint_peers[name] = Peer(
                endpoint.namespace, f"endpoint-{name}", dict(endpoint.pod_labels) or {"probe": name}
            )
    prometheus = Peer(
        spec.monitoring.prometheus_namespace,
        "prometheus",
        dict(spec.monitoring.prometheus_pod_labels),
    )
    dns = Peer(DNS[0], "kube-dns", DNS[1])
    activator = Peer(ACTIVATOR[0], "activator", ACTIVATOR[1])
    strangers = [Peer(ns, "stranger", {"probe": "stranger"}) for ns in spec.namespaces]
    outsider = Peer(OUTSIDE_NAMESPACE, "outsider", {"probe": "outsider"})
    tenants = {
        name: [Peer(name, f"{name}-{i}", {"probe": f"tenant-{i}"}) for i in (1, 2)]
        + [Peer(name, f"{name}-run", dict(RUN_POD_LABELS))]
        for name in spec.tenancy.tenants
    }
    # A pod of each pipeline's runs (KFP creates them, labelled run_pod_labels).
    runs = {
        name: Peer(p.namespace, f"{name}-run", dict(p.run_pod_labels))
        for name, p in spec.pipelines.items()
    }
    api_servers = [name for name, e in spec.endpoints.items() if e.kubernetes_api]
    probes += [*endpoint_peers.values(), prometheus, dns, activator, *strangers, outsider]
    probes += [p for pods in tenants.values() for p in pods]
    probes += list(runs.values())

    intent: set[Connection] = set()

    def allow(src: str, dst: str, ports: Iterable[Any]) -> None:
        for port in ports:
            intent.add((src, dst, f"{port.protocol} {port.port}"))

    # Every pod of a platform namespace (a component or not) resolves names via kube-dns.
    everyone = [*ids.values(), *(p for ps in pods.values() for p in ps)]
    for me in [*dict.fromkeys(everyone), *(s.id for s in strangers)]:
        intent.add((me, dns.id, "TCP 53"))
        intent.add((me, dns.id, "UDP 53"))

    def connect(src: str, target: str) -> None:
        """`src` connects to `target` (a component or an endpoint) the way every client does:
        one function for components' dependsOn and tenants' uses alike, so a client kind can
        never be modelled on the wrong port (tenants once were, on a Serverless container port)."""
        if target in spec.components:
            allow(src, ids[target], reached_on(spec.components[target]))
            return
        endpoint = spec.endpoints[target]
        if endpoint.namespace is not None:
            allow(src, endpoint_peers[target].id, endpoint.ports)
        else:
            assert endpoint.cidr is not None
            for block in ip_ranges(endpoint.cidr, endpoint.except_):
                allow(src, block, endpoint.ports)

    for name, component in spec.components.items():
        me = ids[name]
        for source in pods.get(name, [me]):
            for target in component.depends_on:
                connect(source, target)
        if component.spark is not None:
            spark_ports = [
                ReachedPort(component.spark.driver_port),
                ReachedPort(component.spark.block_manager_port),
            ]
            for source in pods[name]:
                for other in pods[name]:
                    if other != source:
                        allow(source, other, spark_ports)
            (driver,) = [p for p in pods[name] if p.endswith("-driver[Pod]")]
            for target in api_servers:
                connect(driver, target)
        if component.kind == "InferenceService" and component.deployment_mode == "Knative":
            allow(activator.id, me, reached_on(component))
        if component.alert_webhook is not None:
            allow(
                endpoint_peers[component.alert_webhook.alertmanager].id,
                me,
                webhook_ports(component),
            )
        for source in component.exposed_to:
            endpoint = spec.endpoints[source]
            if endpoint.namespace is not None:
                allow(endpoint_peers[source].id, me, reached_on(component))
            else:
                assert endpoint.cidr is not None
                for block in ip_ranges(endpoint.cidr, endpoint.except_):
                    allow(block, me, reached_on(component))
        if component.metrics is not None:
            port = next(p for p in component.ports if p.name == component.metrics.port)
            allow(prometheus.id, me, [port])
    # A KFP run pod resolves names, reaches its pipeline's dependsOn, and (its launcher) the
    # Kubernetes API server: pipeline runs here, tenants' runs below.
    for name, pipeline in spec.pipelines.items():
        me = runs[name].id
        intent.add((me, dns.id, "TCP 53"))
        intent.add((me, dns.id, "UDP 53"))
        for target in {*pipeline.depends_on, *api_servers}:
            connect(me, target)
    for name, tenant in spec.tenancy.tenants.items():
        for me in tenants[name]:
            if me.name.endswith("-run"):
                for target in api_servers:
                    connect(me.id, target)
            intent.add((me.id, dns.id, "TCP 53"))
            intent.add((me.id, dns.id, "UDP 53"))
            for other in tenants[name]:
                if other != me:
                    intent.add((me.id, other.id, "All Connections"))
            for target in tenant.uses:
                connect(me.id, target)

    namespaces = sorted(
        {p.namespace for p in probes} - set(spec.namespaces) - set(spec.tenancy.tenants)
    )
    manifests = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
        }
        for ns in namespaces
    ] + [p.manifest() for p in probes]
    platform = {
        f"{d['metadata']['namespace']}/{d['metadata']['name']}[{d['kind']}]"
        for d in [*documents, *manifests, *derived]
        if d["kind"] in (*WORKLOAD_KINDS, "Pod")
        and d["metadata"]["namespace"] in {*spec.namespaces, *spec.tenancy.tenants}
    }
    return intent, manifests + derived, platform


def computed_connections(documents: list[Manifest], workdir: Path) -> set[Connection]:
    """`netpolicy list` over the documents, one (src, dst, "PROTO port") per allowed port."""
    require_tools("netpolicy")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "manifests.yaml").write_text(
        yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8"
    )
    result = subprocess.run(
        [str(TOOLS_BIN / "netpolicy"), "list", "--dirpath", str(workdir), "-o", "json", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"netpolicy list failed:\n{result.stderr}{result.stdout}"
    connections: set[Connection] = set()
    for row in json.loads(result.stdout or "[]"):
        for part in row["conn"].split(","):
            for conn in expand_port_range(part.strip()):
                connections.add((row["src"], row["dst"], conn))
    return connections


def expand_port_range(conn: str) -> list[str]:
    """netpolicy merges adjacent ports ("TCP 8887-8888"); intent lists them one by one."""
    proto, _, ports = conn.partition(" ")
    low, dash, high = ports.partition("-")
    if not dash or not (low.isdigit() and high.isdigit()):
        return [conn]
    return [f"{proto} {port}" for port in range(int(low), int(high) + 1)]


def matrix(connections: set[Connection], peers: list[str]) -> str:
    """Rows are sources, columns destinations (numbered, legend below); '-' means denied."""
    cells: dict[tuple[str, str], list[str]] = {}
    for src, dst, conn in connections:
        cells.setdefault((src, dst), []).append(conn)
    table = [["src \\ dst", *(f"[{i}]" for i in range(len(peers)))]]
    for i, src in enumerate(peers):
        table.append(
            [f"[{i}] {src}", *(",".join(sorted(cells.get((src, dst), []))) or "-" for dst in peers)]
        )
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table)
    return "\n".join(line.rstrip() for line in lines)


def reachability_mismatch(
    spec: PlatformSpec, documents: list[Manifest], workdir: Path
) -> str | None:
    """None when computed == intended; otherwise a report with both matrices."""
    intent, probes, platform = model(spec, documents)
    computed = computed_connections(documents + probes, workdir)
    # Connections with a pod of a platform namespace at one end are the platform's business.
    relevant = {c for c in computed if c[0] in platform or c[1] in platform}
    if relevant == intent:
        return None
    # Every workload and probe, so denied peers show as rows and columns of '-'.
    named = {
        f"{d['metadata']['namespace']}/{d['metadata']['name']}[{d['kind']}]"
        for d in probes
        if d["kind"] != "Namespace"
    }
    peers = sorted(named | {c[0] for c in relevant | intent} | {c[1] for c in relevant | intent})
    unexpected = sorted(relevant - intent)
    missing = sorted(intent - relevant)
    return "\n".join(
        [
            "NetworkPolicies do not match the intent declared in the spec.",
            *(f"  unexpected (allowed, not declared): {s} => {d} : {c}" for s, d, c in unexpected),
            *(f"  missing (declared, not allowed):    {s} => {d} : {c}" for s, d, c in missing),
            "",
            "declared intent:",
            matrix(intent, peers),
            "",
            "computed by netpolicy:",
            matrix(relevant, peers),
        ]
    )


@pytest.fixture(scope="session")
def spec() -> PlatformSpec:
    return load_spec(ROOT / "platform.yaml")


def test_reachability_matches_declared_intent(
    spec: PlatformSpec, rendered: str, tmp_path: Path
) -> None:
    report = reachability_mismatch(spec, load_documents(rendered), tmp_path)
    assert report is None, report


def test_extra_allow_is_caught(spec: PlatformSpec, rendered: str, tmp_path: Path) -> None:
    """tests/fixtures/broken/extra-allow-network-policy.yaml opens one namespace to itself."""
    extra = load_documents((BROKEN / "extra-allow-network-policy.yaml").read_text(encoding="utf-8"))
    namespace = next(iter(spec.namespaces))
    for doc in extra:
        doc["metadata"]["namespace"] = namespace
    report = reachability_mismatch(spec, load_documents(rendered) + extra, tmp_path)
    assert report is not None, "an extra allow-all ingress policy went unnoticed"
    assert "unexpected (allowed, not declared)" in report
