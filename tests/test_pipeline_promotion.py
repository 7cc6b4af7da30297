"""The spec's `promotion` settings and the recorded step images reach the PipelineVersion each
environment deploys (issue 21: every run gates the same way; lineage records digests)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from platformgen.builders.pipeline import build_pipeline
from platformgen.errors import SpecError
from platformgen.spec.load import load_spec, parse_spec

from support import ROOT

COMPILED = ROOT / "pipelines" / "compiled" / "mlp-training.k8s.yaml"


def _version(text: str, environment: str) -> dict[str, Any]:
    spec = parse_spec(text)
    documents = [d for d in yaml.safe_load_all(COMPILED.read_text()) if d]
    built = build_pipeline(spec, "mlp-training", documents, environment)
    (version,) = [m for m in built if m["kind"] == "PipelineVersion"]
    return version


def _recorded_images(pipeline_spec: dict[str, Any]) -> dict[str, str]:
    for component in [pipeline_spec["root"], *pipeline_spec["components"].values()]:
        for task in (component.get("dag") or {}).get("tasks", {}).values():
            images = task.get("inputs", {}).get("parameters", {}).get("images")
            if images:
                return dict(json.loads(images["runtimeValue"]["constant"]))
    raise AssertionError("no task records images")


def test_prod_records_the_digests_its_steps_run() -> None:
    version = _version((ROOT / "platform.yaml").read_text(), "prod")
    pipeline_spec = version["spec"]["pipelineSpec"]
    executors = pipeline_spec["deploymentSpec"]["executors"]
    running = {name.removeprefix("exec-"): e["container"]["image"] for name, e in executors.items()}
    recorded = _recorded_images(pipeline_spec)
    assert all("@sha256:" in image for image in recorded.values())
    for step, image in recorded.items():
        assert running[step] == image


def test_promotion_settings_are_the_pipeline_defaults() -> None:
    text = (
        (ROOT / "platform.yaml")
        .read_text()
        .replace(
            "promotion: {alpha: 0.05, minEffect: 0.02}",
            "promotion: {alpha: 0.01, minEffect: 0.05, schemaChange: true, idColumn: row_id}",
        )
    )
    parameters = _version(text, "dev")["spec"]["pipelineSpec"]["root"]["inputDefinitions"][
        "parameters"
    ]
    assert parameters["alpha"]["defaultValue"] == 0.01
    assert parameters["min_effect"]["defaultValue"] == 0.05
    assert parameters["schema_change"]["defaultValue"] is True
    assert parameters["id_column"]["defaultValue"] == "row_id"


def test_declared_defaults_agree_with_the_pipeline_function() -> None:
    """platform.yaml's promotion block says what the compiled pipeline already defaults to, so
    a local run (`make pipeline`) and a cluster run decide alike."""
    spec = load_spec(ROOT / "platform.yaml")
    promotion = spec.pipelines["mlp-training"].promotion
    assert promotion is not None
    documents = [d for d in yaml.safe_load_all(COMPILED.read_text()) if d]
    (compiled,) = [d for d in documents if d["kind"] == "PipelineVersion"]
    parameters = compiled["spec"]["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    for field, value in promotion.model_dump().items():
        assert parameters[field].get("defaultValue", "") == value, field


def test_bad_promotion_settings_name_the_spec_path() -> None:
    text = (ROOT / "platform.yaml").read_text()
    with pytest.raises(SpecError, match=r"pipelines\.mlp-training\.promotion\.alpha"):
        parse_spec(text.replace("{alpha: 0.05,", "{alpha: 0.7,"))


def test_a_pipeline_without_the_parameter_is_an_error() -> None:
    spec = load_spec(ROOT / "platform.yaml")
    documents = [d for d in yaml.safe_load_all(COMPILED.read_text()) if d]
    for document in documents:
        if document["kind"] == "PipelineVersion":
            root = document["spec"]["pipelineSpec"]["root"]
            del root["inputDefinitions"]["parameters"]["alpha"]
    with pytest.raises(SpecError, match="promotion: the compiled pipeline has no parameter alpha"):
        build_pipeline(spec, "mlp-training", documents, "dev")
