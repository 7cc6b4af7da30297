"""A real node (scripts/cluster.sh with NODE=1): pods run under Pod Security `restricted`,
`kubectl logs` and `exec` work, a ClusterIP Service answers through kube-proxy, Service names
resolve through CoreDNS, a NetworkPolicy drops traffic kube-router let through a moment
before, and pods have no route off the machine.

The node's teardown is checked in test_node_teardown.py, after every test on the node.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess

import pytest
import yaml

from .kube import TOOLS_BIN, Cluster
from .node import (
    PROBE_UID,
    listen_script,
    pod_ips,
    probe_pod,
    restricted_namespace,
    wait_running,
)

pytestmark = pytest.mark.tools

NAMESPACE = "node-checks"


@pytest.fixture(scope="module")
def workloads(node_cluster: Cluster) -> Cluster:
    """A server pod behind a ClusterIP Service, and a client pod, in a `restricted` namespace."""
    server = probe_pod(
        "server", NAMESPACE, listen_script([8080], "hello-from-server"), labels={"app": "server"}
    )
    client = probe_pod("client", NAMESPACE, "echo client-started; exec sleep 86400")
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "server", "namespace": NAMESPACE},
        "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    manifests = [restricted_namespace(NAMESPACE), server, client, service]
    node_cluster.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(manifests))
    wait_running(node_cluster, NAMESPACE, ["server", "client"])
    return node_cluster


def client_exec(cluster: Cluster, *command: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("exec", "-n", NAMESPACE, "client", "--", *command, check=False)


def connect(cluster: Cluster, address: str, port: int) -> str:
    """What the client pod receives from address:port ('' when it cannot connect)."""
    return client_exec(cluster, "nc", "-w", "2", address, str(port)).stdout.strip()


def test_restricted_pod_runs_with_logs_and_exec(workloads: Cluster) -> None:
    assert workloads.node is not None
    pod = workloads.get_json("pod", "client", "-n", NAMESPACE)
    assert pod["spec"]["nodeName"] == workloads.node.name
    logs = workloads.kubectl("logs", "-n", NAMESPACE, "client").stdout
    assert logs.strip() == "client-started"
    assert client_exec(workloads, "id", "-u").stdout.strip() == str(PROBE_UID)
    write = client_exec(workloads, "sh", "-c", "echo x > /written")
    assert write.returncode != 0 and "Read-only file system" in write.stderr, write


def test_cluster_ip_service_answers_through_kube_proxy(workloads: Cluster) -> None:
    service = workloads.get_json("service", "server", "-n", NAMESPACE)
    cluster_ip = service["spec"]["clusterIP"]
    assert workloads.node is not None
    assert ipaddress.ip_address(cluster_ip) in ipaddress.ip_network(workloads.node.service_cidr)
    workloads.wait_for(
        "the Service to answer from a pod",
        lambda: None if connect(workloads, cluster_ip, 80) == "hello-from-server" else "no answer",
        timeout=30,
    )
    # From the host as well (it routes the Service range to the node, where kube-proxy is).
    with socket.create_connection((cluster_ip, 80), timeout=5) as conn:
        assert conn.recv(100).decode().strip() == "hello-from-server"


def test_service_name_resolves_through_coredns(workloads: Cluster) -> None:
    cluster_ip = workloads.get_json("service", "server", "-n", NAMESPACE)["spec"]["clusterIP"]
    name = f"server.{NAMESPACE}.svc.cluster.local"
    lookup = client_exec(workloads, "nslookup", name)
    assert lookup.returncode == 0, lookup.stdout + lookup.stderr
    assert f"Address: {cluster_ip}" in lookup.stdout, lookup.stdout
    # The short name, through the search path the kubelet wrote, reaches the server.
    assert connect(workloads, "server", 80) == "hello-from-server"
    # Names outside the cluster are not forwarded anywhere: pods have no route out.
    outside = client_exec(workloads, "nslookup", "example.com")
    assert outside.returncode != 0 and "Name:" not in outside.stdout, outside.stdout


def test_network_policy_drops_a_packet_that_was_delivered_before(workloads: Cluster) -> None:
    server_ip = pod_ips(workloads, NAMESPACE)["server"]
    assert connect(workloads, server_ip, 8080) == "hello-from-server"
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny-server-ingress", "namespace": NAMESPACE},
        "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"]},
    }
    workloads.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(deny))
    try:
        workloads.wait_for(
            "kube-router to drop the client's packets",
            lambda: None if connect(workloads, server_ip, 8080) == "" else "still delivered",
            timeout=30,
        )
    finally:
        workloads.kubectl("delete", "networkpolicy", "deny-server-ingress", "-n", NAMESPACE)
    workloads.wait_for(
        "traffic to flow again without the policy",
        lambda: None if connect(workloads, server_ip, 8080) == "hello-from-server" else "dropped",
        timeout=30,
    )


def test_pods_have_no_route_off_the_machine(workloads: Cluster) -> None:
    node = workloads.node
    assert node is not None
    # The pod's routes: its own range, the Service range and the apiserver's address.
    table = client_exec(workloads, "cat", "/proc/net/route").stdout.splitlines()[1:]
    destinations = set()
    for row in table:
        fields = row.split()
        address = ipaddress.IPv4Address(int(fields[1], 16).to_bytes(4, "little"))
        mask = bin(int(fields[7], 16)).count("1")
        destinations.add(ipaddress.ip_network(f"{address}/{mask}"))
    assert destinations == {
        ipaddress.ip_network(node.pod_cidr),
        ipaddress.ip_network(node.service_cidr),
        ipaddress.ip_network(f"{node.host_ip}/32"),
    }, destinations
    # The node's namespace has no default route, and drops pod traffic to anything else.
    routes = subprocess.run(
        ["ip", "-n", node.netns, "route", "show"], capture_output=True, text=True, check=True
    ).stdout
    assert "default" not in routes, routes
    rules = subprocess.run(
        ["ip", "netns", "exec", node.netns, "iptables", "-w", "-t", "mangle", "-S"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert f"-A FORWARD -s {node.pod_cidr} -m conntrack --ctstate NEW -j MLP-POD-EGRESS" in rules
    assert rules[-1] == "-A MLP-POD-EGRESS -j DROP", rules


def test_an_imported_image_runs(workloads: Cluster) -> None:
    """`Node.import_image`: an OCI archive imported under a new name runs as a pod."""
    node = workloads.node
    assert node is not None
    name = "localhost/node-checks/imported:v1"
    # The session's node keeps its images between runs (NODE_STORE): start without this one.
    kept = sorted(i for i in node.images() if i.startswith(name.rsplit(":", 1)[0] + ":"))
    if kept:
        node.ctr("images", "rm", *kept)
    added = node.import_image(TOOLS_BIN.parent / "node-images" / "probe.tar", name)
    assert name in added and name in node.images()
    pod = probe_pod("imported", NAMESPACE, "echo imported-runs; exec sleep 86400")
    pod["spec"]["containers"][0]["image"] = name
    workloads.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(pod))
    wait_running(workloads, NAMESPACE, ["imported"])
    assert workloads.kubectl("logs", "-n", NAMESPACE, "imported").stdout.strip() == "imported-runs"
