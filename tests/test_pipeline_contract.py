"""The pipeline code and platform.yaml agree on step images and the object-store ConfigMap.

The pipeline's images live in `mlp_pipeline.images` because the pipeline-python image compiles
the pipeline in the cluster, where platform.yaml is not present; this test keeps the two equal.
"""

from __future__ import annotations

import pytest
from mlp_pipeline import cluster
from mlp_pipeline.images import STEP_COMPONENT, step_image

from platformgen.builders import build_platform
from platformgen.spec.load import load_pipelines, load_spec

from support import ROOT

SPEC = load_spec(ROOT / "platform.yaml")
PIPELINE = SPEC.pipelines["mlp-training"]


@pytest.mark.parametrize("step", sorted(STEP_COMPONENT))
def test_step_images_come_from_the_spec(step: str) -> None:
    component = STEP_COMPONENT[step]
    assert component in PIPELINE.steps, f"platform.yaml pipelines.mlp-training.steps.{component}"
    assert step_image(step) == f"{PIPELINE.steps[component].image}:{SPEC.defaults.image_tag}"


def test_every_spec_step_is_used_by_the_pipeline() -> None:
    assert set(PIPELINE.steps) == set(STEP_COMPONENT.values())


def test_object_store_config_map_is_rendered_where_runs_execute() -> None:
    groups = build_platform(SPEC, None, load_pipelines(SPEC, ROOT))
    maps = [
        m
        for m in groups["mlp-training"]
        if m["kind"] == "ConfigMap" and m["metadata"]["name"] == cluster.OBJECT_STORE_CONFIG_MAP
    ]
    assert len(maps) == 1
    assert maps[0]["metadata"]["namespace"] == PIPELINE.namespace
    assert set(maps[0]["data"]) == set(cluster.OBJECT_STORE_CONFIG_KEYS)
