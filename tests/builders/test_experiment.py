"""The Katib Experiment, checked with the rules Katib's validating webhook enforces."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from platformgen.builders import build_platform
from platformgen.builders.experiment import check_experiment
from platformgen.naming import Manifest
from platformgen.spec.load import load_spec

from support import ROOT, SPECS


def experiments(path: Any) -> list[Manifest]:
    spec = load_spec(path)
    return [
        m
        for env in [None, *spec.environments]
        for group in build_platform(spec, env).values()
        for m in group
        if m["kind"] == "Experiment"
    ]


def test_rendered_experiments_pass_the_webhook_rules() -> None:
    found = experiments(ROOT / "platform.yaml")
    assert found
    for experiment in found:
        assert check_experiment(experiment) == []


def test_trial_args_cover_the_search_space() -> None:
    (experiment, *_) = experiments(ROOT / "platform.yaml")
    spec = experiment["spec"]
    container = spec["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0]
    for parameter in spec["parameters"]:
        assert any(
            a.startswith(f"--{parameter['name']}=${{trialParameters.") for a in container["args"]
        )
    assert container["securityContext"]["runAsNonRoot"] is True


def test_learning_rate_is_searched_on_a_log_scale() -> None:
    (experiment, *_) = experiments(ROOT / "platform.yaml")
    spaces = {p["name"]: p["feasibleSpace"] for p in experiment["spec"]["parameters"]}
    assert spaces["learning-rate"]["distribution"] == "logUniform"
    assert "distribution" not in spaces["batch-size"]
    assert check_experiment(experiment) == []


def _broken(mutate: Any) -> list[str]:
    (experiment, *_) = experiments(ROOT / "platform.yaml")
    broken = copy.deepcopy(experiment)
    mutate(broken)
    return check_experiment(broken)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e["spec"].update(parallelTrialCount=50), "spec.parallelTrialCount"),
        (lambda e: e["spec"].update(maxFailedTrialCount=99), "spec.maxFailedTrialCount"),
        (lambda e: e["metadata"].update(name="x" * 41), "metadata.name"),
        (lambda e: e["spec"]["objective"].update(type="up"), "spec.objective.type"),
        (lambda e: e["spec"]["parameters"][0]["feasibleSpace"].pop("min"), "feasibleSpace.max"),
        (
            lambda e: e["spec"]["parameters"][3]["feasibleSpace"].update(min="1"),
            "spec.parameters[3].feasibleSpace",
        ),
        (
            lambda e: e["spec"]["parameters"][0]["feasibleSpace"].update(distribution="zipf"),
            "spec.parameters[0].feasibleSpace.distribution: distribution: zipf is not supported",
        ),
        (lambda e: e["spec"]["trialTemplate"].pop("successCondition"), "successCondition"),
        (
            lambda e: e["spec"]["trialTemplate"]["trialParameters"][0].update(reference="nope"),
            "does not exist in spec.parameters",
        ),
        (
            lambda e: e["spec"]["trialTemplate"]["trialParameters"].pop(),
            "not found in spec.trialTemplate.trialParameters",
        ),
        (
            lambda e: e["spec"]["trialTemplate"].update(primaryContainerName="main"),
            "primaryContainerName",
        ),
    ],
)
def test_webhook_rules_catch_broken_experiments(mutate: Any, expected: str) -> None:
    problems = _broken(mutate)
    assert any(expected in p for p in problems), problems


def test_full_fixture_has_no_experiment() -> None:
    assert experiments(SPECS / "full.yaml") == []
