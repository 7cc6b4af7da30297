"""`platformgen diff`: what applying an environment would change on a live cluster.

Every rendered object is sent to the apiserver as a server-side apply with `dryRun=All` and
`force=true` (what a GitOps controller's apply does), so the cluster's own defaulting, admission
and field ownership decide the result; nothing is simulated here. The result is compared with
the live object:

- created:   the object does not exist;
- changed:   the dry-run result differs from the live object, with the field paths;
- unchanged: they are equal;
- orphan:    an object on the cluster carries our labels but is not rendered any more, so an
             apply with prune would delete it (objects that a controller owns are skipped).

The pure part (`compare`, `field_paths`, `normalized`) is separate from the client calls.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from platformgen.naming import MANAGED_BY, MANAGED_BY_LABEL, PART_OF, Manifest

VOLATILE_METADATA = ("managedFields", "resourceVersion", "generation")
"""Bookkeeping the apiserver changes on every write; never a difference in content."""
TOOL_BOOKKEEPING_LABELS = ("applyset.kubernetes.io/part-of", "app.kubernetes.io/instance")
"""Labels a deploying tool (kubectl ApplySets, Argo CD) adds to what it applies: carried over
from the live object so the dry run does not report them as removed."""


PRUNABLE_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "ConfigMap"),
    ("v1", "LimitRange"),
    ("v1", "Namespace"),
    ("v1", "ResourceQuota"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("batch/v1", "CronJob"),
    ("batch/v1", "Job"),
    ("kubeflow.org/v1beta1", "Experiment"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1alpha1", "AlertmanagerConfig"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("pipelines.kubeflow.org/v2beta1", "Pipeline"),
    ("pipelines.kubeflow.org/v2beta1", "PipelineVersion"),
    ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"),
    ("trainer.kubeflow.org/v1alpha1", "TrainingRuntime"),
)
"""Every kind the generator emits: searched for leftovers even when the current render has
none of that kind any more (the last CronJob removed from the spec, say)."""


@dataclass(frozen=True)
class ObjectResult:
    status: str
    """created, changed, unchanged or orphan."""
    kind: str
    namespace: str
    name: str
    paths: tuple[str, ...] = ()
    """For `changed`: the field paths that differ."""

    def line(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        text = f"{self.status:9}  {self.kind} {where}"
        if self.paths:
            text += ": " + ", ".join(self.paths)
        if self.status == "orphan":
            text += " (on the cluster with our labels, not in the repo: prune would delete it)"
        return text


@dataclass
class DiffReport:
    results: list[ObjectResult] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return all(r.status == "unchanged" for r in self.results)

    def summary(self) -> str:
        counts = {s: 0 for s in ("created", "changed", "unchanged", "orphan")}
        for r in self.results:
            counts[r.status] += 1
        state = "in sync" if self.in_sync else "out of sync"
        return f"{state}: " + ", ".join(f"{n} {s}" for s, n in counts.items())


def normalized(obj: Manifest) -> Manifest:
    """The object without status and write bookkeeping."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata", {})
    for key in VOLATILE_METADATA:
        meta.pop(key, None)
    return out


def field_paths(before: Any, after: Any, path: str = "") -> Iterator[str]:
    """Dotted paths where `after` differs from `before`; list items by `name` where they
    have one (containers[serve].image), else by index."""
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            yield from field_paths(before.get(key), after.get(key), sub)
        return
    if isinstance(before, list) and isinstance(after, list):
        named = all(isinstance(i, dict) and "name" in i for i in [*before, *after])
        if named:
            old = {i["name"]: i for i in before}
            new = {i["name"]: i for i in after}
            for name in sorted(set(old) | set(new)):
                yield from field_paths(old.get(name), new.get(name), f"{path}[{name}]")
            return
        if len(before) == len(after):
            for i, (a, b) in enumerate(zip(before, after, strict=True)):
                yield from field_paths(a, b, f"{path}[{i}]")
            return
    yield path or "."


def with_tool_labels(desired: Manifest, live: Manifest | None) -> Manifest:
    """`desired` plus the deploying tool's bookkeeping labels that the live object has."""
    if live is None:
        return desired
    live_labels = live.get("metadata", {}).get("labels") or {}
    carried = {k: live_labels[k] for k in TOOL_BOOKKEEPING_LABELS if k in live_labels}
    if not carried:
        return desired
    out = copy.deepcopy(desired)
    out.setdefault("metadata", {}).setdefault("labels", {}).update(carried)
    return out


def compare(desired: Manifest, live: Manifest | None, dry_run: Manifest) -> ObjectResult:
    """The result for one rendered object: its live state and the dry-run apply's result."""
    meta = desired["metadata"]
    kind, namespace, name = desired["kind"], meta.get("namespace", ""), meta["name"]
    if live is None:
        return ObjectResult("created", kind, namespace, name)
    paths = tuple(field_paths(normalized(live), normalized(dry_run)))
    status = "changed" if paths else "unchanged"
    return ObjectResult(status, kind, namespace, name, paths)


def ours_selector(part_of: str) -> str:
    return f"{MANAGED_BY_LABEL}={MANAGED_BY},{PART_OF}={part_of}"


def identity(obj: Manifest) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return (obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else "", obj["kind"],
            meta.get("namespace", ""), meta["name"])  # fmt: skip


def orphans(rendered: list[Manifest], labelled: list[Manifest]) -> list[ObjectResult]:
    """Objects the cluster holds with our labels that nothing rendered names, skipping those a
    controller owns (ReplicaSets of our Deployments, say)."""
    wanted = {identity(d) for d in rendered}
    out = []
    for obj in labelled:
        if obj["metadata"].get("ownerReferences"):
            continue
        if identity(obj) not in wanted:
            meta = obj["metadata"]
            out.append(ObjectResult("orphan", obj["kind"], meta.get("namespace", ""), meta["name"]))
    return sorted(out, key=lambda r: (r.kind, r.namespace, r.name))


# --- the shell: the official Kubernetes client ------------------------------------------------


def live_diff(
    documents: list[Manifest], kubeconfig: str, part_of: str, field_manager: str
) -> DiffReport:
    """Dry-run apply `documents` against the cluster of `kubeconfig` and compare."""
    from kubernetes import config
    from kubernetes.client import ApiClient
    from kubernetes.client.exceptions import ApiException
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

    from platformgen.errors import PlatformgenError

    client = DynamicClient(ApiClient(configuration=_configuration(config, kubeconfig)))
    report = DiffReport()
    kinds: dict[tuple[str, str], Any] = {}
    for desired in documents:
        key = (desired["apiVersion"], desired["kind"])
        if key not in kinds:
            try:
                kinds[key] = client.resources.get(api_version=key[0], kind=key[1])
            except ResourceNotFoundError:
                raise PlatformgenError(
                    f"the cluster does not serve {key[1]} ({key[0]}): install its CRD first"
                ) from None
        resource = kinds[key]
        meta = desired["metadata"]
        namespace = meta.get("namespace") if resource.namespaced else None
        try:
            live = client.get(resource, name=meta["name"], namespace=namespace).to_dict()
        except NotFoundError:
            live = None
        try:
            result = client.server_side_apply(
                resource,
                body=with_tool_labels(desired, live),
                name=meta["name"],
                namespace=namespace,
                field_manager=field_manager,
                force_conflicts=True,
                dry_run="All",
            ).to_dict()
        except ApiException as err:
            raise PlatformgenError(
                f"the apiserver rejects {desired['kind']} {namespace or ''}/{meta['name']}: "
                f"{_reason(err)}"
            ) from None
        report.results.append(compare(desired, live, result))
    labelled = []
    for api_version, kind in sorted(set(kinds) | set(PRUNABLE_KINDS)):
        try:
            resource = kinds.get((api_version, kind)) or client.resources.get(
                api_version=api_version, kind=kind
            )
        except ResourceNotFoundError:
            continue  # not served here, so nothing of that kind can be left over
        listed = client.get(resource, label_selector=ours_selector(part_of))
        labelled += [
            {**item.to_dict(), "apiVersion": resource.group_version, "kind": resource.kind}
            for item in listed.items
        ]
    report.results += orphans(documents, labelled)
    return report


def _configuration(config: Any, kubeconfig: str) -> Any:
    from kubernetes.client import Configuration

    configuration = Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    return configuration


def _reason(err: Any) -> str:
    import json

    try:
        return str(json.loads(err.body).get("message", err.reason))
    except (TypeError, ValueError):
        return str(err.reason)
