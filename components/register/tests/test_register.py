import hashlib
import json
import shutil
from pathlib import Path

import pytest
from mlp_common.dataset import verify_snapshot
from mlp_common.registry import ModelRegistry
from mlp_evaluate.cli import main as evaluate
from mlp_ingest.cli import main as ingest
from mlp_preprocess.cli import main as preprocess
from mlp_register.cli import main
from mlp_register.registry_cli import main as registry_cli
from mlp_train.cli import main as train
from mlp_validate.cli import main as validate


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real step outputs: a dataset snapshot, validation report, model and its evaluation."""
    root = tmp_path_factory.mktemp("register")
    snapshot = ["--snapshot-root", str(root / "datasets"), "--output", str(root / "ds")]
    assert ingest(["--source", "sklearn:digits", *snapshot]) == 0
    assert validate(["--dataset", str(root / "ds"), "--output", str(root / "report")]) == 0
    assert preprocess(["--dataset", str(root / "ds"), "--output", str(root / "data")]) == 0
    assert (
        train(["--data", str(root / "data"), "--output", str(root / "model"), "--epochs", "15"])
        == 0
    )
    argv = ["--model", str(root / "model"), "--data", str(root / "data")]
    assert evaluate([*argv, "--output", str(root / "evaluation")]) == 0
    return {name: root / name for name in ("ds", "report", "model", "evaluation", "datasets")}


def register(artifacts: dict[str, Path], registry: Path, *extra: str) -> int:
    return main(
        [
            "--registry", str(registry), "--name", "digits",
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
    version = ModelRegistry(tmp_path).get("digits", 1)
    meta = version.metadata
    assert meta["parent"] is None and meta["pipeline_run_id"] == "run-1"
    assert meta["dataset"]["content_hash"].startswith("sha256:")
    assert meta["params"]["epochs"] == 15 and meta["params"]["seed"] == 42
    assert {"test_accuracy", "val_accuracy", "baseline_val_accuracy"} <= set(meta["metrics"])
    assert meta["gate"]["decision"] == "promote"
    assert meta["compared_with"] == {"production_version": None}
    assert meta["code_version"] and meta["created_at"].endswith("Z")
    assert meta["trained_at"].endswith("Z") and meta["trained_at"] <= meta["created_at"]
    assert meta["images"] is None  # not on a cluster
    assert meta["image_digests"] == {
        "source": "local",
        "code_version": meta["register_code_version"],
    }
    assert meta["baseline"]["test"]["accuracy"] > 0.9
    assert meta["baseline"]["val_accuracy"] == meta["metrics"]["baseline_val_accuracy"]
    for name in ("model.keras", "saved_model", "statistics.json", "confusion_matrix.png"):
        assert (version.path / name).exists(), name
    assert ModelRegistry(tmp_path).production("digits") is None  # promotion is a separate step


def _compared_with(
    artifacts: dict[str, Path], tmp_path: Path, version: int, decision: str
) -> dict[str, Path]:
    """The evaluation, as if its gate had compared with production ``version``."""
    evaluation = tmp_path / f"evaluation-{version}-{decision}"
    shutil.copytree(artifacts["evaluation"], evaluation)
    gate = json.loads((evaluation / "gate.json").read_text())
    gate |= {"production_version": version, "decision": decision}
    (evaluation / "gate.json").write_text(json.dumps(gate))
    return dict(artifacts, evaluation=evaluation)


def test_apply_gate_promotes_and_parent_is_the_production_version_compared(
    artifacts: dict[str, Path], tmp_path: Path
) -> None:
    registry_root = tmp_path / "registry"
    assert register(artifacts, registry_root, "--apply-gate") == 0
    refused = _compared_with(artifacts, tmp_path, 1, "refused")
    assert register(refused, registry_root, "--apply-gate") == 0
    passed = _compared_with(artifacts, tmp_path, 1, "promote")
    assert register(passed, registry_root, "--apply-gate") == 0
    registry = ModelRegistry(registry_root)
    assert registry.get("digits", 2).parent == 1
    # v3 was compared with production v1, not with the refused v2 (the previous "latest")
    assert registry.get("digits", 3).parent == 1
    assert registry.pointer("digits", "production") == 3


def test_registry_cli_list_show_promote(
    artifacts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        assert register(artifacts, tmp_path) == 0
    capsys.readouterr()
    base = ["--registry", str(tmp_path)]
    assert registry_cli([*base, "list"]) == 0
    assert capsys.readouterr().out == "digits\n"
    assert registry_cli([*base, "promote", "digits", "1", "--reason", "rollback"]) == 0
    assert capsys.readouterr().out == "digits: production -> version 1\n"
    assert registry_cli([*base, "list", "digits"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[0] == "1" and lines[1].endswith("production")
    assert lines[2].split()[:2] == ["2", "-"] and lines[2].endswith("latest")  # no parent
    assert registry_cli([*base, "show", "digits", "production"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 1
    assert registry_cli([*base, "show", "digits", "3"]) == 1
    assert capsys.readouterr().err == "registry: model 'digits' has no version 3\n"


def test_missing_inputs_register_nothing(
    artifacts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = dict(artifacts, evaluation=tmp_path / "nowhere")
    assert register(broken, tmp_path / "registry") == 1
    assert "nowhere/evaluation.json: missing" in capsys.readouterr().err
    assert ModelRegistry(tmp_path / "registry").list_versions("digits") == []


def test_lineage_runs_from_serving_back_to_the_exact_snapshot_bytes(
    artifacts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = "postgresql://ml:s3cr3t@db.example:5432/mnist"
    query = "SELECT * FROM read_parquet('https://u:pw@host/x.parquet?token=abc')"
    images = '{"train": "registry.example/mlp/train@sha256:0123", "ingest": "i:1"}'
    extra = ["--source", source, "--query", query, "--images", images, "--run-id", "run-7"]
    assert register(artifacts, tmp_path, "--apply-gate", *extra) == 0
    capsys.readouterr()
    base = ["--registry", str(tmp_path)]
    assert registry_cli([*base, "lineage", "digits", "1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    data = record["data"]
    assert data["source"] == "postgresql://ml:***@db.example:5432/mnist"
    assert data["query"] == "SELECT * FROM read_parquet('https://u:***@host/x.parquet?token=***')"
    assert "s3cr3t" not in json.dumps(record) and "pw@" not in json.dumps(record)
    assert data["snapshot_uri"] == f"{artifacts['datasets']}/digits/{data['content_hash'][7:]}/"
    # reading the snapshot URI gives back exactly the bytes whose hash the version records
    raw = (Path(data["snapshot_uri"]) / "part-00000.parquet").read_bytes()
    assert data["files"]["part-00000.parquet"] == f"sha256:{hashlib.sha256(raw).hexdigest()}"
    assert verify_snapshot(data["snapshot_uri"]).content_hash == data["content_hash"]
    assert record["serving"]["production"] and record["serving"]["promotions"][0]["from"] is None
    assert record["training"]["pipeline_run_id"] == "run-7"
    assert record["training"]["images"] is None  # recorded only on a cluster
    assert record["gate"]["verdict"] == "promote (first model)"
    assert registry_cli([*base, "lineage", "digits", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("digits version 1: serving: production\n")
    for expected in (
        "gate       promote (first model), compared with no production version",
        "promoted   ",
        f"data       {data['snapshot_uri']}",
        f"part-00000.parquet {data['files']['part-00000.parquet']}",
        "source     postgresql://ml:***@db.example:5432/mnist",
        "ancestry   v1 (each compared with the production version before it)",
        "split      by row content (features, target) (salt mlp-split-v1, test 0.2, val 0.2)",
        f"test set {record['split']['test_hash']} ({record['split']['rows']['test']} rows)",
    ):
        assert expected in text
    card = (ModelRegistry(tmp_path).get("digits", 1).path / "MODEL_CARD.md").read_text()
    assert card.startswith("<!-- Code generated by mlp-register")
    assert "# Model card: digits version 1" in card and data["snapshot_uri"] in card
    assert "**promote (first model)**" in card and "| learning_rate | 0.0050 |" in card
    assert registry_cli([*base, "card", "digits", "1"]) == 0
    assert capsys.readouterr().out == card


def test_images_are_recorded_on_a_cluster(
    artifacts: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert register(artifacts, tmp_path, "--images", '{"train": "t@sha256:1"}') == 0
    meta = ModelRegistry(tmp_path).get("digits", 1).metadata
    assert meta["images"] == {"train": "t@sha256:1"}  # the PipelineVersion's pins
    # What the pods ran needs a KFP step's pod (mlp_common.run_images); outside one, the
    # record says why instead of passing the pins off as digests.
    assert meta["image_digests"] == {
        "source": "unavailable",
        "reason": "$KFP_POD_NAME is not set (not a KFP v2 step's pod)",
    }


def test_ci_refuses_an_unknown_code_version(
    artifacts: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("mlp_common.provenance.code_version", lambda start=None: "unknown")
    monkeypatch.setenv("CI", "true")
    assert register(artifacts, tmp_path / "registry") == 1
    assert "code version unknown" in capsys.readouterr().err
    assert ModelRegistry(tmp_path / "registry").list_versions("digits") == []
    monkeypatch.setenv("CI", "")
    assert register(artifacts, tmp_path / "registry") == 0
    metadata = ModelRegistry(tmp_path / "registry").get("digits", 1).metadata
    assert metadata["register_code_version"] == "unknown"
    assert metadata["code_version"].startswith("tree:")  # the train step's, from provenance.json


def test_apply_gate_promotion_is_compare_and_swap(
    artifacts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The evaluation compared with no production model; if production appeared meanwhile, the
    gate's promotion is refused instead of overwriting it."""
    assert register(artifacts, tmp_path) == 0
    ModelRegistry(tmp_path).promote("digits", 1, expected=None, reason="someone else")
    assert register(artifacts, tmp_path, "--apply-gate") == 1
    assert "production moved: expected no production version, found version 1" in (
        capsys.readouterr().err
    )
    assert ModelRegistry(tmp_path).pointer("digits", "production") == 1
