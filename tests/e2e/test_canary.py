"""The promotion path on the real control plane: what `platformgen promote-model` writes is what
the apiserver keeps.

prod's InferenceService, rendered from a copy of the repo after each step of
candidate -> canary -> production and server-side applied as the GitOps controller does
(`kustomize build overlays/prod`, field manager and ApplySet of `kube.apply`), is accepted by
the apiserver against KServe's CRD schema, and after the full promotion the live object has no
`canaryTrafficPercent` left: server-side apply removes a field its manager stops sending, which
is KServe's "promote" (without it the canary share would stay forever). The cluster runs no
KServe controller; what KServe does with these fields is its documented behaviour (README,
"Promote a model").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlp_common.registry import ModelRegistry

from .conftest import Applied
from .kube import (
    MANAGED_FIELDS_RESOLUTION,
    PLATFORMGEN,
    ROOT,
    Cluster,
    apply,
    kustomize_build,
)
from .kube import restore as restore_render

pytestmark = pytest.mark.tools

COMPONENT = "model-server"
NAMESPACE = "ml-serving"
NOT_COPIED = {"platform.yaml", "base", "overlays", "charts", "argocd"}


@pytest.fixture
def restore(cluster: Cluster, applied: Applied, rendered: str) -> Iterator[None]:
    """Put the environment back (the committed render) after the promotions."""
    yield
    restore_render(cluster, rendered)


def _registry(root: Path) -> Path:
    """Versions 1 and 2, both through the gate and over prod's floors; production -> 1."""
    registry = ModelRegistry(root / "registry")
    source = root / "model-source"
    source.mkdir()
    (source / "model.keras").write_bytes(b"keras")
    for accuracy in (0.98, 0.99):
        gate = {"decision": "promote", "verdict": "promote (test)", "reason": "test"}
        registry.register("digits", source, {"metrics": {"test_accuracy": accuracy}, "gate": gate})
    registry.promote("digits", 1, expected=None)
    return root / "registry"


def _promote(folder: Path, registry: Path, *args: str) -> None:
    result = subprocess.run(
        [str(PLATFORMGEN), "promote-model", "digits", *args, "--env", "prod"]
        + ["--spec", str(folder / "platform.yaml"), "--registry", str(registry)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr


def _live(cluster: Cluster) -> dict[str, Any]:
    isvc = cluster.get_json("inferenceservices.serving.kserve.io", COMPONENT, "-n", NAMESPACE)
    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    annotations = isvc["metadata"].get("annotations", {})
    return {
        "version": env.get("MLP_MODEL_VERSION"),
        "canaryTrafficPercent": predictor.get("canaryTrafficPercent"),
        "annotations": {k: v for k, v in annotations.items() if k.endswith("-model")},
    }


@pytest.mark.parametrize("env", ["prod"], indirect=True)  # the canary rollout is prod's
def test_the_promotion_path_applies_and_promotion_removes_the_canary(
    cluster: Cluster, applied: Applied, env: str, tmp_path: Path, restore: None
) -> None:
    folder = tmp_path / "repo"
    folder.mkdir()
    for entry in ROOT.iterdir():
        if not entry.name.startswith(".") and entry.name not in NOT_COPIED:
            (folder / entry.name).symlink_to(entry)
    shutil.copy2(ROOT / "platform.yaml", folder / "platform.yaml")
    registry = _registry(tmp_path)
    assert _live(cluster)["version"] == "1"

    _promote(folder, registry, "2", "--canary", "--traffic", "20")
    time.sleep(MANAGED_FIELDS_RESOLUTION)
    assert not apply(cluster, kustomize_build(folder / "overlays" / "prod"))
    assert _live(cluster) == {
        "version": "2",
        "canaryTrafficPercent": 20,
        "annotations": {
            "platformgen.io/stable-model": "digits version 1",
            "platformgen.io/canary-model": "digits version 2 takes 20% of requests",
        },
    }

    _promote(folder, registry, "2")
    time.sleep(MANAGED_FIELDS_RESOLUTION)
    assert not apply(cluster, kustomize_build(folder / "overlays" / "prod"))
    assert _live(cluster) == {
        "version": "2",
        "canaryTrafficPercent": None,
        "annotations": {"platformgen.io/stable-model": "digits version 2"},
    }
    assert ModelRegistry(registry).pointer("digits", "production") == 2
