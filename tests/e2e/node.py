"""The node's side of the end-to-end checks: probe pods (busybox from the node's local probe
image) and what a node may leave on the machine (tests/e2e/test_node*.py)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .kube import PROBE_IMAGE, Cluster, Manifest, Node

# --- The node's probe pods (busybox from PROBE_IMAGE) -----------------------------------------

PROBE_UID = 65532


def probe_pod(
    name: str,
    namespace: str,
    script: str,
    *,
    labels: dict[str, str] | None = None,
    ready: bool = True,
) -> Manifest:
    """A busybox pod that runs `script` under Pod Security `restricted` (non-root, no
    capabilities, read-only root, RuntimeDefault seccomp), allowed to listen on any port (the
    namespaced sysctl net.ipv4.ip_unprivileged_port_start, in the safe set). With
    `ready=False` it never becomes Ready, so no Service sends it traffic."""
    readiness = ["true"] if ready else ["false"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 0,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": PROBE_UID,
                "runAsGroup": PROBE_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
                "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}],
            },
            "containers": [
                {
                    "name": "probe",
                    "image": PROBE_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["/bin/sh", "-c", script],
                    "readinessProbe": {"exec": {"command": readiness}, "periodSeconds": 1},
                    "resources": {
                        "requests": {"cpu": "5m", "memory": "8Mi"},
                        "limits": {"memory": "32Mi"},
                    },
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def listen_script(ports: list[int], answer: str) -> str:
    """Listen on every TCP port; each connection is answered with `answer` and closed."""
    lines = [f"nc -ll -p {port} -e /bin/echo {answer} &" for port in sorted(set(ports))]
    return "\n".join([*lines, "exec sleep 86400"])


def wait_running(cluster: Cluster, namespace: str, names: list[str], timeout: float = 180) -> None:
    """Wait until every named pod runs (and is Ready, unless it is meant never to be)."""

    def not_running() -> str | None:
        pods = {
            p["metadata"]["name"]: p for p in cluster.get_json("pods", "-n", namespace)["items"]
        }
        waiting = []
        for name in names:
            status = pods.get(name, {}).get("status", {})
            if status.get("phase") == "Failed":
                raise AssertionError(f"pod {namespace}/{name} failed: {status}")
            started = all(
                c.get("state", {}).get("running") for c in status.get("containerStatuses", [{}])
            )
            if status.get("phase") != "Running" or not started:
                waiting.append(f"{name}: {status.get('phase', 'absent')}")
        return "; ".join(waiting) or None

    cluster.wait_for(f"pods in {namespace} to run", not_running, timeout)


def pod_ips(cluster: Cluster, namespace: str) -> dict[str, str]:
    return {
        p["metadata"]["name"]: p["status"]["podIP"]
        for p in cluster.get_json("pods", "-n", namespace)["items"]
        if p.get("status", {}).get("podIP")
    }


def restricted_namespace(name: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }


def host_path_volume(claim: Manifest, path: Path) -> Manifest:
    """A hostPath PersistentVolume bound beforehand to ``claim`` (the node has no provisioner),
    with the claim's size, access modes and class, named ``<namespace>-<claim>``."""
    meta = claim["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{meta['namespace']}-{meta['name']}"},
        "spec": {
            "capacity": {"storage": claim["spec"]["resources"]["requests"]["storage"]},
            "accessModes": claim["spec"]["accessModes"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": claim["spec"].get("storageClassName", ""),
            "claimRef": {"namespace": meta["namespace"], "name": meta["name"]},
            "hostPath": {"path": str(path), "type": "Directory"},
        },
    }


# --- What a node leaves on the machine ----------------------------------------------------------

NODE_RUN = Path("/run/mlp-node")
NODE_STORES = Path(
    os.environ.get("MLP_NODE_STORES")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ml-platform-node"
)
"""Where a node keeps a named image store between runs (scripts/cluster-node.sh NODE_STORE)."""
NODE_SYSCTLS = (
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
)


def _lines(*command: str) -> list[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.stdout.splitlines()


def sysctls() -> dict[str, str]:
    return {
        key: Path("/proc/sys", key.replace(".", "/")).read_text(encoding="utf-8").strip()
        for key in NODE_SYSCTLS
    }


def node_traces(node: Node, state: Path) -> dict[str, list[str]]:
    """Everything of `node` that may be left on the host: its network namespace, its veth,
    routes to its ranges, iptables chains in the host's tables (a node keeps them in its own
    namespace), mounts under its state directory, its cgroups, and processes still running
    from its pid files."""
    slot = node.name.rsplit("-", 1)[1]
    chains = [
        line
        for line in _lines("iptables-save")
        if line.startswith(":") and ("KUBE-" in line or "MLP-" in line)
    ]
    pids = [p.read_text().strip() for p in sorted((state / "pids").glob("*"))]
    return {
        "netns": [n for n in _lines("ip", "netns", "list") if n.split()[0] == node.netns],
        "links": [line for line in _lines("ip", "-o", "link", "show") if f"mlpn{slot}@" in line],
        "routes": [
            line
            for line in _lines("ip", "route", "show")
            if node.pod_cidr in line or node.service_cidr in line or f"mlpn{slot} " in line
        ],
        "host iptables chains": chains,
        "mounts": [
            line.split()[1]
            for line in Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
            if line.split()[1].startswith(f"{state}/")
        ],
        "cgroups": sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{node.netns}")),
        "processes": [pid for pid in pids if pid and Path(f"/proc/{pid}").exists()],
    }


@dataclass(frozen=True)
class NodeSession:
    """A cluster with a node, and the host's sysctls from before the node started."""

    cluster: Cluster
    sysctls_before: dict[str, str]


def other_nodes_running(node: Node) -> bool:
    """Whether another node (another test session's) still holds a slot on this machine."""
    mine = f"slot-{node.name.rsplit('-', 1)[1]}"
    return any(p.name != mine for p in NODE_RUN.glob("slot-*"))
