"""Job for one-shot batch components, named by the content hash of its spec.

A Job's pod template is immutable and a finished Job must never be re-created by a re-sync,
so a Job here is content-addressed: `<component>-<10 digits of the hash of its spec>` (see
naming.content_name), with no TTL. The same spec keeps its name, so re-applying (kubectl or an
Argo CD sync) changes nothing and nothing deletes the Job behind the sync's back; a changed
image, argument or config gives a new Job, and GitOps prune (ApplySet `--prune`, Argo CD
`prune`) deletes the old one. Because the name depends on the environment's image pin, the
Job is rendered whole into each overlay (`overlays/<env>/resources/`), never into base.
"""

from __future__ import annotations

from typing import Any

from platformgen.builders.pod import pod_template, workload_metadata
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
    if view.component.kind != "Job" or view.is_base:
        return None
    spec = job_spec(view)
    for container in spec["template"]["spec"]["containers"]:
        container["image"] = view.resolved_image
    metadata = workload_metadata(view, extra_exceptions=[NO_TTL])
    metadata["name"] = content_name(view.name, spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}
