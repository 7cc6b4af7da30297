"""The node platform delivered by a real Argo CD: `running_platform(work, delivery="argocd")`
(tests/e2e/node_platform.py), what tests/e2e/test_node_platform.py and `make demo-cluster` run.

The spec copy is rendered into a Git repository served as file:// (`gitops.repoURL` points at
it). Argo CD v3.5.1 (tests/e2e/argocd.py) starts with the rendered `argocd/argocd-cm.yaml` (our
Lua health checks) in place and is handed the rendered AppProject and dev ApplicationSet; it then
syncs as it would in a cluster: automated, with prune and selfHeal (dev's `autoSync`). So a change
goes through the repository (`Delivery.commit`): selfHeal reverts a change made with kubectl.

What Argo CD must report, from its own status (`status.sync`, `status.health` and
`status.resources[]`): every Application generated, Synced at the commit, its last sync
Succeeded, every object Synced, and each object's health what this cluster can give it:

- an object of a kind whose controller does not run here (`not_reconciled`: node_platform's
  NOT_RECONCILED, with the reasons) never gets a status, and our Lua check of its kind says
  Progressing for an object without one (tests/emit/test_argocd_health.py, the
  `progressing-unknown` fixtures): Progressing, and its status must be empty;
- a kind Argo CD gives no health (`health: none` in platformgen/kinds.py): no health;
- every other object: Healthy.

An Application's health is the worst of its objects' (gitops-engine's order, `HEALTH_ORDER`).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import yaml

from platformgen.kinds import traits

from .argocd import ArgoCD, GitRepo
from .kube import Cluster, wait_until

HEALTH_ORDER = ("Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown")
"""gitops-engine's health order (pkg/health `healthOrder`): an Application is as bad as its
worst object."""
ResourceId = tuple[str, str, str, str]
"""(group, kind, namespace, name), as in an Application's status.resources."""


def resource_id(resource: dict[str, Any]) -> ResourceId:
    return (
        resource.get("group", ""),
        resource["kind"],
        resource.get("namespace", ""),
        resource["name"],
    )


def expected_health(kind: str, not_reconciled: Collection[str]) -> str | None:
    """The health Argo CD must give an object of `kind` here (None: no health at all)."""
    if traits(kind).health == "none":
        return None
    if kind in not_reconciled:
        return "Progressing"
    return "Healthy"


def worst(healths: Collection[str | None]) -> str:
    """An Application's health from its objects' (objects with no health do not count)."""
    return max((h for h in healths if h is not None), key=HEALTH_ORDER.index, default="Healthy")


@dataclass
class Delivery:
    """The rendered ApplicationSet handed to `argocd`, reading `repo` at `revision`."""

    argocd: ArgoCD
    repo: GitRepo
    revision: str
    not_reconciled: frozenset[str]
    names: list[str] = field(default_factory=list)
    """The Applications the ApplicationSet generates (from its list generator)."""

    @property
    def cluster(self) -> Cluster:
        return self.argocd.cluster

    def start(self, environment: str) -> None:
        """Apply the AppProject and the environment's ApplicationSet, as a user installs them."""
        root = self.repo.path / "argocd"
        project = yaml.safe_load((root / "app-project.yaml").read_text(encoding="utf-8"))
        application_set = yaml.safe_load(
            (root / environment / "application-set.yaml").read_text(encoding="utf-8")
        )
        elements = application_set["spec"]["generators"][0]["list"]["elements"]
        template = application_set["spec"]["template"]["metadata"]["name"]
        self.names = sorted(template.replace("{{.group}}", e["group"]) for e in elements)
        self.argocd.apply(project, application_set)

    def applications(self) -> dict[str, dict[str, Any]]:
        return {a["metadata"]["name"]: a for a in self.argocd.applications()}

    def commit(self, message: str) -> str:
        """Commit the repository's changes and have Argo CD read them now (a hard refresh of
        every Application); automated sync applies them. The new revision."""
        self.revision = self.repo.commit(message)
        self.argocd.refresh(self.names)
        return self.revision

    def sync_problems(self, apps: dict[str, dict[str, Any]]) -> list[str]:
        """Why the Applications are not all Synced at `revision` with a Succeeded sync."""
        problems = []
        for name in self.names:
            app = apps.get(name)
            if app is None:
                problems.append(f"{name}: not generated yet")
                continue
            status = app.get("status", {})
            sync, operation = status.get("sync", {}), status.get("operationState", {})
            if sync.get("status") != "Synced" or sync.get("revision") != self.revision:
                conditions = "; ".join(c.get("message", "") for c in status.get("conditions", []))
                problems.append(
                    f"{name}: {sync.get('status')} at {str(sync.get('revision'))[:8]} "
                    f"({operation.get('message') or conditions or 'no message'})"
                )
            elif "operation" in app or operation.get("phase") != "Succeeded":
                problems.append(
                    f"{name}: sync {operation.get('phase')}: {operation.get('message')}"
                )
            for r in status.get("resources", []):
                if r.get("status") != "Synced":
                    problems.append(f"{name}: {r['kind']} {r['name']} {r.get('status')}")
        return problems

    def health_problems(self, apps: dict[str, dict[str, Any]]) -> list[str]:
        """Where an object's or an Application's health is not `expected_health`'s."""
        problems = []
        for name in self.names:
            status = apps.get(name, {}).get("status", {})
            wanted = []
            for r in status.get("resources", []):
                want = expected_health(r["kind"], self.not_reconciled)
                wanted.append(want)
                health = r.get("health", {})
                if health.get("status") != want:
                    problems.append(
                        f"{name}: {r['kind']} {r.get('namespace', '')}/{r['name']} is "
                        f"{health.get('status')} ({health.get('message', '')}), want {want}"
                    )
            app_health = status.get("health", {}).get("status")
            if app_health != worst(wanted):
                problems.append(f"{name}: {app_health}, want {worst(wanted)}")
        return problems

    def wait(self, what: str, timeout: float, *, health: bool = True) -> float:
        """Until every Application is Synced at `revision` (and, with `health`, every object
        and Application has its expected health); the seconds it took."""
        started = time.monotonic()

        def done() -> str | None:
            apps = self.applications()
            problems = self.sync_problems(apps) + (self.health_problems(apps) if health else [])
            return "\n  ".join(["", *problems]) if problems else None

        try:
            wait_until(what, done, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}{self.argocd.log_tail()}") from None
        return time.monotonic() - started

    def healths(self) -> dict[str, str]:
        """Each Application's health, as Argo CD reports it."""
        return {
            name: app.get("status", {}).get("health", {}).get("status", "?")
            for name, app in sorted(self.applications().items())
        }

    def managing(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """The Application that manages the object."""
        found = [
            app
            for app in self.applications().values()
            for r in app.get("status", {}).get("resources", [])
            if (r["kind"], r.get("namespace", ""), r["name"]) == (kind, namespace, name)
        ]
        assert len(found) == 1, (kind, namespace, name, [a["metadata"]["name"] for a in found])
        return found[0]


def report(delivery: Delivery) -> list[dict[str, Any]]:
    """Each Application as Argo CD reports it: name, sync, health, and the kinds of its objects
    that are not Healthy (with health)."""
    out = []
    for name, app in sorted(delivery.applications().items()):
        status = app.get("status", {})
        waiting = {
            r["kind"]
            for r in status.get("resources", [])
            if r.get("health", {}).get("status") not in (None, "Healthy")
        }
        out.append(
            {
                "name": name,
                "sync": status.get("sync", {}).get("status", "?"),
                "health": status.get("health", {}).get("status", "?"),
                "not_healthy": sorted(waiting),
            }
        )
    return out


def summary(applications: list[dict[str, Any]]) -> str:
    """`8 Applications Synced: 6 Healthy, 2 Progressing` (from `report`)."""
    synced = sum(a["sync"] == "Synced" for a in applications)
    counts: dict[str, int] = {}
    for app in applications:
        counts[app["health"]] = counts.get(app["health"], 0) + 1
    order = sorted(counts, key=lambda h: (HEALTH_ORDER + (h,)).index(h))
    healths = ", ".join(f"{counts[h]} {h}" for h in order)
    return f"{len(applications)} Applications, {synced} Synced: {healths}"


def without_status(cluster: Cluster, app: dict[str, Any], kinds: Collection[str]) -> list[str]:
    """`kind namespace/name` of the Application's objects of `kinds` whose live status is empty:
    no controller wrote one."""
    out = []
    for r in app.get("status", {}).get("resources", []):
        if r["kind"] not in kinds:
            continue
        resource = f"{r['kind']}.{r['version']}.{r['group']}" if r.get("group") else r["kind"]
        namespace = ["-n", r["namespace"]] if r.get("namespace") else []
        live = cluster.get_json(resource, r["name"], *namespace)
        if not live.get("status"):
            out.append(f"{r['kind']} {r.get('namespace', '')}/{r['name']}")
    return out
