"""The pipeline code and platform.yaml: step images come from the spec when the pipeline is
compiled, and the object-store ConfigMap is rendered where the runs execute.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlp_pipeline import cluster
from mlp_pipeline.images import STEP_COMPONENT, spec_step_images, step_images

from platformgen.builders import build_platform
from platformgen.spec.load import load_pipelines, load_spec

from support import ROOT

SPEC = load_spec(ROOT / "platform.yaml")
PIPELINE = SPEC.pipelines["mlp-training"]


@pytest.mark.parametrize("step", sorted(STEP_COMPONENT))
def test_step_images_come_from_the_spec(step: str) -> None:
    component = STEP_COMPONENT[step]
    expected = f"{PIPELINE.steps[component].image}:{SPEC.defaults.image_tag}"
    assert spec_step_images("mlp-training")[step] == expected


def test_every_spec_step_is_used_by_the_pipeline() -> None:
    assert set(PIPELINE.steps) == set(STEP_COMPONENT.values())


def test_a_step_without_an_image_in_the_spec_is_refused_by_its_path() -> None:
    steps = {c: f"r.example.com/{c}" for c in STEP_COMPONENT.values() if c != "train"}
    with pytest.raises(ValueError, match=r"pipelines\.p\.steps: no image for train"):
        step_images("p", steps, "1.0")


def test_the_spec_images_are_those_compiled(tmp_path: Path) -> None:
    """A changed image in platform.yaml reaches the compiled pipeline: compile reads the spec."""
    text = (ROOT / "platform.yaml").read_text(encoding="utf-8")
    old = "registry.example.com/mlp/train-python"
    assert old in text
    spec = tmp_path / "platform.yaml"
    spec.write_text(text.replace(old, "registry.example.com/other/train-python"), "utf-8")
    images = spec_step_images("mlp-training", spec)
    assert images["train"] == f"registry.example.com/other/train-python:{SPEC.defaults.image_tag}"


def test_scheduling_needs_neither_the_spec_nor_the_generator() -> None:
    """The pipeline image has no platform.yaml (nor platformgen): checking run parameters,
    what `mlp-pipeline schedule` and `submit` do before calling KFP, imports the pipeline
    without either."""
    code = (
        "import sys; sys.modules['platformgen'] = None\n"
        "from mlp_pipeline.schedule import parse_params\n"
        "print(parse_params(['epochs=3', 'force_retrain=true']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert done.stdout.strip() == "{'epochs': 3, 'force_retrain': True}"


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
