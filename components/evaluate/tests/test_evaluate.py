from pathlib import Path

import pytest
from mlp_common.dataset import write_dataset
from mlp_common.files import read_json
from mlp_evaluate.cli import main
from mlp_evaluate.core import GatePolicy, gate
from mlp_ingest.core import load_sklearn
from mlp_preprocess.cli import main as preprocess
from mlp_train.cli import main as train


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Preprocessed wine data, a good model and a deliberately crippled one (same data)."""
    root = tmp_path_factory.mktemp("evaluate")
    write_dataset(root / "ds", load_sklearn("wine")[0], name="wine", target="target", source="t")
    assert preprocess(["--dataset", str(root / "ds"), "--output", str(root / "data")]) == 0
    data = ["--data", str(root / "data")]
    assert train([*data, "--output", str(root / "good"), "--epochs", "15"]) == 0
    worse = ["--epochs", "1", "--learning-rate", "0.0005", "--hidden-units", "1"]
    assert train([*data, "--output", str(root / "worse"), *worse]) == 0
    return {"data": root / "data", "good": root / "good", "worse": root / "worse"}


def evaluate(models: dict[str, Path], out: Path, candidate: str, *extra: str) -> int:
    argv = ["--model", str(models[candidate]), "--data", str(models["data"]), "--output", str(out)]
    return main([*argv, *extra])


def test_metrics_report_and_confusion_matrix_png(models: dict[str, Path], tmp_path: Path) -> None:
    assert evaluate(models, tmp_path / "out", "good") == 0
    metrics = read_json(tmp_path / "out" / "evaluation.json")
    assert metrics["accuracy"] > 0.85 and metrics["f1_macro"] > 0.85
    assert set(metrics["per_class"]) >= {"0", "1", "2", "macro avg"}
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["examples"] == 36
    png = (tmp_path / "out" / "confusion_matrix.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    decision = read_json(tmp_path / "out" / "gate.json")
    assert (decision["decision"], decision["reason"]) == ("promote", "no production model yet")


def test_worse_model_is_not_promoted(models: dict[str, Path], tmp_path: Path) -> None:
    production = ["--production-model", str(models["good"])]
    assert evaluate(models, tmp_path / "worse", "worse", *production) == 0
    decision = read_json(tmp_path / "worse" / "gate.json")
    assert decision["decision"] == "candidate"
    assert decision["candidate"] < decision["production"]
    assert "does not beat production" in decision["reason"]


def test_better_model_is_promoted_and_margin_applies(
    models: dict[str, Path], tmp_path: Path
) -> None:
    production = ["--production-model", str(models["worse"])]
    assert evaluate(models, tmp_path / "better", "good", *production) == 0
    assert read_json(tmp_path / "better" / "gate.json")["decision"] == "promote"
    same = ["--production-model", str(models["good"])]
    assert evaluate(models, tmp_path / "same", "good", *same) == 0
    assert read_json(tmp_path / "same" / "gate.json")["decision"] == "candidate"  # a tie
    margin = ["--production-model", str(models["worse"]), "--margin", "0.99"]
    assert evaluate(models, tmp_path / "margin", "good", *margin) == 0
    assert read_json(tmp_path / "margin" / "gate.json")["decision"] == "candidate"


def test_gate_policy_rules() -> None:
    policy = GatePolicy(metric="f1_macro", margin=0.02, min_score=0.5)
    assert gate({"f1_macro": 0.4}, None, policy)["decision"] == "candidate"
    assert gate({"f1_macro": 0.9}, None, policy)["decision"] == "promote"
    assert gate({"f1_macro": 0.91}, {"f1_macro": 0.9}, policy)["decision"] == "candidate"
    assert gate({"f1_macro": 0.93}, {"f1_macro": 0.9}, policy)["decision"] == "promote"


def test_bad_inputs(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--model",
        str(tmp_path),
        "--data",
        str(models["data"]),
        "--output",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 1
    assert "no model.keras; not a model directory" in capsys.readouterr().err
    assert evaluate(models, tmp_path / "o", "good", "--margin", "2") == 1
    assert "--margin 2.0: must be in (-1, 1)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
