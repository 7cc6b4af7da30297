"""Argo CD emitter: `argocd/`, the AppProject and one ApplicationSet per environment.

    argocd/app-project.yaml                the AppProject: only `gitops.repoURL`, only the
                                           environments' clusters and the platform namespaces,
                                           only the kinds the platform renders
    argocd/<env>/application-set.yaml      one Application per group of `overlays/<env>/`
                                           (the platform folder, each component, each pipeline),
                                           or with `gitops.source: helm` one Application of the
                                           chart with `values-<env>.yaml`
    argocd/sync-waves/                     a kustomize Component that annotates every object
                                           with its sync wave; the Applications add it through
                                           `source.kustomize.components`, so `overlays/` stays
                                           exactly what `kustomize build | kubectl apply` users get

Sync waves (applied in order inside each Application; Argo CD waits for a wave to be healthy
before the next, and not for the last one):

    -3  Namespace
    -2  RBAC and config: ServiceAccount, Role, RoleBinding, ConfigMap, and NetworkPolicy, so no pod
        ever runs before its default-deny and allows
    -1  Service
     0  custom resources that only need the objects above: ServiceMonitor (selects the Service),
        PrometheusRule, Pipeline and PipelineVersion (read the ConfigMap)
     1  workloads and what acts on them: Deployment, Job, CronJob, InferenceService and
        Experiment (custom resources that run pods with the ServiceAccount and ConfigMap),
        HorizontalPodAutoscaler and PodDisruptionBudget (select the workload's pods)

Workloads are the last wave on purpose: a wave that is not healthy blocks the next one, and a
workload is healthy only when its pods run; nothing in the platform needs a running pod first.

    argocd/argocd-cm.yaml                  the Lua health checks of the kinds Argo CD cannot
                                           judge (health_checks.py): apply it server-side

Ordered delivery across Applications (`gitops.clusters.<env>.progressive`): the ApplicationSet's
RollingSync strategy syncs each new commit in steps, the next step once every Application of the
one before is Healthy; each Application carries its step as the label `platformgen.io/step`:

    platform        the group with the Namespaces (RBAC, quotas, default-deny policies)
    configuration   groups without a workload: pipelines (Pipeline, PipelineVersion, ConfigMap)
    workloads       groups with a workload kind (kinds.py `workload`): the components

So no component Application fails for a missing Namespace and is retried. Argo CD turns
automated sync off on the Applications of a RollingSync ApplicationSet (the ApplicationSet
controller starts their syncs, with the template's `automated.prune`), so a progressive
environment has no selfHeal: a manual edit there is reported OutOfSync until the next commit.
Without `progressive`, `autoSync` syncs each Application on its own, with prune and selfHeal, and
`retry` covers a component synced before the platform's Namespaces exist.

Diff: every Application is compared with Server-Side Diff (the annotation
`argocd.argoproj.io/compare-options: ServerSideDiff=true`): Argo CD asks the API server for a
dry-run server-side apply of the desired object and compares that with the live object, so
defaults and mutating admission webhooks (KFP's PipelineVersion webhook adds two labels and an
ownerReference to the Pipeline) are in both sides and never show as a difference. No
`ignoreDifferences` is rendered: no rendered field is owned by a controller after apply (a
Deployment with an autoscaler is rendered without `replicas`; a PVC's `volumeName`, written by
the binder, is not in the desired object, so the dry-run apply keeps it). tests/e2e/
test_argocd_day2.py proves it with a mutating webhook that adds what KFP's adds.

Server-side apply: `ServerSideApply=true` is set in each generated Application's
`syncPolicy.syncOptions`, never on an Application that manages other Applications:
- argoproj/argo-cd#13320: sync waves between child Applications are ignored when the *parent*
  (app-of-apps) Application uses server-side apply, while server-side apply on the child
  Applications themselves works. Our Applications are created by an ApplicationSet, so there is
  no parent Application; if you wrap `argocd/` in an app-of-apps, leave ServerSideApply off it.
- argoproj/argo-cd#13667 (waves ignored with server-side apply): the cause, a dry run that
  applied objects for real under server-side apply, was fixed in gitops-engine
  (argoproj/gitops-engine#699, Argo CD 2.14.x, argoproj/argo-cd#21858). The pinned v3.5.1's
  gitops-engine has it (`shouldUseServerSideApply` returns false for every dry run), and the e2e
  asserts the waves from the live objects' creation times (tests/e2e/test_argocd_day2.py).
"""

from __future__ import annotations

from typing import Any

from platformgen.build import PlatformBuild
from platformgen.emit.argocd.health_checks import build_argocd_cm
from platformgen.kinds import KINDS, traits
from platformgen.naming import MANAGED_BY, MANAGED_BY_LABEL, PART_OF, Manifest
from platformgen.serialize import to_yaml
from platformgen.spec.model import GitopsCluster, PlatformSpec

ARGOCD_API = "argoproj.io/v1alpha1"
ROOT = "argocd"
SYNC_WAVES_FOLDER = f"{ROOT}/sync-waves"
SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
"""Cascading deletion of an Application's objects: never on the generated Applications (the
ApplicationSet's preserveResourcesOnDeletion); `argocd app delete --cascade` adds it."""
KUSTOMIZE_COMPONENT = {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component"}

SYNC_OPTIONS = ("ServerSideApply=true",)
"""Each Application's sync options (server-side apply: see the module docstring)."""
COMPARE_OPTIONS_ANNOTATION = "argocd.argoproj.io/compare-options"
COMPARE_OPTIONS = "ServerSideDiff=true"
"""Each Application's compare options (Server-Side Diff: see the module docstring)."""
STEP_LABEL = "platformgen.io/step"
STEPS = ("platform", "configuration", "workloads")
"""RollingSync steps, in order (see the module docstring)."""

RETRY = {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
"""Retry a failed sync: without `progressive`, a component's Application may sync before the
platform Application has created its Namespace (Applications sync independently)."""


def _labels(spec: PlatformSpec) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, PART_OF: spec.platform.part_of}


def _cluster(spec: PlatformSpec, environment: str) -> GitopsCluster:
    assert spec.gitops is not None
    return spec.gitops.clusters.get(environment, GitopsCluster())


def _group_key(m: Manifest) -> tuple[str, str]:
    group = m["apiVersion"].rpartition("/")[0]
    return (group, m["kind"])


Groups = dict[str, list[Manifest]]
"""An environment's objects by group (build_platform): one Application each."""


def _objects(groups_by_env: dict[str, Groups]) -> list[Manifest]:
    return [m for groups in groups_by_env.values() for objects in groups.values() for m in objects]


def build_app_project(spec: PlatformSpec, groups_by_env: dict[str, Groups]) -> Manifest:
    """The AppProject every Application belongs to: one repository, the environments'
    clusters and the namespaces objects are rendered into, and only the kinds the platform
    renders."""
    assert spec.gitops is not None
    objects = _objects(groups_by_env)
    # Cluster-scoped objects by name: the project may create these Namespaces and tenant
    # roles, never another (kube-system, say) even though it is a Namespace too.
    cluster_objects = sorted(
        {
            (*_group_key(m), m["metadata"]["name"])
            for m in objects
            if "namespace" not in m["metadata"]
        }
    )
    namespaced_kinds = sorted({_group_key(m) for m in objects if "namespace" in m["metadata"]})
    servers = sorted({_cluster(spec, env).server for env in spec.environments})
    # Every namespace an object is rendered into (platform namespaces and tenants' alike).
    namespaces = sorted(
        {m["metadata"]["namespace"] for m in objects if "namespace" in m["metadata"]}
        | set(spec.namespaces)
    )
    return {
        "apiVersion": ARGOCD_API,
        "kind": "AppProject",
        "metadata": {
            "name": spec.platform.name,
            "namespace": spec.gitops.namespace,
            "labels": _labels(spec),
        },
        "spec": {
            "description": f"The {spec.platform.name} ML platform, rendered from platform.yaml",
            "sourceRepos": [spec.gitops.repo_url],
            "destinations": [
                {"server": server, "namespace": namespace}
                for server in servers
                for namespace in namespaces
            ],
            "clusterResourceWhitelist": [
                {"group": g, "kind": k, "name": n} for g, k, n in cluster_objects
            ],
            "namespaceResourceWhitelist": [{"group": g, "kind": k} for g, k in namespaced_kinds],
            # Objects in the platform's namespaces that no Application manages (a tenant's
            # own workloads and Secrets) show as warnings; Argo CD never deletes them.
            "orphanedResources": {"warn": True},
        },
    }


def step(objects: list[Manifest]) -> str:
    """The RollingSync step of a group's Application (STEPS), from its objects' kinds."""
    kinds = {m["kind"] for m in objects}
    if "Namespace" in kinds:
        return STEPS[0]
    if any(KINDS[kind].workload for kind in kinds):
        return STEPS[2]
    return STEPS[1]


def _elements(spec: PlatformSpec, environment: str, groups: Groups) -> list[dict[str, str]]:
    """One list-generator element per Application: its name suffix, source path, default
    namespace (every namespaced object names its own namespace; this one only has to be a
    destination the AppProject allows) and RollingSync step."""
    assert spec.gitops is not None
    if spec.gitops.source == "helm":
        return [
            {
                "group": "chart",
                "path": f"charts/{spec.platform.name}",
                "namespace": sorted(spec.namespaces)[0],
                "step": STEPS[0],
            }
        ]
    elements = []
    for group, objects in groups.items():
        namespaces = sorted(
            {m["metadata"]["namespace"] for m in objects if "namespace" in m["metadata"]}
        )
        elements.append(
            {
                "group": group,
                "path": f"overlays/{environment}/{group}",
                "namespace": (namespaces or sorted(spec.namespaces))[0],
                "step": step(objects),
            }
        )
    return elements


def build_application_set(spec: PlatformSpec, environment: str, groups: Groups) -> Manifest:
    """The Applications of one environment, from a list generator over its groups."""
    assert spec.gitops is not None
    gitops = spec.gitops
    cluster = _cluster(spec, environment)
    source: dict[str, Any] = {
        "repoURL": gitops.repo_url,
        "targetRevision": gitops.target_revision,
        "path": "{{.path}}",
    }
    if gitops.source == "helm":
        source["helm"] = {
            "releaseName": spec.platform.name,
            "valueFiles": [f"values-{environment}.yaml"],
        }
    else:
        # Relative to the Application's path, overlays/<env>/<group>.
        source["kustomize"] = {"components": [f"../../../{SYNC_WAVES_FOLDER}"]}
    sync_policy: dict[str, Any] = {"syncOptions": list(SYNC_OPTIONS), "retry": RETRY}
    # Deleting the ApplicationSet (or an Application) leaves the deployed objects: the
    # controller adds no resources finalizer to the Applications with preserve set.
    if cluster.progressive:
        # RollingSync reads prune from here, then turns automated sync off on the Application.
        sync_policy["automated"] = {"prune": True}
    elif cluster.auto_sync:
        sync_policy["automated"] = {"prune": True, "selfHeal": True}
    elements = _elements(spec, environment, groups)
    name = f"{spec.platform.name}-{environment}"
    strategy: dict[str, Any] = {}
    if cluster.progressive and len(elements) > 1:
        present = {e["step"] for e in elements}
        strategy["strategy"] = {
            "type": "RollingSync",
            "rollingSync": {
                "steps": [
                    {"matchExpressions": [{"key": STEP_LABEL, "operator": "In", "values": [each]}]}
                    for each in STEPS
                    if each in present
                ]
            },
        }
    return {
        "apiVersion": ARGOCD_API,
        "kind": "ApplicationSet",
        "metadata": {"name": name, "namespace": gitops.namespace, "labels": _labels(spec)},
        "spec": {
            "goTemplate": True,
            "goTemplateOptions": ["missingkey=error"],
            "syncPolicy": {"preserveResourcesOnDeletion": True},
            **strategy,
            "generators": [{"list": {"elements": elements}}],
            "template": {
                "metadata": {
                    "name": f"{name}-{{{{.group}}}}",
                    "labels": {
                        **_labels(spec),
                        "platformgen.io/environment": environment,
                        STEP_LABEL: "{{.step}}",
                    },
                    "annotations": {COMPARE_OPTIONS_ANNOTATION: COMPARE_OPTIONS},
                },
                "spec": {
                    "project": spec.platform.name,
                    "source": source,
                    "destination": {"server": cluster.server, "namespace": "{{.namespace}}"},
                    "syncPolicy": sync_policy,
                },
            },
        },
    }


def emit_sync_waves(kinds: set[str]) -> dict[str, str]:
    """The kustomize Component that annotates each object with its kind's sync wave."""
    waves = {kind: traits(kind).sync_wave for kind in kinds}
    files: dict[str, str] = {}
    patches = []
    for wave in sorted(set(waves.values())):
        path = f"wave-minus-{-wave}.yaml" if wave < 0 else f"wave-{wave}.yaml"
        # The target selects the objects; kustomize gives the patch each target's kind and name.
        files[f"{SYNC_WAVES_FOLDER}/{path}"] = to_yaml(
            {
                "apiVersion": "v1",
                "kind": "SyncWave",
                "metadata": {
                    "name": "any",
                    "annotations": {SYNC_WAVE_ANNOTATION: str(wave)},
                },
            }
        )
        patches += [
            {"path": path, "target": {"kind": kind}}
            for kind in sorted(kinds)
            if waves[kind] == wave
        ]
    files[f"{SYNC_WAVES_FOLDER}/kustomization.yaml"] = to_yaml(
        {**KUSTOMIZE_COMPONENT, "patches": patches}
    )
    return files


def emit_argocd(built: PlatformBuild) -> dict[str, str]:
    """Every file under `argocd/`; nothing when the spec has no `gitops` section."""
    spec = built.spec
    if spec.gitops is None:
        return {}
    groups_by_env = {env: dict(b.groups) for env, b in built.environments.items()}
    files = {f"{ROOT}/app-project.yaml": to_yaml(build_app_project(spec, groups_by_env))}
    for environment, groups in groups_by_env.items():
        files[f"{ROOT}/{environment}/application-set.yaml"] = to_yaml(
            build_application_set(spec, environment, groups)
        )
    files.update(emit_sync_waves({m["kind"] for m in _objects(groups_by_env)}))
    files[f"{ROOT}/argocd-cm.yaml"] = to_yaml(build_argocd_cm(spec.gitops.namespace))
    return files
