"""The data a version was trained on, recorded in data.json and read back through the registry
(mlp_train.data_source), with a registry built here: a preprocess output, a version whose model
directory records it, and the production pointer on that version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mlp_common.dataset import write_dataset
from mlp_common.files import write_json_atomic
from mlp_common.registry import ModelRegistry
from mlp_common.step import DataError, StepError
from mlp_ingest.core import load_sklearn
from mlp_preprocess.cli import main as preprocess
from mlp_train import data_source
from mlp_train.cli import main


@pytest.fixture
def registry(tmp_path: Path) -> tuple[Path, Path]:
    """(registry root, the preprocess output its production version records)."""
    write_dataset(
        tmp_path / "ds", load_sklearn("wine")[0], name="wine", target="target", source="t"
    )
    prep = tmp_path / "prep"
    assert preprocess(["--dataset", str(tmp_path / "ds"), "--output", str(prep)]) == 0
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.keras").write_bytes(b"not a real model: resolve never loads it")
    write_json_atomic(model / "data.json", data_source.describe(prep, str(prep)))
    root = tmp_path / "registry"
    version = ModelRegistry(root).register("wine", model, {"gate": {"decision": "promote"}})
    ModelRegistry(root).promote("wine", version.version, reason="test")
    return root, prep


def test_production_resolves_to_the_recorded_data(registry: tuple[Path, Path]) -> None:
    root, prep = registry
    local, uri, version = data_source.resolve(str(root), "wine", "production")
    assert uri == str(prep) and local == prep and version == 1
    assert sorted(data_source.describe(local, uri)["files"]) == sorted(data_source.RECORDED)


def test_changed_data_is_refused(registry: tuple[Path, Path]) -> None:
    root, prep = registry
    shutil.copy(prep / "val.parquet", prep / "train.parquet")
    with pytest.raises(DataError, match=r"train.parquet has sha256:.*the version recorded"):
        data_source.resolve(str(root), "wine", "production")


def test_a_version_without_a_record_says_so(registry: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = registry
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.keras").write_bytes(b"x")
    ModelRegistry(root).register("wine", old, {})
    with pytest.raises(StepError, match=r"wine version 2 \(latest\) records no data.json"):
        data_source.resolve(str(root), "wine", "latest")


def test_kfp_minio_uris_are_read_over_s3() -> None:
    assert data_source.store_uri("minio://mlpipeline/v2/artifacts/x/data") == (
        "s3://mlpipeline/v2/artifacts/x/data"
    )
    assert data_source.store_uri("s3://b/k") == "s3://b/k"


def test_train_cli_needs_a_model_with_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--data-from-registry", str(tmp_path), "--output", str(tmp_path / "m")]
    assert main(argv) == 1
    assert "--data-from-registry needs --model" in capsys.readouterr().err
