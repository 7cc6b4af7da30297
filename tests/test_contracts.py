"""mlp_common.contracts: the env names the generator sets are the names the components read."""

from __future__ import annotations

import pytest
from mlp_common import contracts, provenance
from mlp_train import jobset

from platformgen.builders import build_platform
from platformgen.resolve import resolve
from platformgen.spec.builds import IMAGE_ENV
from platformgen.spec.load import load_pipelines, load_spec

from support import ROOT, SPECS


def _env_names(objects: list[dict[str, object]]) -> set[str]:
    names: set[str] = set()
    stack: list[object] = list(objects)
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            env = item.get("env")
            if isinstance(env, list):
                names |= {e["name"] for e in env if isinstance(e, dict)}
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return names


def test_a_served_model_is_set_by_the_contract_names() -> None:
    spec = load_spec(ROOT / "platform.yaml")
    served = [v for v in resolve(spec, "prod") if v.component.model is not None]
    assert served
    for view in served:
        assert set(view.model_env) == set(contracts.MODEL_SETTINGS)


def test_the_image_carries_the_code_version_the_steps_read() -> None:
    assert contracts.CODE_VERSION in dict(IMAGE_ENV)
    assert provenance.CODE_VERSION_ENV == contracts.CODE_VERSION


def test_distributed_training_is_configured_by_the_names_the_entrypoint_reads() -> None:
    spec = load_spec(SPECS / "full.yaml")
    trainers = [n for n, c in spec.components.items() if c.kind == "TrainJob"]
    assert trainers
    groups = build_platform(spec, "dev")
    for name in trainers:
        names = _env_names(groups[name])
        assert {contracts.NUM_WORKERS, contracts.WORKER_PORT} <= names
        assert {contracts.NUM_WORKERS, contracts.WORKER_PORT} <= set(jobset.REQUIRED)


def test_a_deployment_that_runs_a_pipeline_is_told_by_the_contract_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """platform.yaml's drift monitor gets the three settings, and its CLI reads exactly those
    names as the defaults of --kfp-pipeline, --kfp-namespace and --kfp-pipeline-version."""
    from mlp_drift.cli import build_parser

    spec = load_spec(ROOT / "platform.yaml")
    pipelines = load_pipelines(spec, ROOT)
    (deployment,) = [
        m for m in build_platform(spec, "prod", pipelines)["drift-monitor"]
        if m["kind"] == "Deployment"
    ]  # fmt: skip
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        if "value" in e
    }
    rendered = {k: env[k] for k in contracts.PIPELINE_SETTINGS}
    for name, value in rendered.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(["serve"])
    assert (args.kfp_pipeline, args.kfp_namespace, args.kfp_pipeline_version) == tuple(
        rendered[k] for k in contracts.PIPELINE_SETTINGS
    )
