"""``mlp-preprocess --dataset-from-registry``: the SparkApplication in platform.yaml preprocesses
the snapshot the pipeline's ingest wrote for the newest registered version, found through the
registry and checked against what the version recorded, instead of a fixed path nothing writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlp_common.dataset import write_snapshot
from mlp_common.files import read_json
from mlp_common.registry import ModelRegistry
from mlp_ingest.core import load_sklearn
from mlp_preprocess.cli import main


@pytest.fixture
def registry(tmp_path: Path) -> tuple[Path, Path]:
    """(registry root, the snapshot its one version records), as the register step writes it."""
    info = write_snapshot(
        str(tmp_path / "datasets"), load_sklearn("wine")[0], name="wine", target="target"
    )
    assert info.uri is not None
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.keras").write_bytes(b"not a real model: preprocess never loads it")
    dataset = {"snapshot_uri": info.uri, "files": info.files, "content_hash": info.content_hash}
    root = tmp_path / "registry"
    ModelRegistry(root).register("wine", model, {"dataset": dataset})
    return root, Path(info.uri)


def _split(tmp_path: Path, name: str, *source: str) -> dict[str, object]:
    out = tmp_path / name
    assert main([*source, "--output", str(out)]) == 0
    return read_json(out / "features.json")


def test_the_registered_snapshot_is_split_as_the_snapshot_itself(
    registry: tuple[Path, Path], tmp_path: Path
) -> None:
    root, snapshot = registry
    direct = _split(tmp_path, "direct", "--dataset", str(snapshot))
    found = _split(tmp_path, "found", "--dataset-from-registry", str(root), "--model", "wine")
    assert found == direct
    assert (tmp_path / "found" / "test.parquet").read_bytes() == (
        tmp_path / "direct" / "test.parquet"
    ).read_bytes()


def test_a_changed_snapshot_file_is_refused(
    registry: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, snapshot = registry
    part = sorted(p for p in snapshot.iterdir() if p.suffix == ".parquet")[0]
    part.chmod(0o644)
    part.write_bytes(part.read_bytes() + b"\0")
    argv = ["--dataset-from-registry", str(root), "--model", "wine", "--version", "1"]
    assert main([*argv, "--output", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"wine version 1: {snapshot}" in err and "the version recorded sha256:" in err
    assert not (tmp_path / "out").exists()


def test_a_version_without_a_snapshot_and_a_missing_model_say_so(
    registry: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = registry
    old = tmp_path / "old"
    old.mkdir()
    (old / "model.keras").write_bytes(b"x")
    ModelRegistry(root).register("wine", old, {"dataset": {"content_hash": "sha256:00"}})
    out = ["--output", str(tmp_path / "out")]
    assert main(["--dataset-from-registry", str(root), "--model", "wine", *out]) == 1
    assert "wine version 2 (latest) records no dataset snapshot" in capsys.readouterr().err
    assert main(["--dataset-from-registry", str(root), "--model", "beer", *out]) == 1
    assert f"--dataset-from-registry {root}: model 'beer'" in capsys.readouterr().err
    assert main(["--dataset-from-registry", str(root), *out]) == 1
    assert "--dataset-from-registry needs --model" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
