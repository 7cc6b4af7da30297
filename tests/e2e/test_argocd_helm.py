"""`gitops.source: helm` on the real Argo CD: one Application of the chart with
`values-<env>.yaml` syncs the same objects as the overlays, in the same sync waves.

The chart carries `argocd.argoproj.io/sync-wave` on every object (Helm ignores it; the
kustomize tree gets the same values from argocd/sync-waves/), so Argo CD applies it wave by
wave. The order is asserted from the live objects: every object of a wave was created after
every object of the waves before it (creationTimestamp, in seconds; Argo CD waits for a wave's
health and then ARGOCD_SYNC_WAVE_DELAY, 2 s by default, before the next). The broken fixture:
the same chart with its sync-wave annotations stripped syncs in one wave, and the same check
finds the order gone. The `helm
test` hook is not a release object: Argo CD syncs no Pod.

It runs on a control plane of its own (scripts/cluster.sh): the chart's Application tracks the
same objects the overlay Applications of tests/e2e/test_argocd.py do, on the shared dev cluster.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from platformgen.kinds import traits

from .argocd import ArgoCD, GitRepo, render_spec, running
from .kube import (
    CONTROL_PLANE,
    ROOT,
    Cluster,
    control_plane,
    install_crds,
    kustomize_build,
    load_documents,
    require_tools,
)
from .test_argocd import _all_synced, _resource_ids, _wait

ENVIRONMENT = "dev"

pytestmark = pytest.mark.tools


def _helm_spec_copy(repo: Path) -> None:
    """platform.yaml with `gitops.source: helm` pointing at `repo`, rendered into it."""
    spec = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    spec["gitops"] = {
        "repoURL": f"file://{repo}",
        "targetRevision": "HEAD",
        "source": "helm",
        "clusters": {ENVIRONMENT: {"autoSync": True}},
    }
    render_spec(repo, spec)


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    require_tools(*CONTROL_PLANE)
    with control_plane(tmp_path / "cluster") as cluster:
        yield cluster


@pytest.fixture
def argocd(own_cluster: Cluster, tmp_path: Path) -> Iterator[ArgoCD]:
    with running(own_cluster, tmp_path) as instance:
        yield instance


def _created(cluster: Cluster, group: str, kind: str, namespace: str, name: str) -> datetime:
    resource = f"{kind.lower()}.{group}" if group else kind.lower()
    where = ["-n", namespace] if namespace else []
    live = cluster.get_json(resource, name, *where)
    return datetime.fromisoformat(live["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


def wave_order_problems(created: dict[int, list[datetime]]) -> list[str]:
    """Each pair of consecutive waves whose objects were not all created after the earlier
    wave's last one."""
    waves = sorted(created)
    return [
        f"wave {later} has an object created no later than wave {earlier}'s last"
        for earlier, later in zip(waves, waves[1:], strict=False)
        if min(created[later]) <= max(created[earlier])
    ]


@pytest.mark.parametrize("waves", [True, False], ids=["chart", "broken-without-waves"])
def test_helm_source_syncs_the_chart_in_the_same_waves(
    own_cluster: Cluster, argocd: ArgoCD, tmp_path: Path, waves: bool
) -> None:
    cluster, env = own_cluster, ENVIRONMENT
    repo = GitRepo(tmp_path / "repo")
    repo.init()
    _helm_spec_copy(repo.path)
    if not waves:
        for template in (repo.path / "charts" / "mlp" / "templates").glob("*.yaml"):
            text = template.read_text()
            kept = [
                line for line in text.splitlines(True) if "argocd.argoproj.io/sync-wave" not in line
            ]
            template.write_text("".join(kept))
    revision = repo.commit("platform, helm source")
    expected = load_documents(kustomize_build(repo.path / "overlays" / env))
    install_crds(cluster, expected)
    application_set = yaml.safe_load(
        (repo.path / "argocd" / env / "application-set.yaml").read_text()
    )
    source = application_set["spec"]["template"]["spec"]["source"]
    assert source["helm"]["valueFiles"] == [f"values-{env}.yaml"]
    (element,) = application_set["spec"]["generators"][0]["list"]["elements"]
    name = application_set["spec"]["template"]["metadata"]["name"]
    names = [name.replace("{{.group}}", element["group"])]
    project = yaml.safe_load((repo.path / "argocd" / "app-project.yaml").read_text())

    argocd.apply(project, application_set)
    took = _wait(
        "the chart's Application to be Synced", _all_synced(argocd, names, revision), argocd
    )
    ids = _resource_ids(argocd)
    want = {
        (d["apiVersion"].rpartition("/")[0], d["kind"], d["metadata"].get("namespace", ""),
         d["metadata"]["name"])
        for d in expected
    }  # fmt: skip
    assert set(ids) == want, "the chart's Application manages exactly the overlay's objects"
    assert not [i for i in ids if i[1] == "Pod"], "the helm test hook is not synced"

    created: dict[int, list[datetime]] = {}
    for group, kind, namespace, object_name in ids:
        wave = traits(kind).sync_wave
        created.setdefault(wave, []).append(_created(cluster, group, kind, namespace, object_name))
    assert len(created) > 1
    problems = wave_order_problems(created)
    if not waves:
        assert problems, "without the annotations the waves should not be ordered"
        return
    assert not problems, problems
    print(
        f"\nargocd helm source: {len(ids)} objects Synced in {took:.1f}s, waves "
        + ", ".join(f"{w}: {len(created[w])}" for w in sorted(created))
    )
