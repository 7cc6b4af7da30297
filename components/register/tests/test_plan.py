"""The plan: reuse a registered version exactly when data, params and code are the same."""

import json
from pathlib import Path

import pandas as pd
import pytest
from mlp_common.dataset import DatasetInfo, write_snapshot
from mlp_common.registry import ModelRegistry, training_key
from mlp_register.plan import main, plan
from mlp_register.registry_cli import main as registry_cli

PARAMS = {"split": {"seed": 42, "test_size": 0.2}, "train": {"epochs": 5, "seed": 42}}


def snapshot(tmp_path: Path, value: float = 1.0) -> DatasetInfo:
    frame = pd.DataFrame({"x": [value, 2.0, 3.0], "target": [0, 1, 0]})
    return write_snapshot(str(tmp_path / "datasets"), frame, name="toy", target="target")


def registry_with_version(tmp_path: Path, key: str) -> ModelRegistry:
    source = tmp_path / "model"
    source.mkdir(exist_ok=True)
    (source / "model.keras").write_bytes(b"keras")
    registry = ModelRegistry(tmp_path / "registry")
    registry.register("toy", source, {"training_key": "sha256:other"})
    registry.register("toy", source, {"training_key": key})
    return registry


def test_same_inputs_reuse_and_any_change_trains(tmp_path: Path) -> None:
    data = snapshot(tmp_path)
    key = training_key(data.content_hash, PARAMS, "abc123")
    registry = registry_with_version(tmp_path, key)
    same = plan(registry, "toy", data, PARAMS, "abc123")
    assert (same["action"], same["version"], same["training_key"]) == ("reuse", 2, key)
    assert "reused version 2: same data snapshot" in same["reason"]
    forced = plan(registry, "toy", data, PARAMS, "abc123", force=True)
    assert (forced["action"], forced["reason"]) == ("train", "forced retrain")
    other_params = {**PARAMS, "train": {"epochs": 6, "seed": 42}}
    assert plan(registry, "toy", data, other_params, "abc123")["action"] == "train"
    assert plan(registry, "toy", data, PARAMS, "def456")["action"] == "train"
    assert plan(registry, "toy", snapshot(tmp_path, 9.0), PARAMS, "abc123")["action"] == "train"


def test_cli_prints_the_action_and_writes_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLP_CODE_VERSION", "abc123")
    data = snapshot(tmp_path)
    assert data.uri is not None
    key = training_key(data.content_hash, PARAMS, "abc123")
    registry_with_version(tmp_path, key)
    argv = ["--registry", str(tmp_path / "registry"), "--name", "toy", "--snapshot", data.uri]
    argv += ["--params", json.dumps(PARAMS), "--output", str(tmp_path / "plan.json")]
    assert main(argv) == 0
    assert capsys.readouterr().out == "reuse\n"
    assert json.loads((tmp_path / "plan.json").read_text())["version"] == 2
    assert registry_cli(["--registry", str(tmp_path / "registry"), "find", "toy",
                         "--training-key", key]) == 0  # fmt: skip
    assert capsys.readouterr().out == "2\n"
    assert main([*argv[:5], str(tmp_path / "nowhere"), *argv[6:]]) == 1
    assert "no dataset snapshot there" in capsys.readouterr().err
