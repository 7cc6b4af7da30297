"""Helpers for the end-to-end checks: tools, rendered output, kubectl against a cluster."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

import support

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"
CRDS_DIR = ROOT / ".tools" / "crds"
STAND_IN_CRDS = Path(__file__).resolve().parent / "crds"
STAND_IN = "e2e.platformgen.io/stand-in"
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")

Manifest = dict[str, Any]
Identity = tuple[str, str, str, str]


def require_tools(*names: str) -> None:
    """Skip locally, fail in CI, when a pinned tool is not installed."""
    support.require_tools(*names, install="make tools cluster-tools gates-tools")


def environments() -> list[str]:
    """Rendered environments: every overlays/<env>/ with a kustomization."""
    overlays = ROOT / "overlays"
    if not overlays.is_dir():
        return []
    return sorted(p.name for p in overlays.iterdir() if (p / "kustomization.yaml").is_file())


def kustomize_build(path: Path) -> str:
    require_tools("kustomize")
    result = subprocess.run(
        [str(TOOLS_BIN / "kustomize"), "build", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"kustomize build {path} failed:\n{result.stderr}"
    return result.stdout


class _Loader(yaml.CSafeLoader):
    """YAML 1.1 safe loading in C, reading the YAML 1.1 'value' key `=` as the plain string
    it is in Kubernetes (prometheus-operator's CRDs list `=` as a matcher type)."""


_Loader.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)


def load_documents(text: str) -> list[Manifest]:
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]  # noqa: S506


def identity(obj: Manifest) -> Identity:
    """(apiVersion group, kind, namespace, name): how an object is found again."""
    group = obj["apiVersion"].rpartition("/")[0]
    meta = obj["metadata"]
    return (group, obj["kind"], meta.get("namespace", ""), meta["name"])


def wait_until(what: str, condition: Callable[[], str | None], timeout: float) -> None:
    """Poll `condition` (None = done, else the reason it is not) every second."""
    deadline = time.monotonic() + timeout
    reason = condition()
    while reason is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}: {reason}")
        time.sleep(1.0)
        reason = condition()


@dataclass(frozen=True)
class Node:
    """The one node of a `control_plane(state, node=True)` cluster (scripts/cluster-node.sh):
    its name and addresses, the ranges of its pods and Services, its containerd."""

    name: str
    ip: str
    host_ip: str
    pod_cidr: str
    service_cidr: str
    dns_ip: str
    netns: str
    containerd_address: str

    @classmethod
    def from_env_file(cls, path: Path) -> Node:
        """The node.env that `scripts/cluster.sh up` writes with NODE=1."""
        values = dict(
            line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if line
        )
        return cls(
            name=values["NODE_NAME"],
            ip=values["NODE_IP"],
            host_ip=values["HOST_IP"],
            pod_cidr=values["POD_CIDR"],
            service_cidr=values["SERVICE_CIDR"],
            dns_ip=values["DNS_IP"],
            netns=values["NETNS"],
            containerd_address=values["CONTAINERD_ADDRESS"],
        )

    def ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`ctr` against the node's containerd, in the CRI's `k8s.io` namespace."""
        result = subprocess.run(
            [str(TOOLS_BIN / "ctr"), "--address", self.containerd_address, "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"ctr {' '.join(args)}: {result.stderr}"
        return result

    @property
    def registry_hosts(self) -> Path:
        """containerd's registry `config_path` (scripts/cluster-node.sh): a `<host>/hosts.toml`
        written here (`scripts/image_registry.py hosts`) sends that registry host's pulls to
        another registry, from the next pull on."""
        return Path(self.containerd_address).parent / "certs.d"

    def images(self) -> set[str]:
        return set(self.ctr("images", "ls", "-q").stdout.split())

    def image_digests(self) -> dict[str, str]:
        """Each image name in the node's containerd, with the digest of what it names."""
        rows = [line.split() for line in self.ctr("images", "ls").stdout.splitlines()[1:]]
        return {row[0]: row[2] for row in rows if len(row) > 2}

    def has_images(self, names: list[str], digest: str) -> bool:
        """Whether every name already names `digest` (a node that keeps its image store,
        scripts/cluster-node.sh NODE_STORE, has what an earlier run imported)."""
        present = self.image_digests()
        return all(present.get(name) == digest for name in names)

    def import_image(self, archive: Path, name: str | None = None) -> list[str]:
        """Import an OCI (or Docker) image archive into the node's containerd, where the
        kubelet finds it: pods then use the image with `imagePullPolicy: Never` (or
        IfNotPresent). With `name` ("repository:tag"), the archive is imported under that
        repository (`--base-name`: an OCI archive may name its image by a bare tag) and, if
        its tag differs, also tagged `name`. Returns the image names the import added.

        Names are only ever added, never renamed away: the CRI caches which name an image id
        was first seen under and fails to start containers once that name is gone."""
        before = self.images()
        args = ["images", "import", "--all-platforms"]
        if name is not None:
            last = name.rsplit("/", 1)[-1]
            repository = name.rsplit(":", 1)[0] if ":" in last else name
            args += ["--base-name", repository]
        self.ctr(*args, str(archive))
        added = sorted(self.images() - before)
        if name is not None and name not in added and name not in before:
            assert len(added) == 1, f"{archive}: {len(added)} images imported ({added}), 1 expected"
            self.ctr("images", "tag", added[0], name)
            added.append(name)
        return added


PROBE_IMAGE = "localhost/mlp-node/probe:node"
"""busybox (sh, nc, nslookup) for probe pods, built and imported by the node scripts."""
NODE_TOOLS = (
    "kubelet",
    "kube-proxy",
    "kube-scheduler",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "runc",
    "kube-router",
)


@dataclass(frozen=True)
class Cluster:
    """A running control plane and a kubectl bound to it (and its node, when it has one)."""

    kubeconfig: Path
    state: Path
    node: Node | None = None

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "KUBECTL_APPLYSET": "true"}
        result = subprocess.run(
            [str(TOOLS_BIN / "kubectl"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def wait_for(
        self, what: str, condition: Callable[[], str | None], timeout: float = 90.0
    ) -> None:
        """Poll `condition` (None = done, else a reason) until done or timeout."""
        wait_until(what, condition, timeout)


def find_crds(wanted: set[tuple[str, str]]) -> dict[tuple[str, str], Manifest]:
    """(group, kind) -> CRD object: from .tools/crds/ (the upstream CRDs the tool installers
    copied), else from the stand-ins in tests/e2e/crds/ (each says why it exists).

    Files are parsed only when their text names a wanted group and kind: the CRD set is
    megabytes of YAML and most of it is not needed.
    """
    found: dict[tuple[str, str], Manifest] = {}
    paths = [*sorted(CRDS_DIR.rglob("*.y*ml")), *sorted(STAND_IN_CRDS.glob("*.yaml"))]
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if not any(f"group: {g}" in text and f"kind: {k}" in text for g, k in wanted):
            continue
        for doc in load_documents(text):
            if doc.get("kind") == "CustomResourceDefinition":
                key = (doc["spec"]["group"], doc["spec"]["names"]["kind"])
                if key in wanted:
                    found.setdefault(key, doc)
    return found


FIELD_MANAGER = "platformgen"
# ApplySet parent (KEP-3659): cluster-scoped, see tests/e2e/applyset-parent.yaml.
APPLYSET = "applysets.e2e.platformgen.io/platform"
APPLYSET_CRD = Path(__file__).resolve().parent / "applyset-parent.yaml"
PLATFORMGEN = ROOT / ".venv" / "bin" / "platformgen"


def apply(
    cluster: Cluster,
    manifests: str,
    *,
    applyset: str | None = APPLYSET,
    field_manager: str = FIELD_MANAGER,
    force_conflicts: bool = False,
) -> list[str]:
    """Server-side apply as the GitOps controller would, with ApplySet pruning.

    Returns the warnings. Fails on any error (strict validation: unknown fields are errors).
    """
    args = ["apply", "--server-side", f"--field-manager={field_manager}", "--validate=strict"]
    if force_conflicts:  # take back fields a hand edit (kubectl scale, say) took over
        args.append("--force-conflicts")
    if applyset:
        args += [f"--applyset={applyset}", "--prune"]
    args += ["-f", "-"]
    result = cluster.kubectl(*args, stdin=manifests)
    return [line for line in result.stderr.splitlines() if line.startswith("Warning:")]


def restore(cluster: Cluster, manifests: str, *, force_conflicts: bool = False) -> None:
    """Put the cluster back to `manifests`, a render `apply` delivered before: the same
    server-side apply (each object labelled as the ApplySet's member, as `apply` labels it) and
    the members the render no longer holds deleted. That is what `apply` with kubectl's ApplySet
    prune does; the tests about pruning use kubectl's. Fixtures that only undo a test's change
    use this: kubectl lists every member kind in every namespace of the set one request at a
    time under its fixed client-side limit of 5 requests a second (about 90 lists, 15 s), where
    one `kubectl get` of the member kinds across namespaces needs a request per kind."""
    documents = load_documents(manifests)
    apply(cluster, as_applied(documents), applyset=None, force_conflicts=force_conflicts)
    resource, name = APPLYSET.split("/")
    parent = cluster.get_json(resource, name)
    kinds = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
    if not kinds:
        return
    members = cluster.get_json(
        kinds, "-A", "-l", f"applyset.kubernetes.io/part-of={applyset_id()}"
    )["items"]
    wanted = {identity(doc) for doc in documents}
    extra = [obj for obj in members if identity(obj) not in wanted]
    for obj in extra:
        meta = obj["metadata"]
        group = identity(obj)[0]
        cluster.kubectl(
            "delete",
            f"{obj['kind']}.{group}" if group else obj["kind"],
            meta["name"],
            *(["-n", meta["namespace"]] if meta.get("namespace") else []),
            "--ignore-not-found",
            "--wait=false",
        )


def applyset_id() -> str:
    """kubectl's id for APPLYSET: base64url(sha256(name.namespace.kind.group)) (KEP-3659)."""
    crd = load_documents(APPLYSET_CRD.read_text(encoding="utf-8"))[0]
    name = APPLYSET.split("/")[1]
    key = f"{name}..{crd['spec']['names']['kind']}.{crd['spec']['group']}"
    digest = hashlib.sha256(key.encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"


def as_applied(documents: list[Manifest]) -> str:
    """The documents exactly as `apply` sends them: kubectl adds the ApplySet membership
    label. (`kubectl diff` knows nothing of ApplySets, so it must be given this.)"""
    labelled = copy.deepcopy(documents)
    for doc in labelled:
        doc["metadata"].setdefault("labels", {})["applyset.kubernetes.io/part-of"] = applyset_id()
    return yaml.safe_dump_all(labelled, sort_keys=False)


def create_applyset_parent(cluster: Cluster) -> None:
    """Install the parent type and an empty parent, labelled as kubectl expects (its id is
    base64url(sha256(name.namespace.kind.group)), see KEP-3659)."""
    cluster.kubectl("apply", "--server-side", "-f", str(APPLYSET_CRD))
    crd = load_documents(APPLYSET_CRD.read_text(encoding="utf-8"))[0]
    resource, name = APPLYSET.split("/")

    def not_served() -> str | None:
        listed = cluster.kubectl("get", resource, check=False)
        return None if listed.returncode == 0 else listed.stderr.strip()

    cluster.wait_for("the ApplySet parent type to be served", not_served, timeout=60)
    group = resource.split(".", 1)[1]
    kind = crd["spec"]["names"]["kind"]
    version = cluster.kubectl("version", "--client", "-o", "json").stdout
    tooling = "kubectl/" + json.loads(version)["clientVersion"]["gitVersion"]
    parent = {
        "apiVersion": f"{group}/{crd['spec']['versions'][0]['name']}",
        "kind": kind,
        "metadata": {
            "name": name,
            "labels": {"applyset.kubernetes.io/id": applyset_id()},
            "annotations": {
                "applyset.kubernetes.io/tooling": tooling,
                "applyset.kubernetes.io/contains-group-kinds": "",
            },
        },
    }
    cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=kubectl-applyset",
        "-f",
        "-",
        stdin=json.dumps(parent),
    )


def install_crds(cluster: Cluster, documents: list[Manifest]) -> list[str]:
    """Install the CRD of every kind the API server does not serve yet. Returns their names."""
    served = served_kinds(cluster)
    wanted = sorted({identity(doc)[:2] for doc in documents} - served)
    index = find_crds(set(wanted))
    missing = [f"{kind} ({group})" for group, kind in wanted if (group, kind) not in index]
    assert not missing, (
        f"no CRD under .tools/crds/ for {', '.join(missing)}: run `make tools`"
        " (scripts/install-tools.sh copies the CRDs of every project the platform uses)"
    )
    # Upstream files may carry a status stanza; it is the server's to write.
    crds = [{k: v for k, v in index[key].items() if k != "status"} for key in wanted]
    if not crds:
        return []
    cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=e2e-crds",
        "-f",
        "-",
        stdin=yaml.safe_dump_all(crds, sort_keys=False),
    )
    names = [crd["metadata"]["name"] for crd in crds]
    stand_ins = [
        c["metadata"]["name"] for c in crds if STAND_IN in c["metadata"].get("annotations", {})
    ]
    if stand_ins:
        print(f"e2e: stand-in CRDs from tests/e2e/crds/ (no upstream copy): {stand_ins}")

    def not_established() -> str | None:
        for name in names:
            conditions = cluster.get_json(f"crd/{name}").get("status", {}).get("conditions") or []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return f"{name} not Established"
        return None

    cluster.wait_for("CRDs to be established", not_established, timeout=60)
    still_missing = set(wanted) - served_kinds(cluster)
    assert not still_missing, f"CRDs installed but kinds not served: {sorted(still_missing)}"
    return names


def served_kinds(cluster: Cluster) -> set[tuple[str, str]]:
    """(group, kind) of every resource the API server serves."""
    out = cluster.kubectl("api-resources", "--no-headers").stdout
    kinds = set()
    for line in out.splitlines():
        fields = line.split()
        # NAME [SHORTNAMES] APIVERSION NAMESPACED KIND
        api_version, kind = fields[-3], fields[-1]
        kinds.add((api_version.rpartition("/")[0], kind))
    return kinds


def wait_for_pods(cluster: Cluster, workload: Manifest) -> int:
    """Wait until the workload's controller created its Pods; return how many."""
    kind = workload["kind"]
    namespace, name = workload["metadata"]["namespace"], workload["metadata"]["name"]
    if kind == "CronJob":
        # Instantiate the CronJob once, as its schedule would, to prove its pod template.
        job = f"{name}-e2e"
        cluster.kubectl("create", "job", job, f"--from=cronjob/{name}", "-n", namespace)
        try:
            return wait_for_pods(
                cluster,
                {"kind": "Job", "metadata": {"namespace": namespace, "name": job}, "spec": {}},
            )
        finally:
            cluster.kubectl("delete", "job", job, "-n", namespace, "--wait=false")

    def pods_created() -> str | None:
        if kind == "Deployment":
            live = cluster.get_json("deployment", name, "-n", namespace)
            want = live["spec"].get("replicas", 1)
            sets = [
                rs
                for rs in cluster.get_json("replicasets", "-n", namespace)["items"]
                if any(
                    o.get("uid") == live["metadata"]["uid"]
                    for o in rs["metadata"].get("ownerReferences", [])
                )
            ]
            if not sets:
                return "no ReplicaSet yet"
            for rs in sets:
                for condition in rs.get("status", {}).get("conditions", []):
                    if condition["type"] == "ReplicaFailure":
                        raise AssertionError(
                            f"Deployment {namespace}/{name}: ReplicaSet {rs['metadata']['name']} "
                            f"cannot create Pods: {condition.get('message')}"
                        )
            have = sum(rs.get("status", {}).get("replicas", 0) for rs in sets)
            return None if have == want else f"{have}/{want} Pods created"
        live = cluster.get_json("job", name, "-n", namespace)
        failed = failed_creates(cluster, namespace, "Job", name)
        if failed:
            raise AssertionError(f"Job {namespace}/{name} cannot create Pods: {failed}")
        if live["spec"].get("suspend"):
            return None
        active = live.get("status", {}).get("active", 0)
        return None if active > 0 else "no active Pod yet"

    cluster.wait_for(f"{kind} {namespace}/{name} to create its Pods", pods_created)
    pods = cluster.get_json("pods", "-n", namespace)["items"]
    if kind == "Deployment":
        selector = workload["spec"]["selector"]["matchLabels"]
    else:
        selector = {"job-name": name}
    return sum(
        1
        for pod in pods
        if all(pod["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
    )


def failed_creates(cluster: Cluster, namespace: str, kind: str, name: str) -> str:
    events = cluster.get_json(
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"reason=FailedCreate,involvedObject.kind={kind},involvedObject.name={name}",
    )["items"]
    return "; ".join(sorted({e.get("message", "") for e in events}))


def snapshot(cluster: Cluster, documents: list[Manifest]) -> dict[Identity, Manifest]:
    """The live objects of `documents`, by identity, with their managedFields."""
    text = yaml.safe_dump_all(documents, sort_keys=False)
    items = json.loads(
        cluster.kubectl("get", "-o", "json", "--show-managed-fields", "-f", "-", stdin=text).stdout
    )
    live = items.get("items", [items]) if items.get("kind") == "List" else [items]
    return {identity(obj): obj for obj in live}


# managedFields times have 1s resolution: wait that long before an apply whose changes must
# show as a new time.
MANAGED_FIELDS_RESOLUTION = 1.1


def ours(obj: Manifest) -> list[Manifest]:
    """Our field manager's managedFields entries: the fields our applies own and when they
    last changed. The server rewrites them only when an apply changed the object; controllers
    (status, the Deployment revision annotation, HPA replicas) never touch them."""
    return [
        entry
        for entry in obj["metadata"].get("managedFields", [])
        if entry.get("manager") == FIELD_MANAGER
    ]


def changed_objects(
    before: dict[Identity, Manifest], after: dict[Identity, Manifest]
) -> dict[Identity, str]:
    """Objects whose resourceVersion moved because of our apply (not a controller's write)."""
    changed: dict[Identity, str] = {}
    for key, old in before.items():
        new = after.get(key)
        if new is None:
            changed[key] = "gone"
        elif old["metadata"]["resourceVersion"] != new["metadata"]["resourceVersion"]:
            if ours(old) != ours(new):
                changed[key] = (
                    f"resourceVersion {old['metadata']['resourceVersion']} -> "
                    f"{new['metadata']['resourceVersion']}"
                )
    return changed


def _cluster_script(
    state: Path, command: str, *, node: bool = False, store: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "cluster.sh"), command],
        env={
            **os.environ,
            "CLUSTER_DIR": str(state),
            "CLUSTER_BIN": str(TOOLS_BIN),
            "CLUSTER_OWNER_PID": str(os.getpid()),
            "NODE": "1" if node else "0",
            "NODE_STORE": store,
        },
        capture_output=True,
        text=True,
        check=False,
    )


def stop_process_groups(processes: list[subprocess.Popen[Any]], timeout: float = 20) -> None:
    """SIGTERM the process group of every process still running, all at once (each takes a
    second or so to shut down), wait up to `timeout` seconds for all of them, then SIGKILL the
    groups left."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def control_plane(state: Path, *, node: bool = False, store: str = "") -> Iterator[Cluster]:
    """A control plane of its own (scripts/cluster.sh, state in `state`), stopped afterwards.
    With `node`, also one real node (kubelet, containerd, kube-proxy, kube-scheduler,
    kube-router enforcing NetworkPolicy, CoreDNS): pods run; with `store`, its containerd keeps
    its images in that named store between runs (scripts/cluster-node.sh NODE_STORE). A failed
    start fails the test with the tail of every component's log."""
    if node:
        require_tools(*CONTROL_PLANE, *NODE_TOOLS)
    up = _cluster_script(state, "up", node=node, store=store)
    if up.returncode != 0:
        logs = "".join(
            f"\n--- {log.name} (tail)\n" + "\n".join(log.read_text().splitlines()[-20:])
            for log in sorted((state / "logs").glob("*.log"))
        )
        _cluster_script(state, "down")
        pytest.fail(f"scripts/cluster.sh up failed:\n{up.stderr}{logs}")
    try:
        yield Cluster(
            kubeconfig=Path(up.stdout.strip().splitlines()[-1]),
            state=state,
            node=Node.from_env_file(state / "node.env") if node else None,
        )
    finally:
        down = _cluster_script(state, "down")
        assert down.returncode == 0, down.stderr
