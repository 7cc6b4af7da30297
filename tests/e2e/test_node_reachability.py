"""The reachability matrix, measured with real packets on a real node.

tests/security/test_network_reachability.py derives from platform.yaml which connections the
platform intends (`model`) and checks the rendered NetworkPolicies with a policy analyser. Here
the same model meets the kernel: the dev overlay's Namespaces and NetworkPolicies are applied to
a cluster with a node whose NetworkPolicy controller (kube-router) enforces them, and every peer
of the model becomes a probe pod with exactly that peer's namespace and pod labels (a workload's
pod-template labels, a probe's labels), listening with `nc` on every port the model names for
it (plus PROBE_PORT, so peers the model names no port for are measured too). Each pod then
connects to every other peer on each of those ports; a connection counts as made only when the
answer names the peer it was meant for. kube-dns is the real CoreDNS (UDP: a DNS query; TCP: a
connection to port 53), and the API server is a peer too, at its endpoint address (what policies
see after the `kubernetes` Service's DNAT): the model's endpoint marked `kubernetesApi` gets this
cluster's apiserver address as its `cidr` (re-rendered from a copy of the spec), or, if the model
has none, a peer of its own that no platform pod may reach. As in the model, only pairs with a
platform pod at one end are compared.

The measured matrix must equal the model's. Not measured, and listed when the test fails:
other IP blocks (no packet may leave the machine) and UDP ports other than DNS (busybox has no
UDP listener).
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import ipaddress
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import yaml

from platformgen.spec.load import load_spec
from platformgen.spec.model import PlatformSpec

from ..security.test_network_reachability import BROKEN, WORKLOAD_KINDS, matrix, model
from .kube import ROOT, Cluster, Manifest, kustomize_build, load_documents
from .node import listen_script, pod_ips, probe_pod, wait_running
from .test_apply import render_copy

pytestmark = pytest.mark.tools

ENVIRONMENT = "dev"
PROBE_PORT = 4242
"""Every probe also listens here: a port no policy names, so 'All Connections' and denials
between peers the model names no port for are measured on a real listener."""
DNS_ID = "kube-system/kube-dns[Pod]"
APISERVER_ID = "apiserver"
CONNECT_TIMEOUT = 3

Connection = tuple[str, str, str]


@dataclass(frozen=True)
class Peer:
    """One peer of the model as a probe pod."""

    id: str
    namespace: str
    pod: str
    labels: dict[str, str]
    ports: set[str] = field(default_factory=set, compare=False, hash=False)


def pod_template_labels(doc: Manifest) -> dict[str, str]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    if doc["kind"] == "Pod":
        return dict(doc["metadata"].get("labels", {}))
    return dict(spec["template"]["metadata"].get("labels", {}))


def container_ports(doc: Manifest) -> set[str]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = spec if doc["kind"] == "Pod" else spec["template"]["spec"]
    return {
        f"{port.get('protocol', 'TCP')} {port['containerPort']}"
        for container in pod.get("containers", [])
        for port in container.get("ports", [])
    }


def pod_name(peer_id: str) -> str:
    """A DNS-1123 pod name, unique per peer id, that says which peer it stands for."""
    name = re.sub(r"[^a-z0-9-]+", "-", peer_id.split("/", 1)[1].lower()).strip("-")
    return f"{name[:50]}-{hashlib.sha256(peer_id.encode()).hexdigest()[:8]}"


def peers(documents: list[Manifest], probes: list[Manifest], intent: set[Connection]) -> list[Peer]:
    """Every workload of the rendered output and every probe of the model, with the ports the
    model names for it (and its containers declare)."""
    found: dict[str, Peer] = {}
    for doc in [*documents, *probes]:
        if doc["kind"] not in (*WORKLOAD_KINDS, "Pod"):
            continue
        meta = doc["metadata"]
        peer_id = f"{meta['namespace']}/{meta['name']}[{doc['kind']}]"
        found[peer_id] = Peer(
            peer_id,
            meta["namespace"],
            pod_name(peer_id),
            pod_template_labels(doc),
            container_ports(doc) | {f"TCP {PROBE_PORT}"},
        )
    for _, dst, conn in intent:
        if dst in found and conn != "All Connections":
            found[dst].ports.add(conn)
    return sorted(found.values(), key=lambda p: p.id)


@dataclass(frozen=True)
class Target:
    """Where a connection to (peer, port) goes, and how success is recognised."""

    address: str
    port: int
    protocol: str
    answer: str | None  # the text the listener answers with; None: a made connection counts


@dataclass
class Measurement:
    measured: set[Connection]  # allowed connections, as the model writes them
    tested: set[Connection]  # every connection tried
    not_measured: list[str]
    peer_ids: list[str]


def probe_command(target: Target, index: int) -> str:
    """A shell line that prints `ok <index>` when the connection is made, else `no <index>`.
    A failed attempt is tried once more: policies decide deterministically, so a second try
    only hides a probe that lost a race with a busy machine, never a policy's verdict."""
    if target.protocol == "UDP":  # DNS: a query to the real CoreDNS
        check = (
            f"timeout {CONNECT_TIMEOUT + 1} nslookup kubernetes.default.svc.cluster.local "
            f"{target.address} >/dev/null 2>&1"
        )
    elif target.answer is None:  # connected is enough (`-e true` runs once connected)
        check = f"nc -w {CONNECT_TIMEOUT} {target.address} {target.port} -e /bin/true 2>/dev/null"
    else:
        check = (
            f'[ "$(nc -w {CONNECT_TIMEOUT} {target.address} {target.port} </dev/null 2>/dev/null)"'
            f' = "{target.answer}" ]'
        )
    return f"( {{ {check} || {check}; }} && echo ok {index} || echo no {index} ) &"


def measure(
    cluster: Cluster,
    sources: list[Peer],
    targets: dict[tuple[str, str], Target],
    relevant: set[str],
) -> tuple[set[Connection], set[Connection]]:
    """From each source pod, try every (peer, port) target at once; (allowed, tried)."""

    def from_source(source: Peer) -> tuple[set[Connection], set[Connection]]:
        tried = [
            (dst, conn, target)
            for (dst, conn), target in sorted(targets.items())
            if dst != source.id and (source.id in relevant or dst in relevant)
        ]
        if not tried:
            return set(), set()
        script = "\n".join([*(probe_command(t, i) for i, (_, _, t) in enumerate(tried)), "wait"])
        result = cluster.kubectl(
            "exec", "-n", source.namespace, source.pod, "--", "sh", "-c", script, check=False
        )
        lines = [line.split() for line in result.stdout.splitlines()]
        made = {int(words[1]) for words in lines if words[:1] == ["ok"]}
        answered = {int(words[1]) for words in lines if words[:1] in (["ok"], ["no"])}
        assert answered == set(range(len(tried))), (
            f"probes from {source.id} did not all report:\n{result.stdout}{result.stderr}"
        )
        return (
            {(source.id, dst, conn) for i, (dst, conn, _) in enumerate(tried) if i in made},
            {(source.id, dst, conn) for dst, conn, _ in tried},
        )

    allowed: set[Connection] = set()
    tested: set[Connection] = set()
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        for made, tried in pool.map(from_source, sources):
            allowed |= made
            tested |= tried
    return allowed, tested


def expected(intent: set[Connection], tested: set[Connection]) -> set[Connection]:
    """The model's intent over the tried connections ('All Connections' = every port)."""
    return {
        (src, dst, conn)
        for src, dst, conn in tested
        if (src, dst, conn) in intent or (src, dst, "All Connections") in intent
    }


def report(measurement: Measurement, intent: set[Connection]) -> str | None:
    want = expected(intent, measurement.tested)
    if measurement.measured == want:
        return None
    extra = sorted(measurement.measured - want)
    missing = sorted(want - measurement.measured)
    return "\n".join(
        [
            "Real packets disagree with the NetworkPolicy model of platform.yaml.",
            *(f"  unexpected (delivered, not declared): {s} => {d} : {c}" for s, d, c in extra),
            *(f"  missing (declared, not delivered):    {s} => {d} : {c}" for s, d, c in missing),
            "",
            "declared intent (over the connections tried):",
            matrix(want, measurement.peer_ids),
            "",
            "measured with real packets:",
            matrix(measurement.measured, measurement.peer_ids),
            "",
            "not measured:",
            *(f"  {line}" for line in measurement.not_measured),
        ]
    )


@dataclass
class Setup:
    cluster: Cluster
    intent: set[Connection]
    sources: list[Peer]
    targets: dict[tuple[str, str], Target]
    relevant: set[str]
    not_measured: list[str]

    def measure(self) -> Measurement:
        measured, tested = measure(self.cluster, self.sources, self.targets, self.relevant)
        ids = sorted({p.id for p in self.sources} | {dst for dst, _ in self.targets})
        return Measurement(measured, tested, self.not_measured, ids)


def wait_for_policy_sync(cluster: Cluster, settle: float = 3.0) -> None:
    """kube-router applies policies on every change of pods, namespaces or policies; wait until
    its log has been quiet for `settle` seconds (each sync logs), at most 60 s."""
    log = cluster.state / "logs" / "kube-router.log"
    deadline = time.monotonic() + 60
    size = log.stat().st_size
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = log.stat().st_size
        if now != size:
            size, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return


def in_ip_range(peer_id: str, address: str) -> bool:
    """Whether a model peer written as an IP range ('first-last') holds `address`."""
    first, dash, last = peer_id.partition("-")
    try:
        low, high, ip = (ipaddress.ip_address(a) for a in (first, last, address))
    except ValueError:
        return False
    return bool(dash) and low <= ip <= high


@dataclass(frozen=True)
class Rendered:
    spec: PlatformSpec
    documents: list[Manifest]


@pytest.fixture(scope="module")
def rendered_for_node(node_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The dev overlay as rendered for this cluster: an endpoint marked `kubernetesApi` (the
    API server, an IP block) gets this cluster's apiserver address as its `cidr`, as
    platform.yaml tells users to set their clusters' range; the rest of the spec is unchanged.
    Without such an endpoint, the committed overlays/dev is used as it is."""
    node = node_cluster.node
    assert node is not None
    spec = load_spec(ROOT / "platform.yaml")
    api = [n for n, e in spec.endpoints.items() if getattr(e, "kubernetes_api", False)]
    if not api:
        return Rendered(spec, load_documents(kustomize_build(ROOT / "overlays" / ENVIRONMENT)))
    raw = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    for name in api:
        raw["endpoints"][name]["cidr"] = f"{node.host_ip}/32"
        raw["endpoints"][name].pop("except", None)
    folder = tmp_path_factory.mktemp("reachability") / "repo"
    text = render_copy(raw, folder, ENVIRONMENT)
    return Rendered(load_spec(folder / "platform.yaml"), load_documents(text))


@pytest.fixture(scope="module")
def setup(node_cluster: Cluster, rendered_for_node: Rendered) -> Iterator[Setup]:
    spec, documents = rendered_for_node.spec, rendered_for_node.documents
    intent, probes, platform = model(spec, documents)
    node = node_cluster.node
    assert node is not None
    all_peers = peers(documents, probes, intent)
    by_id = {p.id: p for p in all_peers}
    named = {c[0] for c in intent} | {c[1] for c in intent}
    # The API server: the model's IP block holding this cluster's apiserver address, or (when
    # the model has none) a peer of its own that nothing in a platform namespace may reach.
    api_ids = sorted(n for n in named if in_ip_range(n, node.host_ip)) or [APISERVER_ID]
    unmeasured_ids = sorted(named - set(by_id) - set(api_ids))

    # The namespaces (rendered, and the model's foreign ones) and the policies, nothing else.
    namespaces = [d for d in [*documents, *probes] if d["kind"] == "Namespace"]
    policies = [d for d in documents if d["kind"] == "NetworkPolicy"]
    node_cluster.kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(
            [d for d in namespaces if d["metadata"]["name"] != "kube-system"] + policies
        ),
    )
    # A pod per peer. The kube-dns peer is never Ready, so the kube-dns Service keeps sending
    # queries to the real CoreDNS (which stands for kube-dns as a destination).
    pods = [
        probe_pod(
            p.pod,
            p.namespace,
            listen_script([int(c.split()[1]) for c in p.ports if c.startswith("TCP ")], p.pod),
            labels=p.labels,
            ready=p.id != DNS_ID,
        )
        for p in all_peers
    ]
    node_cluster.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(pods))
    for namespace in sorted({p.namespace for p in all_peers}):
        wait_running(
            node_cluster, namespace, [p.pod for p in all_peers if p.namespace == namespace]
        )

    ips: dict[str, str] = {}
    for namespace in sorted({p.namespace for p in all_peers}):
        ips.update({f"{namespace}/{k}": v for k, v in pod_ips(node_cluster, namespace).items()})
    coredns = [
        p["status"]["podIP"]
        for p in node_cluster.get_json("pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")[
            "items"
        ]
        if p["metadata"]["name"].startswith("coredns-")
    ]
    assert len(coredns) == 1, coredns
    targets: dict[tuple[str, str], Target] = {}
    not_measured = [f"{peer}: an IP block or unknown peer" for peer in unmeasured_ids]
    for p in all_peers:
        if p.id == DNS_ID:
            targets[(p.id, "TCP 53")] = Target(coredns[0], 53, "TCP", None)
            targets[(p.id, "UDP 53")] = Target(coredns[0], 53, "UDP", None)
            continue
        for conn in sorted(p.ports):
            protocol, port = conn.split()
            if protocol != "TCP":
                not_measured.append(f"{p.id}: {conn} (not TCP)")
                continue
            targets[(p.id, conn)] = Target(ips[f"{p.namespace}/{p.pod}"], int(port), "TCP", p.pod)
    # The apiserver at its endpoint address, as NetworkPolicies see it after the `kubernetes`
    # Service's DNAT: on 6443 and every port the model names for it.
    for api_id in api_ids:
        named_ports = {c for _, d, c in intent if d == api_id and c.startswith("TCP ")}
        ports = {6443} | {int(c.split()[1]) for c in named_ports}
        for port in sorted(ports):
            targets[(api_id, f"TCP {port}")] = Target(node.host_ip, port, "TCP", None)
    wait_for_policy_sync(node_cluster)
    yield Setup(node_cluster, intent, all_peers, targets, platform, not_measured)
    for namespace in sorted({p.namespace for p in all_peers} - {"kube-system"}):
        node_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    for p in all_peers:
        if p.namespace == "kube-system":
            node_cluster.kubectl("delete", "pod", p.pod, "-n", p.namespace, check=False)


def test_real_packets_match_the_model(setup: Setup) -> None:
    measurement = setup.measure()
    assert measurement.tested, "nothing was measured"
    assert measurement.measured, "no connection was made at all: the probes do not work"
    problem = report(measurement, setup.intent)
    assert problem is None, problem


def test_an_extra_allow_policy_is_caught_by_real_packets(
    setup: Setup, rendered_for_node: Rendered
) -> None:
    """tests/fixtures/broken/extra-allow-network-policy.yaml opens the first platform
    namespace to everyone: the real packets must show it."""
    extra = load_documents((BROKEN / "extra-allow-network-policy.yaml").read_text(encoding="utf-8"))
    namespace = next(iter(rendered_for_node.spec.namespaces))
    for doc in extra:
        doc["metadata"]["namespace"] = namespace
    setup.cluster.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(extra))
    try:
        wait_for_policy_sync(setup.cluster)
        problem = report(setup.measure(), setup.intent)
    finally:
        setup.cluster.kubectl("delete", "-f", "-", stdin=yaml.safe_dump_all(extra))
        wait_for_policy_sync(setup.cluster)
    assert problem is not None, "an extra allow-all ingress policy went unnoticed by real packets"
    assert "unexpected (delivered, not declared)" in problem
    assert f"=> {namespace}/" in problem


def test_reachability_report_names_both_matrices() -> None:
    """The report's shape (pure): both matrices and each differing connection."""
    measurement = Measurement(
        measured={("a/x[Pod]", "b/y[Pod]", "TCP 80")},
        tested={("a/x[Pod]", "b/y[Pod]", "TCP 80"), ("a/x[Pod]", "b/y[Pod]", "TCP 81")},
        not_measured=["c/z: an IP block"],
        peer_ids=["a/x[Pod]", "b/y[Pod]"],
    )
    text = report(measurement, {("a/x[Pod]", "b/y[Pod]", "TCP 81")})
    assert text is not None
    assert "unexpected (delivered, not declared): a/x[Pod] => b/y[Pod] : TCP 80" in text
    assert "missing (declared, not delivered):    a/x[Pod] => b/y[Pod] : TCP 81" in text
    assert "declared intent" in text and "measured with real packets" in text
    measurement.measured |= {("a/x[Pod]", "b/y[Pod]", "TCP 81")}
    assert report(measurement, {("a/x[Pod]", "b/y[Pod]", "All Connections")}) is None
