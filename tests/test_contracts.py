"""mlp_common.contracts: the env names the generator sets are the names the components read."""

from __future__ import annotations

from mlp_common import contracts, provenance
from mlp_train import jobset

from platformgen.builders import build_platform
from platformgen.resolve import resolve
from platformgen.spec.builds import IMAGE_ENV
from platformgen.spec.load import load_spec

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
