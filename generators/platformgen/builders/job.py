"""Job for one-shot batch components and RecurringRuns, named by the content hash of its spec.

A Job's pod template is immutable and a finished Job must never be re-created by a re-sync,
so a Job here is content-addressed: `<component>-<10 digits of the hash of its spec>` (see
naming.content_name), with no TTL. The same spec keeps its name, so re-applying (kubectl or an
Argo CD sync) changes nothing and nothing deletes the Job behind the sync's back; a changed
image, argument or config gives a new Job, and GitOps prune (ApplySet `--prune`, Argo CD
`prune`) deletes the old one. Because the name depends on the environment's image pin, the
Job is rendered whole into each overlay (`overlays/<env>/resources/`), never into base.

Kubeflow Pipelines access (`pipeline:` on a Job or RecurringRun). The container gets the names
of the pipeline and of the PipelineVersion this environment deploys (builders.pipeline), so
`mlp-pipeline submit|schedule` acts on exactly the version in git, and these names are part of
the Job's content: a new PipelineVersion (or schedule) is a new Job, which runs once. It
authenticates to the KFP API as KFP's multi-user mode expects: a projected ServiceAccount token
with audience `pipelines.kubeflow.org`, at the path in `KF_PIPELINES_SA_TOKEN_PATH` (what
kfp.Client reads); the Kubernetes API token is not mounted. The KFP API server authorizes each
call with a SubjectAccessReview on `pipelines.kubeflow.org` resources in the pipeline's
namespace, so the component's Role (builders.role) gets exactly the verbs its kind uses.

A RecurringRun's Job runs `mlp-pipeline schedule`, which upserts the KFP recurring run and is
idempotent. It is deliberately a plain GitOps-managed Job like any other, not an Argo CD
`PostSync` hook with a TTL: Argo CD waits for a hook to finish and re-runs it on every sync,
hooks are outside the application's desired state (not listed, not pruned, not diffed by
`platformgen diff`), and ordering is already given by sync waves (PipelineVersion in wave 0,
Jobs in wave 1) plus the CLI waiting for KFP to reconcile the version (`--wait-for-version`).
"""

from __future__ import annotations

from typing import Any

from platformgen.builders.pod import (
    KFP_TOKEN_DIR,
    KFP_TOKEN_FILE,
    KFP_TOKEN_PATH_ENV,
    pod_template,
    workload_metadata,
)
from platformgen.naming import Manifest, content_name
from platformgen.resolve import ComponentView

NO_TTL = (
    "kube-linter",
    "job-ttl-seconds-after-finished",
    "a GitOps-managed Job must outlive every sync: a TTL would delete it and the next sync "
    "would re-create it and run it again; it is content-named and pruned by GitOps instead",
)
FINISHED_JOB_TTL_SECONDS = 86400
"""TTL of the Jobs that controllers create (Katib trials); never on a GitOps-managed Job."""
JOB_KINDS = frozenset({"Job", "RecurringRun"})
"""Component kinds rendered as a content-named batch/v1 Job."""

JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
"""The pod labels that carry a Job's name (the first is its selector): what the apiserver
generates for a Job without `manualSelector`, minus the UID labels a manifest cannot know."""

KFP_WAIT_FOR_VERSION_SECONDS = 600
"""How long the CLI waits for KFP to reconcile a just-applied PipelineVersion."""

KFP_PERMISSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "Job": {
        "pipelines": ("get", "list"),
        "experiments": ("create", "get", "list"),
        "runs": ("create", "get", "list"),
    },
    "RecurringRun": {
        "pipelines": ("get", "list"),
        "experiments": ("create", "get", "list"),
        "jobs": ("create", "delete", "disable", "enable", "get", "list"),
    },
}
"""The KFP resources (as the API server's SubjectAccessReviews name them; recurring runs are
`jobs`) and verbs `mlp-pipeline submit` (Job) and `mlp-pipeline schedule` (RecurringRun) use."""


def deployed_version(view: ComponentView) -> str | None:
    """The PipelineVersion this environment deploys for the component's pipeline (None when
    the build was not given the compiled pipelines: unit tests of other objects)."""
    return view.deployed_version


def kfp_arguments(view: ComponentView) -> list[str]:
    """What the container is told about the pipeline it acts on (and, for a RecurringRun, the
    schedule, and whether this environment disables it)."""
    c = view.component
    assert c.pipeline is not None
    version = deployed_version(view)
    out = [f"--pipeline={c.pipeline}"]
    if version is not None:
        out.append(f"--pipeline-version={version}")
    out += [
        f"--namespace={view.spec.pipelines[c.pipeline].namespace}",
        f"--wait-for-version={KFP_WAIT_FOR_VERSION_SECONDS}",
    ]
    if c.kind == "RecurringRun":
        assert c.schedule is not None
        out += [f"--schedule={c.schedule}", f"--name={view.name}"]
        if view.override.suspend:
            out.append("--disabled")
    return out


def add_kfp_access(view: ComponentView, pod_spec: dict[str, Any]) -> None:
    """Give the pod's containers their pipeline arguments and the token's path (in place); the
    projected token itself is mounted by `pod_spec` (`calls_kfp_api`). The Kubernetes API token
    stays unmounted unless the component declares `rbac` of its own."""
    for container in pod_spec["containers"]:
        container["args"] = [*container.get("args", []), *kfp_arguments(view)]
        container["env"] = sorted(
            [
                *container["env"],
                {"name": KFP_TOKEN_PATH_ENV, "value": f"{KFP_TOKEN_DIR}/{KFP_TOKEN_FILE}"},
            ],
            key=lambda e: str(e["name"]),
        )


def job_spec(view: ComponentView) -> dict[str, Any]:
    """The Job spec shared by Jobs and CronJob job templates (no TTL: a CronJob prunes its
    Jobs by its history limits, and a standalone Job must outlive every sync)."""
    c = view.component
    spec: dict[str, Any] = {
        "backoffLimit": c.backoff_limit,
        "template": pod_template(view, restart_policy="Never"),
    }
    if c.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = c.active_deadline_seconds
    return spec


def build_job(view: ComponentView) -> Manifest | None:
    if view.component.kind not in JOB_KINDS or view.is_base:
        return None
    spec = job_spec(view)
    for container in spec["template"]["spec"]["containers"]:
        container["image"] = view.resolved_image
    if view.component.pipeline is not None and view.environment is not None:
        # (without an environment, e.g. the Helm emitter probing a view, no Job is emitted)
        add_kfp_access(view, spec["template"]["spec"])
    spec["manualSelector"] = True
    metadata = workload_metadata(view, extra_exceptions=[NO_TTL])
    metadata["name"] = content_name(view.name, spec)
    select_own_pods(spec, metadata["name"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def select_own_pods(spec: dict[str, Any], name: str) -> None:
    """Give the Job the selector and pod labels the apiserver would otherwise generate (in
    place), so the live Job holds nothing in its immutable fields that the manifest lacks.

    Without `manualSelector`, the apiserver adds `spec.selector` (`controller-uid: <uid>`) and
    the `controller-uid`/`job-name` pod template labels on create. Helm 3 patches an object its
    current release does not list (the Job `helm.sh/resource-policy: keep` left in place, met
    again by `helm rollback`) with the live object as the three-way merge's baseline
    (pkg/kube/client.go, "using cluster state as baseline"), so its patch deletes whatever the
    manifest lacks, and the apiserver refuses the change to the selector and the pod template
    ("field is immutable"). Here the selector is the Job's own name under the labels Kubernetes
    uses for it (`batch.kubernetes.io/job-name`, and the legacy `job-name` that tools and
    `kubectl get pods -l job-name=...` still read), which is unique in the namespace while the
    Job exists; the Job controller deletes its pods with it (only pods orphaned on purpose,
    `--cascade=orphan`, would be adopted by a Job re-created under that name: the same content,
    so the same run, never a second one). The labels are a function of the
    name, so the name is hashed from the spec without them (it does include `manualSelector`).
    A CronJob's jobTemplate may not set `manualSelector`; it is never rendered there."""
    labels = {label: name for label in JOB_NAME_LABELS}
    spec["selector"] = {"matchLabels": {JOB_NAME_LABELS[0]: name}}
    template_labels = spec["template"]["metadata"]["labels"]
    spec["template"]["metadata"]["labels"] = {**template_labels, **labels}
