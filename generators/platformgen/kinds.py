"""Every fact about a Kubernetes kind, in one table: `KINDS`.

One row per kind the generator renders (and per value of `components.<name>.kind`): its
apiVersion, its builders, its Argo CD sync wave, whether live diff searches it for leftovers,
batch or long-running, its name-length limit, which spec fields apply to it, whether it is
content-named, what an environment may tune, and how Argo CD judges its health. Every set
another module needs ("kinds Argo CD waves", "kinds live diff prunes", "workload kinds the spec
accepts") is derived from this table below, never listed again where it is used.
A new kind is its builder module plus one row here.

The table is plain data and imports only name lengths (naming.py): the spec model, the
builders, the emitters and the checks all read it (docs/architecture.md, "Layers").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from platformgen.naming import CONTENT_HASH_SUFFIX, MAX_NAME

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

ArgoHealth = Literal["built-in", "custom", "none"]
"""How Argo CD judges a kind's health (Argo CD v3.5.1):
- `built-in`: Argo CD does, with gitops-engine's Go checks (Deployment, Job, Service, PVC,
  HorizontalPodAutoscaler, ...) or a Lua check it ships in `resource_customizations/`
  (batch/CronJob, policy/PodDisruptionBudget, serving.kserve.io/InferenceService);
- `custom`: its status tells whether it worked, but Argo CD has no check: without one of ours
  (a Lua `resource.customizations` health check, issue 22) a failed object never turns its
  app Degraded;
- `none`: nothing to judge (configuration, a template, no status a controller reports on):
  Argo CD gives it no health, and it does not count in its app's."""


@dataclass(frozen=True)
class KindTraits:
    """One kind, as the generator sees it."""

    api_version: str | None = None
    """The apiVersion of its objects (None: a component kind rendered as another kind's
    object, see `object_kind`)."""
    sync_wave: int = 0
    """Its Argo CD sync wave (emit/argocd/__init__.py explains the order)."""
    prunable: bool = True
    """`platformgen diff` searches the cluster for leftovers of this kind, even when the
    current render has none of it (the last CronJob removed from the spec, say)."""
    workload: bool = False
    """Runs a component's container: a value of `components.<name>.kind`."""
    builders: tuple[str, ...] = ()
    """For a workload kind, the builders of its objects, `module:function`, in order (each a
    ComponentView -> Manifest | None). Other kinds' builders run for every component
    (builders.COMPONENT_BUILDERS)."""
    batch: bool = False
    """Its pods run as batch/v1 Jobs named `<component>(-[0-9]+)?` (a content hash, or the
    CronJob's scheduled minute): alerted on by JobFailed."""
    long_running: bool = False
    """Serves until stopped: gets a Service for its ports, restart alerts and a readiness
    probe."""
    name_limit: tuple[int, str] | None = None
    """The longest component name this kind allows, and why (None: MAX_NAME)."""
    spec_fields: frozenset[str] = frozenset()
    """Kind-specific Component fields (YAML names) that apply to this kind and no other."""
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
    health: ArgoHealth = field(kw_only=True)
    """How Argo CD judges its health (see ArgoHealth): required, so a new kind says it."""


_JOB_NAME = (MAX_NAME - CONTENT_HASH_SUFFIX, "a Job is named <name>-<10-digit content hash>")


def _workload(api_version: str | None, *builders: str, **traits: Any) -> KindTraits:
    """A workload kind's row: its objects come last (sync wave 1), built by `builders`
    (`<module in platformgen/builders>:<function>`)."""
    paths = tuple(f"platformgen.builders.{builder}" for builder in builders)
    return KindTraits(api_version=api_version, sync_wave=1, workload=True, builders=paths, **traits)


KINDS: Mapping[str, KindTraits] = {
    # Workload kinds, in the order the spec lists them.
    "Deployment": _workload(
        "apps/v1",
        "deployment:build_deployment",
        long_running=True,
        spec_fields=frozenset({"pipeline"}),
        tunables=frozenset({"replicas", "autoscaling", "disruptionBudget", "topologySpread"}),
        health="built-in",
    ),
    "Job": _workload(
        "batch/v1",
        "job:build_job",
        batch=True,
        name_limit=_JOB_NAME,
        spec_fields=frozenset({"pipeline"}),
        content_named=True,
        health="built-in",
    ),
    "CronJob": _workload(
        "batch/v1",
        "cron_job:build_cron_job",
        batch=True,
        name_limit=(52, "the CronJob controller appends an 11-character suffix to its Job names"),
        spec_fields=frozenset({"schedule"}),
        tunables=frozenset({"suspend"}),
        fields={"suspend": ("spec", "suspend")},
        health="built-in",
    ),
    "RecurringRun": _workload(
        None,  # rendered as the Job that applies it
        "job:build_job",
        batch=True,
        name_limit=(_JOB_NAME[0], "its Job is named <name>-<10-digit content hash>"),
        spec_fields=frozenset({"schedule", "pipeline"}),
        object_kind="Job",
        content_named=True,
        tunables=frozenset({"suspend"}),
        health="built-in",
    ),
    "InferenceService": _workload(
        "serving.kserve.io/v1beta1",
        "inference_service:build_inference_service",
        long_running=True,
        spec_fields=frozenset({"deploymentMode", "payloadLogger"}),
        pods_created_by="KServe creates these pods from the InferenceService",
        tunables=frozenset({"replicas", "disruptionBudget", "model", "canary"}),
        health="built-in",
    ),
    "Experiment": _workload(
        "kubeflow.org/v1beta1",
        "experiment:build_experiment",
        name_limit=(40, "Katib limits Experiment names to 40 characters"),
        spec_fields=frozenset({"tuning"}),
        pods_created_by="Katib creates these pods for each trial of the Experiment",
        health="custom",
    ),
    "TrainJob": _workload(
        "trainer.kubeflow.org/v1alpha1",
        "train_job:build_work_volume",
        "train_job:build_training_runtime",
        "train_job:build_train_job",
        spec_fields=frozenset({"distributed"}),
        pods_created_by="Kubeflow Trainer creates these pods (through a JobSet) from the TrainJob",
        health="custom",
    ),
    "SparkApplication": _workload(
        "sparkoperator.k8s.io/v1beta2",
        "spark_application:build_work_volume",
        "spark_application:build_driver_roles",
        "spark_application:build_spark_network_policies",
        "spark_application:build_spark_application",
        spec_fields=frozenset({"spark"}),
        pods_created_by=(
            "the Spark Operator creates the driver pod from the SparkApplication, and the "
            "driver its executor pods"
        ),
        health="custom",
    ),
    # Every other kind the builders render.
    "Namespace": KindTraits(api_version="v1", sync_wave=-3, health="none"),
    "ServiceAccount": KindTraits(api_version="v1", sync_wave=-2, health="none"),
    "Role": KindTraits(api_version="rbac.authorization.k8s.io/v1", sync_wave=-2, health="none"),
    "RoleBinding": KindTraits(
        api_version="rbac.authorization.k8s.io/v1", sync_wave=-2, health="none"
    ),
    "ClusterRole": KindTraits(
        api_version="rbac.authorization.k8s.io/v1", sync_wave=-2, health="none"
    ),
    "ConfigMap": KindTraits(api_version="v1", sync_wave=-2, health="none"),
    "NetworkPolicy": KindTraits(api_version="networking.k8s.io/v1", sync_wave=-2, health="none"),
    "ResourceQuota": KindTraits(api_version="v1", sync_wave=-2, health="none"),
    "LimitRange": KindTraits(api_version="v1", sync_wave=-2, health="none"),
    "PersistentVolumeClaim": KindTraits(api_version="v1", sync_wave=1, health="built-in"),
    "Service": KindTraits(api_version="v1", sync_wave=-1, health="built-in"),
    "ServiceMonitor": KindTraits(
        api_version="monitoring.coreos.com/v1", sync_wave=0, health="none"
    ),
    "PrometheusRule": KindTraits(
        api_version="monitoring.coreos.com/v1", sync_wave=0, health="none"
    ),
    "AlertmanagerConfig": KindTraits(
        api_version="monitoring.coreos.com/v1alpha1", sync_wave=0, health="none"
    ),
    "Pipeline": KindTraits(
        api_version="pipelines.kubeflow.org/v2beta1", sync_wave=0, health="none"
    ),
    "PipelineVersion": KindTraits(
        api_version="pipelines.kubeflow.org/v2beta1",
        sync_wave=0,
        content_named=True,
        health="custom",
    ),
    "TrainingRuntime": KindTraits(
        api_version="trainer.kubeflow.org/v1alpha1", sync_wave=0, health="none"
    ),
    "HorizontalPodAutoscaler": KindTraits(
        api_version="autoscaling/v2", sync_wave=1, health="built-in"
    ),
    "PodDisruptionBudget": KindTraits(api_version="policy/v1", sync_wave=1, health="built-in"),
}
"""The kinds: workload kinds first (their order is the order the spec's error message lists
them in), then every kind of object the builders render."""


def traits(kind: str) -> KindTraits:
    """The row of `kind`. A kind without a row is a generator bug (a builder renders a kind
    nobody declared): refused rather than guessed."""
    found = KINDS.get(kind)
    if found is None:
        raise KeyError(f"kind {kind!r} has no row in platformgen/kinds.py KINDS")
    return found


WORKLOAD_KINDS: tuple[str, ...] = tuple(kind for kind, t in KINDS.items() if t.workload)
"""The values of `components.<name>.kind` (the spec model's literal)."""

SYNC_WAVES: Mapping[str, int] = {
    kind: t.sync_wave for kind, t in KINDS.items() if t.api_version is not None
}
"""Sync wave of every kind the platform renders."""

PRUNABLE_KINDS: tuple[tuple[str, str], ...] = tuple(
    sorted((t.api_version, kind) for kind, t in KINDS.items() if t.api_version and t.prunable)
)
"""(apiVersion, kind) that live diff searches for leftovers."""

NAME_LIMITS: Mapping[str, tuple[int, str]] = {
    kind: t.name_limit for kind, t in KINDS.items() if t.name_limit is not None
}
"""Component kind -> (the longest name it allows, why), where it is below MAX_NAME."""

HEALTH_CHECKS_NEEDED: tuple[tuple[str, str], ...] = tuple(
    sorted(
        (t.api_version, kind) for kind, t in KINDS.items() if t.api_version and t.health == "custom"
    )
)
"""(apiVersion, kind) whose health Argo CD judges only with a Lua check of ours."""


@dataclass(frozen=True)
class Controller:
    """A controller the platform integrates with, as the security rules see it."""

    namespaces: tuple[str, ...]
    """Where its upstream install runs: no platform namespace or tenant may take one."""
    pod_resources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """API group -> resources whose objects it turns into pods that run as a service account
    the object names, or the templates those pods are made from (a WorkflowTemplate, a
    TrainingRuntime, a ServingRuntime): writing one is writing pods (spec.rbac)."""


CONTROLLERS: Mapping[str, Controller] = {
    "Argo CD": Controller(("argocd",)),
    "Argo Workflows": Controller(
        ("argo",), {"argoproj.io": ("workflows", "cronworkflows", "workflowtemplates")}
    ),
    "Kubeflow Pipelines": Controller(
        ("kubeflow",), {"pipelines.kubeflow.org": ("runs", "jobs", "recurringruns")}
    ),
    "Katib": Controller(("kubeflow",), {"kubeflow.org": ("experiments", "trials")}),
    "the Kubeflow Training Operator": Controller(
        ("kubeflow",),
        {
            "kubeflow.org": (
                "pytorchjobs",
                "tfjobs",
                "mpijobs",
                "xgboostjobs",
                "paddlejobs",
                "jaxjobs",
            )
        },
    ),
    "Kubeflow Trainer": Controller(
        ("kubeflow-system",), {"trainer.kubeflow.org": ("trainjobs", "trainingruntimes")}
    ),
    "JobSet": Controller(("jobset-system",), {"jobset.x-k8s.io": ("jobsets",)}),
    "KServe": Controller(
        ("kserve",),
        {
            "serving.kserve.io": (
                "inferenceservices",
                "inferencegraphs",
                "llminferenceservices",
                "servingruntimes",
            )
        },
    ),
    "Knative Serving": Controller(
        ("knative-serving",), {"serving.knative.dev": ("services", "configurations")}
    ),
    "Knative Eventing": Controller(
        ("knative-eventing",), {"sources.knative.dev": ("containersources", "apiserversources")}
    ),
    "Istio": Controller(("istio-system", "istio-ingress")),
    "cert-manager": Controller(("cert-manager",)),
    "the Spark Operator": Controller(
        ("spark-operator",),
        {"sparkoperator.k8s.io": ("sparkapplications", "scheduledsparkapplications")},
    ),
    "the Prometheus Operator": Controller(
        ("monitoring",),
        {
            "monitoring.coreos.com": (
                "prometheuses",
                "prometheusagents",
                "alertmanagers",
                "thanosrulers",
            )
        },
    ),
}
"""The controllers the platform's objects rely on (its workload kinds' controllers, KFP's Argo
Workflows, the mesh, certificates, GitOps and monitoring), by name. Their namespaces are
reserved even when no endpoint names them; the kinds they run pods for are escalation like
`create pods` (every workload kind whose `pods_created_by` is set is listed here, which
tests/spec/test_security_rules.py checks)."""


def kinds_with(spec_field: str) -> tuple[str, ...]:
    """The component kinds `spec_field` (a Component field's YAML name) applies to, sorted."""
    return tuple(sorted(kind for kind, t in KINDS.items() if spec_field in t.spec_fields))


def tunables(kind: str) -> frozenset[str]:
    """Every ComponentOverride field an environment may set for a component of `kind`
    (nothing, for a kind that is not a workload)."""
    kind_traits = KINDS.get(kind)
    if kind_traits is None or not kind_traits.workload:
        return frozenset()
    return COMMON_TUNABLES | kind_traits.tunables


def merges_lists_by_key(api_version: str) -> bool:
    """How an environment's list reaches the object: built-in kinds get strategic merge (lists
    merged by name); custom resources get JSON merge patch semantics from kustomize, where a
    list in a patch replaces the whole list."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group in BUILT_IN_GROUPS


BUILT_IN_GROUPS = frozenset(
    f"{name}.k8s.io"
    for name in (
        "admissionregistration",
        "apiextensions",
        "apiregistration",
        "authentication",
        "authorization",
        "certificates",
        "coordination",
        "discovery",
        "events",
        "flowcontrol.apiserver",
        "internal.apiserver",
        "networking",
        "node",
        "rbac.authorization",
        "resource",
        "scheduling",
        "storage",
        "storagemigration",
    )
)
"""The built-in API groups with a dot (the others, apps, batch, policy..., have none): a
custom resource's group may end in .k8s.io too (sparkoperator.k8s.io), so a suffix is no test."""
