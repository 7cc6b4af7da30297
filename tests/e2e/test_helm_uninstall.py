"""Helm never deletes a namespace, so never the tenant data in it, on the real apiserver.

On a control plane of its own (scripts/cluster.sh; the shared per-environment cluster keeps
what the other e2e tests applied), for Helm 3 and Helm 4:

1. `helm install` the chart with the environment's values, and write a Secret into a tenant
   namespace (data no rendered manifest knows about);
2. `helm upgrade` to the chart rendered from a copy of platform.yaml without that tenant: the
   tenant's namespace and the Secret in it stay (`helm.sh/resource-policy: keep`);
3. `helm uninstall`: every namespace the chart created stays, and so does the Secret.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .kube import (
    CONTROL_PLANE,
    ROOT,
    TOOLS_BIN,
    Cluster,
    Manifest,
    control_plane,
    install_crds,
    load_documents,
    require_tools,
)
from .test_apply import render_copy
from .test_tenants import without_tenant

pytestmark = pytest.mark.tools

ENVIRONMENT = "dev"
HELM_BINARIES = ("helm", "helm4")
RELEASE = "mlp"


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_tools(*CONTROL_PLANE, *HELM_BINARIES)
    with control_plane(tmp_path_factory.mktemp("cluster-helm-uninstall")) as cluster:
        yield cluster


def helm(binary: str, cluster: Cluster, *args: str) -> str:
    result = subprocess.run(
        [str(TOOLS_BIN / binary), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{binary} {' '.join(args)}:\n{result.stderr}"
    return result.stdout


def chart(root: Path) -> Path:
    (found,) = [p.parent for p in (root / "charts").glob("*/Chart.yaml")]
    return found


def states(cluster: Cluster, documents: list[Manifest], kind: str) -> dict[str, str]:
    """`namespace/name` -> deletion state of every `kind` object among `documents`."""
    out = {}
    for d in documents:
        if d["kind"] == kind:
            meta = d["metadata"]
            where = ["-n", meta["namespace"]] if "namespace" in meta else []
            name = f"{meta.get('namespace', '')}/{meta['name']}"
            out[name] = exists(cluster, kind.lower(), meta["name"], *where)
    assert out, f"no {kind} among the documents"
    return out


def exists(cluster: Cluster, *what: str) -> str:
    """The object's deletion state: 'live', 'terminating' or 'gone'."""
    result = cluster.kubectl("get", *what, "--ignore-not-found", "-o", "json", check=False)
    if not result.stdout.strip():
        return "gone"
    return "terminating" if '"deletionTimestamp"' in result.stdout else "live"


@pytest.mark.parametrize("binary", HELM_BINARIES)
def test_upgrade_without_a_tenant_and_uninstall_keep_every_namespace(
    own_cluster: Cluster, binary: str, tmp_path: Path
) -> None:
    cluster = own_cluster
    raw = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    victim = sorted(raw["tenancy"]["tenants"])[-1]
    full = chart(ROOT)
    values = f"values-{ENVIRONMENT}.yaml"
    template = helm(binary, cluster, "template", RELEASE, str(full), "-f", str(full / values))
    documents = load_documents(template)
    assert f"/{victim}" in states(cluster, documents, "Namespace")
    install_crds(cluster, documents)

    helm(binary, cluster, "install", RELEASE, str(full), "-f", str(full / values), "-n", "default")
    cluster.kubectl(
        "create", "secret", "generic", "tenant-data", "-n", victim, "--from-literal=k=v"
    )

    render_copy(without_tenant(raw, victim), tmp_path / "trimmed", ENVIRONMENT)
    trimmed = chart(tmp_path / "trimmed")
    helm(
        binary,
        cluster,
        "upgrade",
        RELEASE,
        str(trimmed),
        "-f",
        str(trimmed / values),
        "-n",
        "default",
    )
    assert exists(cluster, "namespace", victim) == "live", "helm upgrade deleted the tenant"
    assert exists(cluster, "secret", "tenant-data", "-n", victim) == "live"
    # The tenant's other objects did go: the upgrade did remove what the spec dropped.
    assert exists(cluster, "rolebinding", "tenant-owners", "-n", victim) in ("gone", "terminating")

    helm(binary, cluster, "uninstall", RELEASE, "-n", "default")
    kept = states(cluster, documents, "Namespace")
    assert set(kept.values()) == {"live"}, kept
    assert exists(cluster, "secret", "tenant-data", "-n", victim) == "live"
    # The uninstall did remove the rest (a Role of a component, say).
    assert set(states(cluster, documents, "Role").values()) <= {"gone", "terminating"}
    cluster.kubectl("delete", "secret", "tenant-data", "-n", victim)
