"""Kind traits: what each Kubernetes kind is to the generator, in one table.

Both emitters (kustomize, Helm) and `environments` read these traits instead of branching on
kind names, so a new kind is one entry here (plus its builder), not a branch in every module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

COMMON_TUNABLES: frozenset[str] = frozenset({"resources", "env", "policyExceptions"})
"""ComponentOverride fields (YAML names) an environment may set for a component of any kind."""

OPTIONAL_TUNABLES: tuple[str, ...] = (
    "autoscaling",
    "disruptionBudget",
    "topologySpread",
    "model",
    "canary",
)
"""Tunables that add fields or objects only when set (a HorizontalPodAutoscaler, say)."""


@dataclass(frozen=True)
class KindTraits:
    """One kind, as the generator sees it."""

    workload: bool = False
    """Runs a component's container: a value of `components.<name>.kind`."""
    pods_created_by: str | None = None
    """Why its pods are out of sight of static checks of the manifests: the controller that
    creates them (None: the pod template is in the object)."""
    tunables: frozenset[str] = frozenset()
    """ComponentOverride fields, besides COMMON_TUNABLES, an environment may set."""
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Where a tunable lands in the object, for tunables the builder does not copy verbatim
    (a builder that derives the field, e.g. `bool(suspend)`, hides where the value went)."""
    object_kind: str | None = None
    """The kind of the object that runs the component's container, when it is not the
    component's kind (a RecurringRun is applied by a Job)."""
    content_named: bool = False
    """Its spec is immutable, so it is named by a hash of its content (naming.content_name)
    and exists only in environments (rendered whole into each overlay, never into base): the
    name depends on the environment's image pins. The Helm chart renders the environment's
    object as fixed data, selected by the `environment` value."""


KINDS: Mapping[str, KindTraits] = {
    "Deployment": KindTraits(
        workload=True,
        tunables=frozenset({"replicas", "autoscaling", "disruptionBudget", "topologySpread"}),
    ),
    "Job": KindTraits(workload=True, content_named=True),
    "CronJob": KindTraits(
        workload=True, tunables=frozenset({"suspend"}), fields={"suspend": ("spec", "suspend")}
    ),
    "RecurringRun": KindTraits(
        workload=True, object_kind="Job", content_named=True, tunables=frozenset({"suspend"})
    ),
    "InferenceService": KindTraits(
        workload=True,
        pods_created_by="KServe creates these pods from the InferenceService",
        tunables=frozenset({"replicas", "disruptionBudget", "model", "canary"}),
    ),
    "Experiment": KindTraits(
        workload=True,
        pods_created_by="Katib creates these pods for each trial of the Experiment",
    ),
    "TrainJob": KindTraits(
        workload=True,
        pods_created_by="Kubeflow Trainer creates these pods (through a JobSet) from the TrainJob",
    ),
    "PipelineVersion": KindTraits(content_named=True),
}
"""Kinds with traits; every other kind has the defaults (not a workload, nothing tunable)."""


def traits(kind: str) -> KindTraits:
    """The traits of `kind` (defaults for kinds without an entry)."""
    return KINDS.get(kind, KindTraits())


def tunables(kind: str) -> frozenset[str]:
    """Every ComponentOverride field an environment may set for a component of `kind`
    (nothing, for a kind that is not a workload)."""
    kind_traits = traits(kind)
    return COMMON_TUNABLES | kind_traits.tunables if kind_traits.workload else frozenset()


def merges_lists_by_key(api_version: str) -> bool:
    """How an environment's list reaches the object: built-in kinds get strategic merge (lists
    merged by name); custom resources get JSON merge patch semantics from kustomize, where a
    list in a patch replaces the whole list."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")
