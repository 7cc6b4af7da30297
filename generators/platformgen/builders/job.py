"""Job for one-shot batch components."""

from __future__ import annotations

from typing import Any

from platformgen.builders.pod import pod_template, workload_metadata
from platformgen.naming import Manifest
from platformgen.resolve import ComponentView

FINISHED_JOB_TTL_SECONDS = 86400


def job_spec(view: ComponentView, ttl: bool) -> dict[str, Any]:
    """The Job spec shared by Jobs and CronJob job templates.

    Only standalone Jobs get a TTL: a CronJob prunes its Jobs by its history limits, and a TTL
    on its job template would fight them.
    """
    c = view.component
    spec: dict[str, Any] = {
        "backoffLimit": c.backoff_limit,
        "template": pod_template(view, restart_policy="Never"),
    }
    if ttl:
        spec["ttlSecondsAfterFinished"] = FINISHED_JOB_TTL_SECONDS
    if c.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = c.active_deadline_seconds
    return spec


def build_job(view: ComponentView) -> Manifest | None:
    if view.component.kind != "Job":
        return None
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": workload_metadata(view),
        "spec": job_spec(view, ttl=True),
    }
