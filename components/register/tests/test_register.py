import json
from pathlib import Path

import pytest
from mlp_common.dataset import write_dataset
from mlp_common.registry import ModelRegistry
from mlp_evaluate.cli import main as evaluate
from mlp_ingest.core import load_sklearn
from mlp_preprocess.cli import main as preprocess
from mlp_register.cli import main
from mlp_register.registry_cli import main as registry_cli
from mlp_train.cli import main as train
from mlp_validate.cli import main as validate


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real step outputs: dataset, validation report, model and its evaluation."""
    root = tmp_path_factory.mktemp("register")
    write_dataset(root / "ds", load_sklearn("wine")[0], name="wine", target="target", source="t")
    assert validate(["--dataset", str(root / "ds"), "--output", str(root / "report")]) == 0
    assert preprocess(["--dataset", str(root / "ds"), "--output", str(root / "data")]) == 0
    assert (
        train(["--data", str(root / "data"), "--output", str(root / "model"), "--epochs", "5"]) == 0
    )
    argv = ["--model", str(root / "model"), "--data", str(root / "data")]
    assert evaluate([*argv, "--output", str(root / "evaluation")]) == 0
    return {name: root / name for name in ("ds", "report", "model", "evaluation")}


def register(artifacts: dict[str, Path], registry: Path, *extra: str) -> int:
    return main(
        [
            "--registry", str(registry), "--name", "wine",
            "--model", str(artifacts["model"]), "--evaluation", str(artifacts["evaluation"]),
            "--dataset", str(artifacts["ds"]),
            "--statistics", str(artifacts["report"] / "statistics.json"),
            *extra,
        ]
    )  # fmt: skip


def test_version_metadata_and_files(artifacts: dict[str, Path], tmp_path: Path) -> None:
    assert (
        register(artifacts, tmp_path, "--run-id", "run-1", "--version-file", str(tmp_path / "v"))
        == 0
    )
    assert (tmp_path / "v").read_text() == "1\n"
    version = ModelRegistry(tmp_path).get("wine", 1)
    meta = version.metadata
    assert meta["parent"] is None and meta["pipeline_run_id"] == "run-1"
    assert meta["dataset"]["content_hash"].startswith("sha256:")
    assert meta["params"]["epochs"] == 5 and meta["params"]["seed"] == 42
    assert {"test_accuracy", "val_accuracy", "baseline_val_accuracy"} <= set(meta["metrics"])
    assert meta["gate"]["decision"] == "promote"
    assert meta["code_version"] and meta["created_at"].endswith("Z")
    for name in ("model.keras", "saved_model", "statistics.json", "confusion_matrix.png"):
        assert (version.path / name).exists(), name
    assert ModelRegistry(tmp_path).production("wine") is None  # promotion is a separate step


def test_apply_gate_promotes_and_second_version_has_parent(
    artifacts: dict[str, Path], tmp_path: Path
) -> None:
    assert register(artifacts, tmp_path, "--apply-gate") == 0
    assert register(artifacts, tmp_path) == 0
    registry = ModelRegistry(tmp_path)
    assert registry.pointer("wine", "production") == 1
    assert registry.get("wine", 2).parent == 1


def test_registry_cli_list_show_promote(
    artifacts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        assert register(artifacts, tmp_path) == 0
    capsys.readouterr()
    base = ["--registry", str(tmp_path)]
    assert registry_cli([*base, "list"]) == 0
    assert capsys.readouterr().out == "wine\n"
    assert registry_cli([*base, "promote", "wine", "1", "--reason", "rollback"]) == 0
    assert capsys.readouterr().out == "wine: production -> version 1\n"
    assert registry_cli([*base, "list", "wine"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[0] == "1" and lines[1].endswith("production")
    assert lines[2].split()[:2] == ["2", "1"] and lines[2].endswith("latest")
    assert registry_cli([*base, "show", "wine", "production"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    assert registry_cli([*base, "show", "wine", "3"]) == 1
    assert capsys.readouterr().err == "registry: model 'wine' has no version 3\n"


def test_missing_inputs_register_nothing(
    artifacts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = dict(artifacts, evaluation=tmp_path / "nowhere")
    assert register(broken, tmp_path / "registry") == 1
    assert "nowhere/evaluation.json: missing" in capsys.readouterr().err
    assert ModelRegistry(tmp_path / "registry").list_versions("wine") == []
