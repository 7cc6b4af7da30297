"""A compiled pipeline whose executors run an image no `pipelines.<name>.steps` entry declares
is refused when the compiled objects are loaded (spec.load.load_pipelines), before any build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from platformgen.errors import SpecError
from platformgen.spec.load import load_pipelines, parse_spec

from support import ROOT

STEPS = ("ingest", "validate", "preprocess", "train", "evaluate", "register")

SPEC = """\
platform: {name: tiny, partOf: tiny-platform}
namespaces:
  apps: {}
components:
  api: {kind: Deployment, namespace: apps, role: web, image: i}
environments: {dev: {}}
pipelines:
  train:
    namespace: apps
    compiled: p.yaml
    steps:
"""


def _spec(steps: tuple[str, ...]) -> str:
    return SPEC + "".join(
        f"      {s}: {{image: registry.example.com/mlp/{s}-python}}\n" for s in steps
    )


def test_every_executor_image_declared_loads(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pipelines" / "compiled" / "mlp-training.k8s.yaml", tmp_path / "p.yaml")
    spec = parse_spec(_spec(STEPS))
    assert set(load_pipelines(spec, tmp_path)) == {"train"}


def test_an_undeclared_executor_image_is_refused_at_load(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pipelines" / "compiled" / "mlp-training.k8s.yaml", tmp_path / "p.yaml")
    spec = parse_spec(_spec(tuple(s for s in STEPS if s != "evaluate")))
    with pytest.raises(SpecError) as raised:
        load_pipelines(spec, tmp_path)
    (problem,) = raised.value.problems
    assert problem.startswith(
        "platform.yaml: pipelines.train.steps: the compiled pipeline runs images no step declares:"
    )
    assert "(registry.example.com/mlp/evaluate-python)" in problem
