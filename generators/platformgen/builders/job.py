"""Job for one-shot batch components."""

from __future__ import annotations

from typing import Any

from platformgen.builders.pod import pod_template
from platformgen.naming import Manifest, metadata
from platformgen.resolve import ComponentView

FINISHED_JOB_TTL_SECONDS = 86400


def job_spec(view: ComponentView) -> dict[str, Any]:
    """The Job spec shared by Jobs and CronJob job templates."""
    c = view.component
    spec: dict[str, Any] = {
        "backoffLimit": c.backoff_limit,
        "template": pod_template(view, restart_policy="Never"),
        "ttlSecondsAfterFinished": FINISHED_JOB_TTL_SECONDS,
    }
    if c.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = c.active_deadline_seconds
    return spec


def build_job(view: ComponentView) -> Manifest | None:
    if view.component.kind != "Job":
        return None
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(view.spec, view.name, view.component.role, view.namespace),
        "spec": job_spec(view),
    }
