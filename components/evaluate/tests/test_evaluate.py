from pathlib import Path

import pytest
from mlp_common.dataset import write_dataset
from mlp_common.files import read_json
from mlp_evaluate.cli import main
from mlp_ingest.core import load_sklearn
from mlp_preprocess.cli import main as preprocess
from mlp_train.cli import main as train


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Preprocessed digits data, a good model and a deliberately crippled one (same data)."""
    root = tmp_path_factory.mktemp("evaluate")
    frame = load_sklearn("digits")[0]
    write_dataset(root / "ds", frame, name="digits", target="target", source="t")
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
    assert metrics["accuracy"] > 0.9 and metrics["f1_macro"] > 0.9
    assert set(metrics["per_class"]) >= {"0", "1", "9", "macro avg"}
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["examples"] == 345
    assert metrics["accuracy"] >= metrics["baseline"]["accuracy"] > 0.9  # TF matches sklearn
    png = (tmp_path / "out" / "confusion_matrix.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    decision = read_json(tmp_path / "out" / "gate.json")
    assert (decision["verdict"], decision["reason"]) == (
        "promote (first model)",
        "no production model yet",
    )
    assert decision["baseline"] == metrics["baseline"]["accuracy"]
    assert decision["comparisons"]["baseline"]["difference"] >= 0


def test_worse_model_is_refused(models: dict[str, Path], tmp_path: Path) -> None:
    production = ["--production-model", str(models["good"]), "--production-version", "4"]
    assert evaluate(models, tmp_path / "worse", "worse", *production) == 0
    decision = read_json(tmp_path / "worse" / "gate.json")
    assert decision["decision"] == "refused"
    assert decision["production_version"] == 4
    assert decision["statistic"] < 0 and decision["interval"][1] < 0
    assert decision["candidate"] < decision["production"]


def test_better_model_is_promoted_a_tie_stays_and_power_applies(
    models: dict[str, Path], tmp_path: Path
) -> None:
    production = ["--production-model", str(models["worse"])]
    assert evaluate(models, tmp_path / "better", "good", *production) == 0
    better = read_json(tmp_path / "better" / "gate.json")
    assert better["verdict"] == "promote" and better["interval"][0] > 0
    same = ["--production-model", str(models["good"])]
    assert evaluate(models, tmp_path / "same", "good", *same) == 0
    assert read_json(tmp_path / "same" / "gate.json")["verdict"] == "stays candidate (tie)"
    tiny = ["--production-model", str(models["worse"]), "--min-effect", "0.001"]
    assert evaluate(models, tmp_path / "tiny", "good", *tiny) == 0
    assert read_json(tmp_path / "tiny" / "gate.json")["verdict"] == "refused (test set too small)"


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
    assert evaluate(models, tmp_path / "o", "good", "--alpha", "2") == 1
    assert "--alpha 2.0: must be in (0, 0.5)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_class_set_change_is_refused_unless_declared(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """Acceptance (issue 21): production knows digits 0-9; the candidate was trained on data
    without any 9s. Its classes differ, so the gate refuses it (the old gate compared the two
    anyway and could promote it)."""
    frame = load_sklearn("digits")[0]
    write_dataset(tmp_path / "ds", frame[frame["target"] != 9], name="digits", target="target")
    assert preprocess(["--dataset", str(tmp_path / "ds"), "--output", str(tmp_path / "data")]) == 0
    candidate = tmp_path / "nine-less"
    assert (
        train(["--data", str(tmp_path / "data"), "--output", str(candidate), "--epochs", "15"]) == 0
    )
    argv = ["--model", str(candidate), "--data", str(tmp_path / "data")]
    argv += ["--production-model", str(models["good"]), "--production-version", "1"]
    assert main([*argv, "--output", str(tmp_path / "refused")]) == 0
    gate = read_json(tmp_path / "refused" / "gate.json")
    assert (gate["decision"], gate["verdict"]) == ("refused", "refused (schema differs)")
    assert "classes differ" in gate["reason"] and gate["schema_differences"]
    assert main([*argv, "--output", str(tmp_path / "declared"), "--schema-change"]) == 0
    declared = read_json(tmp_path / "declared" / "gate.json")
    assert declared["schema_differences"] == gate["schema_differences"]
    # declared: no schema refusal; the other checks (floor, baseline) still apply
    assert declared["verdict"] in (
        "promote (declared schema change)",
        "refused (worse than baseline)",
    )
