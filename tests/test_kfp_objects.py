"""The pipeline IR inside KFP v2beta1 objects is checked against KFP's protobuf definitions
(kubeconform checks the objects themselves against the vendored upstream CRDs)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from platformgen.checks.kfp_objects import check_kfp_object

from support import ROOT

COMPILED = ROOT / "pipelines" / "compiled" / "mlp-training.k8s.yaml"


def compiled() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(COMPILED.read_text()) if d}


def test_compiled_pipeline_objects_are_valid() -> None:
    objects = compiled()
    assert set(objects) == {"Pipeline", "PipelineVersion"}
    for document in objects.values():
        assert check_kfp_object(document) == []


@pytest.mark.parametrize(
    ("kind", "mutate", "expected"),
    [
        ("PipelineVersion", lambda d: d["spec"]["pipelineSpec"].update(bogus=1), "bogus"),
        ("PipelineVersion", lambda d: d["spec"].pop("pipelineSpec"), "pipelineSpec is required"),
        (
            "PipelineVersion",
            lambda d: d["spec"]["pipelineSpec"]["root"].update(dag="not-a-dag"),
            "spec.pipelineSpec",
        ),
        ("Pipeline", lambda d: d.update(kind="Pipelines"), "unknown kind"),
    ],
)
def test_broken_objects_are_caught(kind: str, mutate: Any, expected: str) -> None:
    document = copy.deepcopy(compiled()[kind])
    mutate(document)
    problems = check_kfp_object(document)
    assert any(expected in p for p in problems), problems


def test_pipeline_name_is_optional_as_upstream() -> None:
    """The stand-in CRD required spec.pipelineName; upstream requires only spec.pipelineSpec."""
    document = copy.deepcopy(compiled()["PipelineVersion"])
    document["spec"].pop("pipelineName")
    assert check_kfp_object(document) == []
