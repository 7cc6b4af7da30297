"""CronJob for scheduled batch components (e.g. retraining)."""

from __future__ import annotations

from platformgen.builders.job import job_spec
from platformgen.builders.pod import workload_metadata
from platformgen.naming import Manifest, standard_labels
from platformgen.resolve import ComponentView


def build_cron_job(view: ComponentView) -> Manifest | None:
    c = view.component
    if c.kind != "CronJob" or c.schedule is None:
        return None
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": workload_metadata(view),
        "spec": {
            "concurrencyPolicy": "Forbid",
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": standard_labels(view.spec, view.name, c.role)},
                "spec": job_spec(view),
            },
            "schedule": c.schedule,
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "suspend": bool(view.override.suspend),
            "timeZone": "Etc/UTC",
        },
    }
