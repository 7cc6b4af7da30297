"""Katib Experiment (kubeflow.org/v1beta1): tune a component over the spec's search space.

Katib's CRD has no structural schema: what Katib accepts is checked by its own validating
webhook, run by tests/e2e/test_controllers.py on the rendered Experiment.
"""

from __future__ import annotations

from typing import Any

from platformgen.builders.job import FINISHED_JOB_TTL_SECONDS
from platformgen.builders.pod import (
    container,
    pod_annotations,
    pod_labels,
    pod_spec,
    workload_metadata,
)
from platformgen.naming import Manifest
from platformgen.resolve import ComponentView
from platformgen.spec.model import SearchParameter

PRIMARY_CONTAINER = "training-container"
JOB_COMPLETE = 'status.conditions.#(type=="Complete")#|#(status=="True")#'
"""Katib's GJSON success condition for a batch/v1 Job trial (its default for Jobs)."""
JOB_FAILED = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
"""Katib's GJSON failure condition for a batch/v1 Job trial."""


def trial_parameter_name(option: str) -> str:
    """learning-rate -> learningRate (the name in ${trialParameters.<name>})."""
    head, *rest = option.split("-")
    return head + "".join(part.capitalize() for part in rest)


def _number(value: float, kind: str) -> str:
    return str(int(value)) if kind == "int" else repr(float(value))


def _parameter(p: SearchParameter) -> dict[str, Any]:
    if p.type == "categorical":
        space: dict[str, Any] = {"list": list(p.values)}
    else:
        assert p.min is not None and p.max is not None  # guaranteed by spec.references
        space = {"max": _number(p.max, p.type), "min": _number(p.min, p.type)}
        if p.distribution is not None:
            space["distribution"] = p.distribution
    return {"feasibleSpace": space, "name": p.name, "parameterType": p.type}


def build_experiment(view: ComponentView) -> Manifest | None:
    c, t = view.component, view.component.tuning
    if c.kind != "Experiment" or t is None:
        return None
    trial = container(view, name=PRIMARY_CONTAINER)
    trial["args"] = [
        *c.args,
        *(f"--{p.name}=${{trialParameters.{trial_parameter_name(p.name)}}}" for p in t.parameters),
    ]
    spec = pod_spec(view, restart_policy="Never")
    spec["containers"] = [trial]
    objective: dict[str, Any] = {
        "objectiveMetricName": t.objective.metric,
        "type": t.objective.type,
    }
    if t.objective.goal is not None:
        objective["goal"] = t.objective.goal
    if t.objective.additional_metrics:
        objective["additionalMetricNames"] = list(t.objective.additional_metrics)
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": workload_metadata(view),
        "spec": {
            "algorithm": {"algorithmName": t.algorithm},
            "maxFailedTrialCount": t.max_failed_trials,
            "maxTrialCount": t.max_trials,
            "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
            "objective": objective,
            "parallelTrialCount": t.parallel_trials,
            "parameters": [_parameter(p) for p in t.parameters],
            "trialTemplate": {
                "failureCondition": JOB_FAILED,
                "primaryContainerName": PRIMARY_CONTAINER,
                "retain": False,
                "successCondition": JOB_COMPLETE,
                "trialParameters": [
                    {
                        "description": f"--{p.name}",
                        "name": trial_parameter_name(p.name),
                        "reference": p.name,
                    }
                    for p in t.parameters
                ],
                "trialSpec": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {
                        "backoffLimit": c.backoff_limit,
                        "template": {
                            "metadata": {
                                "annotations": pod_annotations(view),
                                "labels": pod_labels(view),
                            },
                            "spec": spec,
                        },
                        "ttlSecondsAfterFinished": FINISHED_JOB_TTL_SECONDS,
                    },
                },
            },
        },
    }
