"""Start-up errors are clear, exit 1, and happen before the heavy imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlp_common.registry import ModelRegistry

from .conftest import MODEL, register


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlp_serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_empty_registry_is_a_clear_error(tmp_path: Path) -> None:
    result = _serve("--registry", str(tmp_path / "empty"))
    assert result.returncode == 1
    assert "no registered model (run `make pipeline`" in result.stderr


def test_unknown_version_and_model_are_clear_errors(
    tmp_path: Path, model_dirs: dict[int, Path]
) -> None:
    registry = ModelRegistry(tmp_path / "registry")
    register(registry, model_dirs[1], promote=False)
    result = _serve("--registry", str(registry.root), "--version", "production")
    assert result.returncode == 1
    assert f"model '{MODEL}' has no production version" in result.stderr
    result = _serve("--registry", str(registry.root), "--version", "7")
    assert result.returncode == 1 and "has no version 7" in result.stderr
    result = _serve("--registry", str(registry.root), "--model", "other")
    assert result.returncode == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "must be 0-65535"),
        (["--max-body-bytes", "-1"], "must be >= 0"),
    ],
)
def test_bad_usage_exits_2(args: list[str], message: str) -> None:
    result = _serve(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_smoke_serves_a_version_from_an_s3_registry(model_dirs: dict[int, Path]) -> None:
    """The cluster layout: the registry in an object store (a local S3 server here)."""
    from mlp_common.testing import s3_server

    with s3_server("mlp-models"):
        registry = ModelRegistry("s3://mlp-models/registry")
        register(registry, model_dirs[1])
        result = subprocess.run(  # inherits AWS_ENDPOINT_URL and the test credentials
            [sys.executable, "-m", "mlp_serve.smoke", "--registry", "s3://mlp-models/registry"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["model"] == MODEL and summary["version"] == 1
    assert summary["v1_prediction"] == summary["v2_prediction"]
    assert abs(sum(summary["probabilities"]) - 1) < 1e-4


def test_smoke_fails_clearly_without_a_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mlp_serve.smoke", "--registry", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "no registered model" in result.stderr


def test_the_platform_spec_passes_arguments_this_server_accepts() -> None:
    """platform.yaml's model-server args (batching included) parse with this CLI's parser."""
    import yaml
    from mlp_serve.cli import build_parser

    root = Path(__file__).resolve().parents[3]
    spec = yaml.safe_load((root / "platform.yaml").read_text())
    servers = [c for c in spec["components"].values() if c.get("kind") == "InferenceService"]
    assert servers
    for server in servers:
        args = build_parser().parse_args(server["args"])
        assert args.max_batch_size >= 1 and args.max_batch_delay_ms >= 0
