"""Day 2 on the real Argo CD: ordered delivery, Server-Side Diff under a mutating webhook, prune of
a replaced Job, self-heal and manual sync, and deletion with the resources finalizer.

On a control plane and an Argo CD of their own (tests/e2e/argocd.py, ApplicationSet controller
with --enable-progressive-syncs; the rendered health checks in argocd-cm), a mutating webhook
that adds what KFP's PipelineVersion webhook adds (tests/e2e/webhook.py), and a file:// copy
of the repository whose dev cluster is `progressive`:

1. every Application is Synced, and the order is read from the cluster, not from logs: each
   RollingSync step's Applications started their sync after the step before finished
   (operationState), and inside an Application each sync wave's objects were created no
   earlier than the wave before (creationTimestamp);
2. the PipelineVersion carries the webhook's labels and ownerReference, and its Application
   stays Synced through hard refreshes (Server-Side Diff);
3. an env var changed for the content-named Job: the old Job is pruned, the new one created;
4. the environment switched to `autoSync` (selfHeal): a Deployment scaled by hand is scaled back;
   switched to manual sync (prod's policy): the same edit is reported OutOfSync and stays;
5. the ApplicationSet removed (orphaning its Applications), one Application deleted with the
   resources finalizer: its objects go, every other Application's stay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import webhook
from .argocd import NAMESPACE, ArgoCD, GitRepo, render_spec, running
from .kube import CONTROL_PLANE, Cluster, control_plane, install_crds, load_documents
from .test_argocd import _all_synced, _wait
from support import ROOT, require_tools

pytestmark = pytest.mark.tools

ENV = "dev"
JOB_COMPONENT = "initial-training"
SCALED = ("drift-monitor", "ml-serving")
FINALIZER = "resources-finalizer.argocd.argoproj.io"


@pytest.fixture
def argocd(tmp_path: Path) -> Iterator[ArgoCD]:
    require_tools(*CONTROL_PLANE)
    with control_plane(tmp_path / "cluster") as cluster, running(cluster, tmp_path) as instance:
        yield instance


def _write_spec(repo: Path, cluster: dict[str, Any], job_env: str | None = None) -> None:
    spec = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    spec["gitops"] = {
        "repoURL": f"file://{repo}",
        "targetRevision": "HEAD",
        "clusters": {ENV: cluster},
    }
    if job_env is not None:
        overrides = spec["environments"][ENV].setdefault("components", {})
        overrides.setdefault(JOB_COMPONENT, {})["env"] = {"MLP_E2E_REVISION": job_env}
    render_spec(repo, spec)


def _seconds(stamp: str) -> float:
    """An RFC 3339 timestamp as Unix seconds."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _apps(argocd: ArgoCD) -> dict[str, dict[str, Any]]:
    return {a["metadata"]["name"]: a for a in argocd.applications()}


def _live(cluster: Cluster, app: dict[str, Any]) -> list[tuple[list[str], dict[str, Any]]]:
    """The live objects an Application manages, with the kubectl arguments that name each."""
    out = []
    for r in app["status"].get("resources", []):
        resource = f"{r['kind']}.{r['version']}.{r['group']}" if r.get("group") else r["kind"]
        args = [resource, r["name"]] + (["-n", r["namespace"]] if r.get("namespace") else [])
        out.append((args, cluster.get_json(*args)))
    return out


def _jobs(cluster: Cluster) -> set[str]:
    items = cluster.get_json("jobs", "-n", "ml-pipelines")["items"]
    return {
        j["metadata"]["name"]
        for j in items
        if j["metadata"].get("labels", {}).get("app.kubernetes.io/name") == JOB_COMPONENT
    }


def _replicas(cluster: Cluster) -> int:
    deployment = cluster.get_json("deployment", SCALED[0], "-n", SCALED[1])
    replicas: int = deployment["spec"]["replicas"]
    return replicas


def _sync_status(argocd: ArgoCD, name: str) -> str:
    status: str = _apps(argocd)[name]["status"]["sync"]["status"]
    return status


def _until(argocd: ArgoCD, what: str, condition: Callable[[], str | None]) -> float:
    return _wait(what, condition, argocd)


def test_argocd_day2(argocd: ArgoCD, tmp_path: Path) -> None:
    cluster = argocd.cluster
    repo = GitRepo(tmp_path / "repo")
    repo.init()
    _write_spec(repo.path, {"progressive": True})
    first = repo.commit("platform, progressive")
    documents = load_documents(
        cluster.kubectl("kustomize", str(repo.path / "overlays" / ENV)).stdout
    )
    install_crds(cluster, documents)
    appset = yaml.safe_load((repo.path / "argocd" / ENV / "application-set.yaml").read_text())
    project = yaml.safe_load((repo.path / "argocd" / "app-project.yaml").read_text())
    health = yaml.safe_load((repo.path / "argocd" / "argocd-cm.yaml").read_text())
    argocd.apply(health)

    def pipeline(namespace: str, name: str) -> dict[str, Any] | None:
        found = cluster.kubectl(
            "get",
            "pipelines.pipelines.kubeflow.org",
            name,
            "-n",
            namespace,
            "-o",
            "json",
            check=False,
        )
        return yaml.safe_load(found.stdout) if found.returncode == 0 else None

    with webhook.serving(tmp_path / "webhook", pipeline) as (port, ca, calls):
        cluster.kubectl(
            "apply",
            "--server-side",
            "-f",
            "-",
            stdin=yaml.safe_dump(webhook.configuration(port, ca)),
        )
        elements = appset["spec"]["generators"][0]["list"]["elements"]
        prefix = appset["metadata"]["name"]
        names = sorted(f"{prefix}-{e['group']}" for e in elements)
        step_of = {f"{prefix}-{e['group']}": e["step"] for e in elements}

        # 1. Synced, in RollingSync steps and sync waves.
        argocd.apply(project, appset)
        took = _until(argocd, "every Application Synced", _all_synced(argocd, names, first))
        apps = _apps(argocd)
        steps = [
            s["matchExpressions"][0]["values"][0]
            for s in appset["spec"]["strategy"]["rollingSync"]["steps"]
        ]
        # The ApplicationSet controller moves to the next step once the step's apps report
        # Synced and Healthy, which can be seconds before the application controller stamps the
        # operation's finishedAt (seen: 1 and 2 s), so the order is asserted on what each step
        # did: every app of a step started its RollingSync operation no earlier than the
        # previous step's apps, and created its objects only after the previous step's last.
        created = {
            n: [
                _seconds(obj["metadata"]["creationTimestamp"]) for _, obj in _live(cluster, apps[n])
            ]
            for n in names
        }
        for before, after in zip(steps, steps[1:], strict=False):
            earlier = [n for n in names if step_of[n] == before]
            later = [n for n in names if step_of[n] == after]
            started = max(
                _seconds(apps[n]["status"]["operationState"]["startedAt"]) for n in earlier
            )
            last = max(t for n in earlier for t in created[n])
            for n in later:
                operation = apps[n]["status"]["operationState"]
                assert "RollingSync" in str(operation["operation"]), (n, operation)
                assert _seconds(operation["startedAt"]) >= started, (
                    f"{n} ({after}) started {operation['startedAt']}, before step {before}"
                )
                assert min(created[n], default=last) >= last, (
                    f"{n} ({after}) created objects before step {before}'s last ({last})"
                )
        for name in names:
            waves: dict[int, list[str]] = {}
            for _, obj in _live(cluster, apps[name]):
                wave = int(
                    obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0")
                )
                waves.setdefault(wave, []).append(obj["metadata"]["creationTimestamp"])
            ordered = sorted(waves)
            for lower, higher in zip(ordered, ordered[1:], strict=False):
                assert max(waves[lower]) <= min(waves[higher]), (
                    f"{name}: wave {higher} created before wave {lower} ended: {waves}"
                )
        print(f"\nargocd day2: {len(names)} Applications Synced in steps {steps} after {took:.1f}s")

        # 2. The webhook's labels and ownerReference; Synced through hard refreshes.
        versions = cluster.get_json("pipelineversions.pipelines.kubeflow.org", "-A")["items"]
        assert versions
        for version in versions:
            labels = version["metadata"]["labels"]
            assert webhook.PIPELINE_ID_LABEL in labels and webhook.PIPELINE_LABEL in labels
            assert [o["kind"] for o in version["metadata"]["ownerReferences"]] == ["Pipeline"]
        assert any(c.startswith("dryRun=True") for c in calls), f"no dry-run call: {calls}"
        for _ in range(2):
            argocd.refresh(names)
            _until(
                argocd,
                "a hard refresh",
                lambda: (
                    None
                    if all(
                        "argocd.argoproj.io/refresh" not in a["metadata"].get("annotations", {})
                        for a in argocd.applications()
                    )
                    else "refresh pending"
                ),
            )
            assert _all_synced(argocd, names, first)() is None
        configuration = [n for n in names if step_of[n] == "configuration"]
        assert {_apps(argocd)[n]["status"]["health"]["status"] for n in configuration} == {
            "Healthy"
        }

        # 3. A replaced content-named Job: the old one pruned, the new one created.
        old_jobs = _jobs(cluster)
        _write_spec(repo.path, {"progressive": True}, job_env="2")
        second = repo.commit("initial-training: a new env var")
        argocd.refresh(names)
        _until(argocd, "the Job change synced", _all_synced(argocd, names, second))
        _until(
            argocd,
            "the old Job pruned",
            lambda: None if not (_jobs(cluster) & old_jobs) else f"jobs {_jobs(cluster)}",
        )
        new_jobs = _jobs(cluster)
        assert len(new_jobs) == 1 and not new_jobs & old_jobs, (old_jobs, new_jobs)

        # 4. selfHeal reverts a manual edit; manual sync reports it and leaves it.
        app = f"{prefix}-{SCALED[0]}"
        for cluster_policy, reverted in (({"autoSync": True}, True), ({}, False)):
            _write_spec(repo.path, cluster_policy, job_env="2")
            revision = repo.commit(f"sync policy {cluster_policy}")
            argocd.apply(
                yaml.safe_load((repo.path / "argocd" / ENV / "application-set.yaml").read_text())
            )
            argocd.refresh(names)
            if reverted:
                _until(argocd, "autoSync Synced", _all_synced(argocd, names, revision))
            else:
                _until(
                    argocd,
                    "manual policy applied",
                    lambda: (
                        None
                        if "automated" not in _apps(argocd)[app]["spec"].get("syncPolicy", {})
                        else "automated still set"
                    ),
                )
            wanted = _replicas(cluster)
            cluster.kubectl(
                "scale", "deployment", SCALED[0], "-n", SCALED[1], f"--replicas={wanted + 2}"
            )
            if reverted:
                _until(
                    argocd,
                    "selfHeal",
                    lambda wanted=wanted: (  # type: ignore[misc]
                        None if _replicas(cluster) == wanted else f"{_replicas(cluster)} replicas"
                    ),
                )
            else:
                argocd.refresh([app])
                _until(
                    argocd,
                    "OutOfSync",
                    lambda: (
                        None
                        if _sync_status(argocd, app) == "OutOfSync"
                        else _sync_status(argocd, app)
                    ),
                )
                time.sleep(10)
                assert _replicas(cluster) == wanted + 2, (
                    "a manual-sync environment reverted an edit"
                )
                assert _sync_status(argocd, app) == "OutOfSync"

        # 5. Deletion with the resources finalizer removes that Application's objects only.
        cluster.kubectl(
            "delete",
            "applicationset",
            appset["metadata"]["name"],
            "-n",
            NAMESPACE,
            "--cascade=orphan",
        )
        apps = _apps(argocd)
        victim = f"{prefix}-tune-model"
        gone = [args for args, _ in _live(cluster, apps[victim])]
        kept = {n: _live(cluster, apps[n]) for n in names if n != victim}
        cluster.kubectl(
            "patch",
            "applications.argoproj.io",
            victim,
            "-n",
            NAMESPACE,
            "--type",
            "merge",
            "-p",
            f'{{"metadata":{{"finalizers":["{FINALIZER}"]}}}}',
        )
        cluster.kubectl(
            "delete",
            "applications.argoproj.io",
            victim,
            "-n",
            NAMESPACE,
            "--wait=true",
            "--timeout=180s",
        )

        def left() -> str | None:
            alive = [g for g in gone if cluster.kubectl("get", *g, check=False).returncode == 0]
            return f"still there: {alive}" if alive else None

        _until(argocd, "the deleted Application's objects gone", left)
        for name, objects in kept.items():
            for args, obj in objects:
                meta = obj["metadata"]
                live = cluster.get_json(*args)
                assert live["metadata"]["uid"] == meta["uid"], (
                    f"{name}: {obj['kind']} {meta['name']} replaced"
                )
                assert "deletionTimestamp" not in live["metadata"], (
                    f"{name}: {obj['kind']} {meta['name']} deleting"
                )
        print(
            f"argocd day2: {victim} deleted with its {len(gone)} objects; "
            f"{sum(map(len, kept.values()))} others kept"
        )
