"""Katib Experiment (kubeflow.org/v1beta1): tune a component over the spec's search space.

Katib's CRD has no structural schema, so `check_experiment` re-implements the rules its
validating webhook enforces (pkg/webhook/v1beta1/experiment/validator) for what we render.
"""

from __future__ import annotations

import json
import re
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


DISTRIBUTIONS = frozenset({"uniform", "logUniform", "normal", "logNormal"})
"""Katib's feasibleSpace.distribution values (experimentsv1beta1.Distribution)."""
TRIAL_PARAMETER = re.compile(r"\$\{trialParameters\..+?\}")
KATIB_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME_LENGTH = 40


def check_experiment(experiment: Manifest) -> list[str]:
    """Why Katib's validating webhook would reject `experiment` (empty when it would admit it).

    Mirrors ValidateExperiment in katib v0.19.0 pkg/webhook/v1beta1/experiment/validator for
    the fields we render: name, trial counts, objective, algorithm, parameters (with
    feasibleSpace.distribution), trial template.
    """
    problems: list[str] = []
    spec = experiment.get("spec", {})
    name = experiment.get("metadata", {}).get("name", "")
    if not KATIB_NAME.match(name) or len(name) > MAX_NAME_LENGTH:
        problems.append(f"metadata.name: {name!r} must match {KATIB_NAME.pattern}, <= 40 chars")
    max_trials = spec.get("maxTrialCount")
    parallel = spec.get("parallelTrialCount")
    failed = spec.get("maxFailedTrialCount")
    if failed is not None and failed < 0:
        problems.append("spec.maxFailedTrialCount: should not be less than 0")
    if max_trials is not None and max_trials <= 0:
        problems.append("spec.maxTrialCount: must be greater than 0")
    if parallel is not None and parallel <= 0:
        problems.append("spec.parallelTrialCount: must be greater than 0")
    if failed is not None and max_trials is not None and failed > max_trials:
        problems.append("spec.maxFailedTrialCount: should be <= spec.maxTrialCount")
    if parallel is not None and max_trials is not None and parallel > max_trials:
        problems.append("spec.parallelTrialCount: should be <= spec.maxTrialCount")
    objective = spec.get("objective") or {}
    if objective.get("type") not in {"maximize", "minimize"}:
        problems.append("spec.objective.type: must be maximize or minimize")
    if not objective.get("objectiveMetricName"):
        problems.append("spec.objective.objectiveMetricName: must be specified")
    if objective.get("objectiveMetricName") in objective.get("additionalMetricNames", []):
        problems.append("spec.objective.additionalMetricNames: must not contain the objective")
    if not (spec.get("algorithm") or {}).get("algorithmName"):
        problems.append("spec.algorithm.algorithmName: must be specified")
    parameters = spec.get("parameters") or []
    if not parameters:
        problems.append("spec: spec.parameters or spec.nasConfig must be specified")
    for i, p in enumerate(parameters):
        kind, space = p.get("parameterType"), p.get("feasibleSpace") or {}
        where = f"spec.parameters[{i}]"
        if kind not in {"int", "double", "categorical", "discrete", ""}:
            problems.append(f"{where}.parameterType: {kind} is not supported")
        distribution = space.get("distribution")
        if distribution and distribution not in DISTRIBUTIONS:
            problems.append(
                f"{where}.feasibleSpace.distribution: distribution: {distribution} is not supported"
            )
        if not space:
            problems.append(f"{where}.feasibleSpace: must be specified")
        elif kind in {"int", "double"}:
            if space.get("list"):
                problems.append(f"{where}.feasibleSpace.list: not supported for {kind}")
            if not space.get("max") or not space.get("min"):
                problems.append(f"{where}.feasibleSpace.max: max and min required for {kind}")
        elif kind in {"categorical", "discrete"}:
            if space.get("max") or space.get("min") or space.get("step"):
                problems.append(f"{where}.feasibleSpace: max, min, step not supported for {kind}")
    problems += _check_trial_template(
        spec.get("trialTemplate"), {p.get("name") for p in parameters}
    )
    collector = ((spec.get("metricsCollectorSpec") or {}).get("collector") or {}).get("kind")
    if collector not in {None, "StdOut", "File", "TfEvent", "PrometheusMetric", "Custom", "None"}:
        problems.append(f"spec.metricsCollectorSpec.collector.kind: {collector} is not supported")
    return problems


def _check_trial_template(template: dict[str, Any] | None, parameters: set[Any]) -> list[str]:
    if not template:
        return ["spec.trialTemplate: must be specified"]
    path = "spec.trialTemplate"
    problems = []
    if not template.get("primaryContainerName"):
        problems.append(f"{path}.primaryContainerName: must be specified")
    if not template.get("successCondition") or not template.get("failureCondition"):
        problems.append(f"{path}: successCondition and failureCondition must be specified")
    trial_parameters = template.get("trialParameters")
    if trial_parameters is None:
        return [*problems, f"{path}.trialParameters: must be specified"]
    trial_spec = template.get("trialSpec")
    if trial_spec is None:
        return [*problems, f"{path}: trialSpec must be specified"]
    text = json.dumps(trial_spec, sort_keys=True)
    names: set[str] = set()
    references: set[str] = set()
    for i, tp in enumerate(trial_parameters):
        tp_name, reference = tp.get("name", ""), tp.get("reference", "")
        where = f"{path}.trialParameters[{i}]"
        if not tp_name or not reference or "{" in tp_name or "}" in tp_name:
            problems.append(f"{where}: name and reference must be specified, without braces")
            continue
        if tp_name in names or reference in references:
            problems.append(f"{where}: name and reference must not be duplicated")
            continue
        names.add(tp_name)
        references.add(reference)
        if parameters and reference not in parameters:
            problems.append(f"{where}.reference: {reference} does not exist in spec.parameters")
        placeholder = f"${{trialParameters.{tp_name}}}"
        if placeholder not in text:
            return [*problems, f"{where}.name: {tp_name} not found in the trial template"]
        text = text.replace(placeholder, "test-value")
    leftover = TRIAL_PARAMETER.findall(text)
    if leftover:
        problems.append(f"{path}: {leftover} not found in spec.trialTemplate.trialParameters")
    meta = trial_spec.get("metadata") or {}
    if meta.get("name") or meta.get("namespace"):
        problems.append(f"{path}: metadata.name and metadata.namespace must be omitted")
    if not trial_spec.get("apiVersion") or not trial_spec.get("kind"):
        problems.append(f"{path}: APIVersion and Kind must be specified")
    containers = (
        trial_spec.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    )
    if template.get("primaryContainerName") not in {c.get("name") for c in containers}:
        problems.append(f"{path}.primaryContainerName: names no container of the trial")
    return problems
