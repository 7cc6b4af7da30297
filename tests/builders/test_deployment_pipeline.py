"""A Deployment that declares `pipeline` (the drift monitor) is told the PipelineVersion its
environment deploys, as the Jobs are: built from platform.yaml and its compiled pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mlp_common import contracts

from platformgen.builders import build_platform
from platformgen.errors import SpecError
from platformgen.spec.load import load_pipelines, load_spec
from platformgen.spec.references import check_references

ROOT = Path(__file__).resolve().parents[2]
SPEC = load_spec(ROOT / "platform.yaml")
PIPELINES = load_pipelines(SPEC, ROOT)


def _env(environment: str | None) -> dict[str, Any]:
    groups = build_platform(SPEC, environment, PIPELINES)
    (deployment,) = [m for m in groups["drift-monitor"] if m["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def _version(environment: str) -> str:
    groups = build_platform(SPEC, environment, PIPELINES)
    (version,) = [m for m in groups["mlp-training"] if m["kind"] == "PipelineVersion"]
    return str(version["metadata"]["name"])


def _job_version(environment: str) -> str:
    groups = build_platform(SPEC, environment, PIPELINES)
    (job,) = [m for m in groups["retrain"] if m["kind"] == "Job"]
    (arg,) = [
        a
        for a in job["spec"]["template"]["spec"]["containers"][0]["args"]
        if a.startswith("--pipeline-version=")
    ]
    return arg.partition("=")[2]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_deployment_gets_the_version_its_environment_deploys(environment: str) -> None:
    env = _env(environment)
    assert env[contracts.PIPELINE] == "mlp-training"
    assert env[contracts.PIPELINE_NAMESPACE] == SPEC.pipelines["mlp-training"].namespace
    assert env[contracts.PIPELINE_VERSION] == _version(environment)
    assert env[contracts.PIPELINE_VERSION] == _job_version(environment)  # the Jobs' version


def test_versions_differ_per_environment_and_base_names_none() -> None:
    assert _env("dev")[contracts.PIPELINE_VERSION] != _env("prod")[contracts.PIPELINE_VERSION]
    base = _env(None)
    assert contracts.PIPELINE_VERSION not in base
    assert base[contracts.PIPELINE] == "mlp-training"


def test_a_pipeline_without_a_compiled_version_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"components\.drift-monitor\.pipeline"):
        build_platform(SPEC, "dev", {})


def test_the_rendered_settings_are_not_set_by_hand() -> None:
    component = SPEC.components["drift-monitor"]
    broken = SPEC.model_copy(
        update={
            "components": {
                **SPEC.components,
                "drift-monitor": component.model_copy(
                    update={"env": {contracts.PIPELINE_VERSION: "mlp-training-old"}}
                ),
            }
        }
    )
    problems = list(check_references(broken))
    assert (
        f"components.drift-monitor.env.{contracts.PIPELINE_VERSION}",
        "rendered from components.drift-monitor.pipeline; remove it",
    ) in problems
