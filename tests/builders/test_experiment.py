"""The Katib Experiment as rendered (Katib's own webhook judges it: tests/e2e/test_controllers)."""

from __future__ import annotations

from typing import Any

from platformgen.builders import build_platform
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


def test_full_fixture_has_no_experiment() -> None:
    assert experiments(SPECS / "full.yaml") == []
