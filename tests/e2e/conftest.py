"""A real control plane for the end-to-end checks.

`cluster` starts etcd, kube-apiserver and kube-controller-manager with `scripts/cluster.sh`,
one cluster per environment (an environment is a cluster), and stops it by PID afterwards.
The state lives in a pytest temp dir, so a developer's `make cluster-up` cluster is untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .kube import (
    CONTROL_PLANE,
    ROOT,
    Cluster,
    Manifest,
    apply,
    control_plane,
    create_applyset_parent,
    install_crds,
    kustomize_build,
    load_documents,
    require_tools,
)
from .node import NodeSession, sysctls


@pytest.fixture(scope="session")
def cluster(env: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A fresh control plane per environment, stopped (by PID) when that environment is done."""
    require_tools(*CONTROL_PLANE)
    state = tmp_path_factory.mktemp(f"cluster-{env}")
    with control_plane(state) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def node_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeSession]:
    """One control plane with one real node (scripts/cluster.sh, NODE=1) for the session's
    node tests (one xdist group, tests/conftest.py), stopped by PID afterwards."""
    before = sysctls()
    with control_plane(tmp_path_factory.mktemp("node"), node=True, store="node") as cluster:
        yield NodeSession(cluster=cluster, sysctls_before=before)


@pytest.fixture(scope="session")
def node_cluster(node_session: NodeSession) -> Cluster:
    return node_session.cluster


@pytest.fixture(scope="session")
def rendered(env: str) -> str:
    """`kustomize build overlays/<env>`: exactly what a GitOps controller would apply."""
    return kustomize_build(ROOT / "overlays" / env)


@dataclass(frozen=True)
class Applied:
    documents: list[Manifest]
    warnings: list[str]
    crds: list[str]


@pytest.fixture(scope="session")
def applied(cluster: Cluster, rendered: str) -> Applied:
    """The environment's output, applied once to its cluster."""
    documents = load_documents(rendered)
    create_applyset_parent(cluster)
    crds = install_crds(cluster, documents)
    warnings = apply(cluster, rendered)
    return Applied(documents=documents, warnings=warnings, crds=crds)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Argo CD takes over what it syncs (field manager argocd-controller, self-heal in dev),
    so its test runs after every other test that applies to the same clusters; the node's
    teardown check stops the session's node, so it runs after every test on that node."""
    last = ("test_argocd.py", "test_node_teardown.py")
    items.sort(key=lambda item: any(name in item.nodeid for name in last))
