"""A real Argo CD syncs the rendered platform, stays Synced, and syncs a one-line spec change.

Argo CD v3.5.1 (scripts/install-argocd.sh) runs against the dev control plane that the e2e
fixture starts (tests/e2e/argocd.py). The repository it reads is a temporary Git repository,
served as file://, holding what `platformgen render` writes from a copy of platform.yaml whose
`gitops` section points at that repository. We apply the rendered AppProject and dev
ApplicationSet and check, with Argo CD's own status:

1. every Application the ApplicationSet generates is Synced (health stays Progressing: there is
   no kubelet, so no pod ever runs, and the last sync wave is the workloads: see emit/argocd.py);
2. a second sync of every Application changes no object (the argocd-controller field manager's
   entry and every non-status field read back identical), and hard refreshes find them Synced;
3. one replica count changed in the spec copy, re-rendered and committed: after a hard refresh
   exactly that Deployment, in exactly its Application, goes OutOfSync, and is synced.

Times are printed (`pytest -s`): first sync, second sync, change to Synced.
MLP_ARGOCD_REFRESHES sets the number of hard refreshes in step 2 (default 5).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .argocd import NAMESPACE, ArgoCD, GitRepo, render_spec, running
from .kube import (
    ROOT,
    Cluster,
    install_crds,
    kustomize_build,
    load_documents,
)

ENVIRONMENT = "dev"
CHANGED = ("apps", "Deployment", "ml-serving", "drift-monitor")
"""The object whose replica count the test changes (a Deployment in platform.yaml)."""
SYNC_TIMEOUT = 420.0

pytestmark = [pytest.mark.tools, pytest.mark.parametrize("env", [ENVIRONMENT], indirect=True)]

ResourceId = tuple[str, str, str, str]


def _spec_copy(repo: Path, replicas: int | None = None) -> None:
    """platform.yaml and its compiled pipelines into `repo`, with `gitops` pointing at `repo`;
    with `replicas`, the changed Deployment's component gets that many in the environment."""
    spec = yaml.safe_load((ROOT / "platform.yaml").read_text(encoding="utf-8"))
    spec["gitops"] = {
        "repoURL": f"file://{repo}",
        "targetRevision": "HEAD",
        "clusters": {ENVIRONMENT: {"autoSync": True}},
    }
    if replicas is not None:
        overrides = spec["environments"][ENVIRONMENT].setdefault("components", {})
        overrides.setdefault(CHANGED[3], {})["replicas"] = replicas
    render_spec(repo, spec)


def _wait(what: str, condition: Callable[[], str | None], argocd: ArgoCD) -> float:
    """Poll `condition` (None = done, else why not) every 0.5 s; return the seconds it took."""
    started = time.monotonic()
    reason = condition()
    while reason is not None:
        if time.monotonic() - started > SYNC_TIMEOUT:
            raise AssertionError(
                f"timed out after {SYNC_TIMEOUT:.0f}s waiting for {what}: {reason}"
                f"{argocd.log_tail()}"
            )
        time.sleep(0.5)
        reason = condition()
    return time.monotonic() - started


def _all_synced(
    argocd: ArgoCD, names: list[str], revision: str, since: str = ""
) -> Callable[[], str | None]:
    """Every named Application is Synced at `revision`, with no operation running, and (with
    `since`) a sync that started at or after `since` succeeded."""

    def condition() -> str | None:
        apps = {a["metadata"]["name"]: a for a in argocd.applications()}
        for name in names:
            app = apps.get(name)
            if app is None:
                return f"{name} not generated yet"
            status = app.get("status", {})
            sync = status.get("sync", {})
            operation = status.get("operationState", {})
            if "operation" in app:
                return f"{name}: operation pending"
            if sync.get("revision") != revision or sync.get("status") != "Synced":
                return f"{name}: {sync.get('status')} at {sync.get('revision')}: " + (
                    operation.get("message") or _conditions(status)
                )
            if since and not (
                operation.get("startedAt", "") >= since and operation.get("phase") == "Succeeded"
            ):
                return f"{name}: sync {operation.get('phase')}: {operation.get('message')}"
        return None

    return condition


def _conditions(status: dict[str, Any]) -> str:
    return "; ".join(c.get("message", "") for c in status.get("conditions", [])) or "no message"


def _resource_ids(argocd: ArgoCD) -> dict[ResourceId, str]:
    """Every object the Applications manage -> its Application."""
    out = {}
    for app in argocd.applications():
        for r in app.get("status", {}).get("resources", []):
            key = (r.get("group", ""), r["kind"], r.get("namespace", ""), r["name"])
            out[key] = app["metadata"]["name"]
    return out


def _live(
    cluster: Cluster, ids: list[ResourceId], versions: dict[ResourceId, str]
) -> dict[ResourceId, Any]:
    """The live objects, fingerprinted: everything but status and resourceVersion, and of
    managedFields only the non-status entries (a controller's status write is not a change)."""
    by_namespace: dict[str, list[str]] = {}
    for group, kind, namespace, name in ids:
        version = versions[(group, kind, namespace, name)]
        resource = f"{kind}.{version}.{group}" if group else kind
        by_namespace.setdefault(namespace, []).append(f"{resource}/{name}")
    out: dict[ResourceId, Any] = {}
    for namespace, names in by_namespace.items():
        args = ["get", "-o", "json", *names] + (["-n", namespace] if namespace else [])
        listed = json.loads(cluster.kubectl(*args).stdout)
        for obj in listed.get("items", [listed]):
            meta = dict(obj["metadata"])
            meta.pop("resourceVersion", None)
            meta["managedFields"] = [
                f for f in meta.get("managedFields", []) if f.get("subresource") != "status"
            ]
            group = obj["apiVersion"].rpartition("/")[0]
            key = (group, obj["kind"], meta.get("namespace", ""), meta["name"])
            out[key] = {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}
    return out


def _versions(argocd: ArgoCD) -> dict[ResourceId, str]:
    out = {}
    for app in argocd.applications():
        for r in app.get("status", {}).get("resources", []):
            out[(r.get("group", ""), r["kind"], r.get("namespace", ""), r["name"])] = r["version"]
    return out


class Watch:
    """`kubectl get applications --watch`: every status the controller writes, in order."""

    def __init__(self, cluster: Cluster, out: Path) -> None:
        self.out = out
        self._file = out.open("wb")
        self._process = subprocess.Popen(
            [
                str(ROOT / ".tools" / "bin" / "kubectl"),
                "--kubeconfig",
                str(cluster.kubeconfig),
                "get",
                "applications.argoproj.io",
                "-n",
                NAMESPACE,
                "--watch",
                "--output-watch-events",
                "-o",
                "json",
            ],
            stdout=self._file,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> list[dict[str, Any]]:
        self._process.terminate()
        self._process.wait(timeout=10)
        self._file.close()
        text, decoder, events, at = self.out.read_text(), json.JSONDecoder(), [], 0
        while True:
            while at < len(text) and text[at].isspace():
                at += 1
            if at >= len(text):
                return events
            event, at = decoder.raw_decode(text, at)
            events.append(event["object"])


@pytest.fixture
def argocd(cluster: Cluster, tmp_path: Path) -> Iterator[ArgoCD]:
    with running(cluster, tmp_path) as instance:
        yield instance


def test_argocd_syncs_the_platform_stays_synced_and_syncs_a_spec_change(
    env: str, cluster: Cluster, argocd: ArgoCD, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.init()
    _spec_copy(repo.path)
    first = repo.commit("platform")
    install_crds(cluster, load_documents(kustomize_build(repo.path / "overlays" / env)))
    application_set = yaml.safe_load(
        (repo.path / "argocd" / env / "application-set.yaml").read_text()
    )
    elements = application_set["spec"]["generators"][0]["list"]["elements"]
    name = application_set["spec"]["template"]["metadata"]["name"]
    names = sorted(name.replace("{{.group}}", e["group"]) for e in elements)
    project = yaml.safe_load((repo.path / "argocd" / "app-project.yaml").read_text())
    assert application_set["metadata"]["namespace"] == project["metadata"]["namespace"]

    # 1. Every Application Synced.
    test_started = time.monotonic()
    argocd.apply(project, application_set)
    first_sync = _wait("every Application to be Synced", _all_synced(argocd, names, first), argocd)
    apps = argocd.applications()
    assert sorted(a["metadata"]["name"] for a in apps) == names
    health = {a["metadata"]["name"]: a["status"]["health"]["status"] for a in apps}
    ids = _resource_ids(argocd)
    print(
        f"\nargocd: {len(names)} Applications, {len(ids)} objects Synced "
        f"{first_sync:.1f}s after the ApplicationSet was applied; health: {health}"
    )
    expected = load_documents(kustomize_build(repo.path / "overlays" / env))
    assert len(ids) == len(expected), "Applications manage exactly the environment's objects"

    # 2. A second sync changes nothing, and hard refreshes keep every Application Synced.
    versions = _versions(argocd)
    before = _live(cluster, sorted(ids), versions)
    since = _now()
    for app in argocd.applications():
        argocd.sync(app)
    second_sync = _wait(
        "a second sync of every Application", _all_synced(argocd, names, first, since), argocd
    )
    after = _live(cluster, sorted(ids), versions)
    changed = sorted(k for k in before if before[k] != after.get(k))
    assert changed == [], f"a second sync changed {changed}"
    refreshes = int(os.environ.get("MLP_ARGOCD_REFRESHES", "5"))
    refreshing = time.monotonic()
    for _ in range(refreshes):
        argocd.refresh(names)
        _wait("a hard refresh", _refreshed(argocd, names), argocd)
        assert _all_synced(argocd, names, first)() is None
    assert _live(cluster, sorted(ids), versions) == before, "a refresh changed live objects"
    print(
        f"argocd: second sync of {len(names)} Applications {second_sync:.1f}s, "
        f"0 of {len(before)} objects changed; Synced through {refreshes} hard refreshes of "
        f"every Application ({time.monotonic() - refreshing:.1f}s), objects unchanged"
    )

    # 3. One replica count: exactly that Deployment goes OutOfSync, then Synced.
    watch = Watch(cluster, tmp_path / "watch.json")
    _spec_copy(repo.path, replicas=3)
    second = repo.commit("drift-monitor: 3 replicas in dev")
    changed_files = repo.git("diff", "--name-only", first, second).split()
    argocd.refresh(names)
    synced = _wait("the replica change to be synced", _all_synced(argocd, names, second), argocd)
    events = watch.stop()
    out_of_sync = {
        (r.get("group", ""), r["kind"], r.get("namespace", ""), r["name"]): e["metadata"]["name"]
        for e in events
        for r in e.get("status", {}).get("resources", [])
        if r.get("status") == "OutOfSync"
    }
    assert out_of_sync == {CHANGED: ids[CHANGED]}, out_of_sync
    live = cluster.get_json("deployment", CHANGED[3], "-n", CHANGED[2])
    assert live["spec"]["replicas"] == 3
    print(
        f"argocd: spec change ({', '.join(changed_files)}) Synced {synced:.1f}s after the "
        f"hard refresh; OutOfSync on the way: {sorted(out_of_sync)}"
    )

    # Leave the cluster as `make render` has it, for the tests that follow on it.
    _spec_copy(repo.path)
    third = repo.commit("revert")
    argocd.refresh(names)
    _wait("the revert to be synced", _all_synced(argocd, names, third), argocd)
    print(f"argocd: whole test {time.monotonic() - test_started:.1f}s")


def _now() -> str:
    """UTC now as RFC 3339 seconds, the form of operationState.startedAt (same host clock)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _refreshed(argocd: ArgoCD, names: list[str]) -> Callable[[], str | None]:
    def condition() -> str | None:
        pending = [
            a["metadata"]["name"]
            for a in argocd.applications()
            if a["metadata"]["name"] in names
            and "argocd.argoproj.io/refresh" in a["metadata"].get("annotations", {})
        ]
        return f"refresh pending for {pending}" if pending else None

    return condition
