"""A real Argo CD deletes no tenant data by accident: neither a spec edit nor an ApplicationSet
deletion removes a namespace, or the Secret a tenant keeps in it.

On a control plane and an Argo CD of their own (tests/e2e/argocd.py; the shared dev cluster
keeps what the other tests applied), with the rendered AppProject and dev ApplicationSet
(automated sync with prune) reading a file:// copy of the repository:

1. every Application is Synced; a Secret is written into a tenant's namespace;
2. that tenant is removed from the spec copy, re-rendered and committed: after the refresh and
   the automated sync, the namespace (`Prune=confirm,Delete=false`) and the Secret are still
   there, not even terminating;
3. the ApplicationSet is deleted: its Applications go (`preserveResourcesOnDeletion`, no
   resources finalizer), and every namespace, the Secret and the workloads stay.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .argocd import ArgoCD, GitRepo, running
from .kube import (
    CONTROL_PLANE,
    Cluster,
    control_plane,
    install_crds,
    kustomize_build,
    load_documents,
)
from .test_argocd import ENVIRONMENT, _all_synced, _spec_copy, _wait
from .test_helm_uninstall import exists, states
from .test_tenants import without_tenant
from support import require_tools

pytestmark = pytest.mark.tools


@pytest.fixture
def argocd(tmp_path: Path) -> Iterator[ArgoCD]:
    """A control plane and an Argo CD of this test's own."""
    require_tools(*CONTROL_PLANE)
    with control_plane(tmp_path / "cluster") as cluster, running(cluster, tmp_path) as instance:
        yield instance


def _drop_tenant(repo: Path, tenant: str) -> None:
    """Re-render the repo copy from its platform.yaml without `tenant`."""
    spec_path = repo / "platform.yaml"
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    spec_path.write_text(yaml.safe_dump(without_tenant(spec, tenant), sort_keys=False))
    from .test_apply import render

    render(spec_path, repo)


def test_removing_a_tenant_or_the_application_set_keeps_namespaces_and_their_data(
    argocd: ArgoCD, tmp_path: Path
) -> None:
    cluster: Cluster = argocd.cluster
    repo = GitRepo(tmp_path / "repo")
    repo.init()
    _spec_copy(repo.path)
    first = repo.commit("platform")
    documents = load_documents(kustomize_build(repo.path / "overlays" / ENVIRONMENT))
    install_crds(cluster, documents)
    application_set = yaml.safe_load(
        (repo.path / "argocd" / ENVIRONMENT / "application-set.yaml").read_text()
    )
    project = yaml.safe_load((repo.path / "argocd" / "app-project.yaml").read_text())
    elements = application_set["spec"]["generators"][0]["list"]["elements"]
    template_name = application_set["spec"]["template"]["metadata"]["name"]
    names = sorted(template_name.replace("{{.group}}", e["group"]) for e in elements)
    tenants = sorted(
        yaml.safe_load((repo.path / "platform.yaml").read_text())["tenancy"]["tenants"]
    )
    victim = tenants[-1]

    # 1. Synced; the tenant keeps data of its own in its namespace.
    argocd.apply(project, application_set)
    _wait("every Application to be Synced", _all_synced(argocd, names, first), argocd)
    cluster.kubectl(
        "create", "secret", "generic", "tenant-data", "-n", victim, "--from-literal=k=v"
    )

    # 2. The tenant leaves the spec: the automated sync (prune) leaves its namespace.
    _drop_tenant(repo.path, victim)
    second = repo.commit(f"remove tenant {victim}")
    argocd.refresh(names)
    platform_app = next(n for n in names if n.endswith("-platform"))

    def pruned_or_waiting() -> str | None:
        app = next(a for a in argocd.applications() if a["metadata"]["name"] == platform_app)
        operation = app.get("status", {}).get("operationState", {})
        if operation.get("syncResult", {}).get("revision") != second:
            return f"no sync of {second[:8]} yet: {operation.get('message')}"
        if operation.get("phase") == "Running" and "confirm" not in str(operation).lower():
            return f"sync running: {operation.get('message')}"
        return None

    _wait(f"the sync without tenant {victim}", pruned_or_waiting, argocd)
    assert exists(cluster, "namespace", victim) == "live", f"Argo CD deleted namespace {victim}"
    assert exists(cluster, "secret", "tenant-data", "-n", victim) == "live"

    # 3. The ApplicationSet is deleted: the Applications go, what they deployed stays.
    cluster.kubectl(
        "delete",
        "applicationset",
        application_set["metadata"]["name"],
        "-n",
        application_set["metadata"]["namespace"],
        "--wait=true",
        "--timeout=120s",
    )

    def applications_gone() -> str | None:
        left = [a["metadata"]["name"] for a in argocd.applications()]
        return f"Applications left: {left}" if left else None

    _wait("the Applications to be deleted", applications_gone, argocd)
    kept = states(cluster, documents, "Namespace")
    assert set(kept.values()) == {"live"}, kept
    assert exists(cluster, "secret", "tenant-data", "-n", victim) == "live"
    workloads = states(cluster, documents, "Deployment")
    assert set(workloads.values()) == {"live"}, f"deleting the ApplicationSet: {workloads}"
